import { Logger } from '@nestjs/common';
import { TelemetryService } from './telemetry.service';

describe('TelemetryService.handle', () => {
  let telemetry: TelemetryService;

  beforeEach(() => {
    telemetry = new TelemetryService();
  });

  afterEach(() => jest.restoreAllMocks());

  it("calls each event's handler with its payload, and no other", () => {
    const crashes: unknown[] = [];
    const ready: unknown[] = [];
    telemetry.handle({ 'worker.crash': (data) => crashes.push(data.reason), 'pool.ready': (data) => ready.push(data.pool) });
    telemetry.emit('pool.ready', { pool: 'default', workers: 2, durationMs: 5 });
    telemetry.emit('call.start', { pool: 'default', tool: 'add' });
    telemetry.emit('worker.crash', {
      pool: 'default',
      workerId: 'default-1',
      pid: 1,
      reason: 'frozen',
      exitCode: null,
      signal: 'SIGKILL',
      uptimeMs: 10,
      requestsServed: 0,
    });
    expect(ready).toEqual(['default']);
    expect(crashes).toEqual(['frozen']);
  });

  it('runs every handler set of an event until its subscription ends', () => {
    const seen: string[] = [];
    const first = telemetry.handle({ 'call.start': (data) => seen.push(`first ${data.tool}`) });
    telemetry.handle({ 'call.start': (data) => seen.push(`second ${data.tool}`) });
    telemetry.emit('call.start', { pool: 'default', tool: 'a' });
    first.unsubscribe();
    telemetry.emit('call.start', { pool: 'default', tool: 'b' });
    expect(seen).toEqual(['first a', 'second a', 'second b']);
  });

  it('logs a throwing handler instead of letting it reach the emitter or later events', () => {
    const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const seen: string[] = [];
    telemetry.handle({
      'session.created': (data) => {
        if (data.sessionId === 'bad') throw new Error('handler bug');
        seen.push(data.sessionId);
      },
    });
    expect(() => telemetry.emit('session.created', { sessionId: 'bad', ttlSeconds: 1 })).not.toThrow();
    telemetry.emit('session.created', { sessionId: 'good', ttlSeconds: 1 });
    expect(seen).toEqual(['good']);
    expect(logged).toHaveBeenCalledWith({ msg: 'telemetry handler failed', event: 'session.created', error: 'handler bug' });
  });
});

import { expect } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import type { ResolvedOptions } from '../options/resolve-options';
import { TelemetryLogger } from './telemetry-logger';
import { TelemetryService } from './telemetry.service';

describe('TelemetryLogger', () => {
  let telemetry: TelemetryService;
  let lines: Record<'debug' | 'log' | 'warn' | 'error', jest.SpyInstance>;

  beforeEach(() => {
    lines = {
      debug: jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined),
      log: jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined),
      warn: jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined),
      error: jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined),
    };
    telemetry = new TelemetryService();
    new TelemetryLogger(telemetry, { logCalls: true } as ResolvedOptions);
  });

  afterEach(() => jest.restoreAllMocks());

  it('builds no per-call line unless logCalls is on', () => {
    const quiet = new TelemetryService();
    new TelemetryLogger(quiet, { logCalls: false } as ResolvedOptions);
    lines.debug.mockClear();
    quiet.emit('call.stop', { pool: 'default', tool: 'add', durationMs: 1, outcome: 'ok' });
    expect(lines.debug).not.toHaveBeenCalled();
    quiet.emit('worker.stop', { pool: 'default', workerId: 'default-1', pid: 1, reason: 'shutdown' });
    expect(lines.debug).toHaveBeenCalledTimes(1);
  });

  it('logs a finished call at debug with its context as snake_case fields', () => {
    telemetry.emit('call.stop', {
      pool: 'default',
      tool: 'fail',
      workerId: 'default-1',
      pid: 42,
      requestId: 7,
      sessionId: 'sess_1',
      durationMs: 1.5,
      outcome: 'error',
      errorCode: 'PYTHON_EXCEPTION',
    });
    expect(lines.debug).toHaveBeenCalledWith({
      msg: 'call finished',
      pool: 'default',
      tool: 'fail',
      worker_id: 'default-1',
      pid: 42,
      request_id: 7,
      session_id: 'sess_1',
      duration_ms: 1.5,
      outcome: 'error',
      error_code: 'PYTHON_EXCEPTION',
    });
    expect(lines.log).not.toHaveBeenCalled();
  });

  it('logs recycling and a half-open circuit at info', () => {
    telemetry.emit('worker.recycled', { pool: 'default', workerId: 'default-2', pid: 9, reason: 'max_requests', uptimeMs: 100, requestsServed: 50 });
    telemetry.emit('circuit.half_open', { pool: 'default' });
    expect(lines.log.mock.calls.map(([line]: unknown[]) => line)).toEqual([
      expect.objectContaining({ pool: 'default', worker_id: 'default-2', pid: 9, reason: 'max_requests', requests_served: 50 }),
      expect.objectContaining({ msg: expect.stringContaining('half-open'), pool: 'default' }),
    ]);
  });

  it('leaves the events the pool logs itself (crash, crash loop, open circuit) to the pool', () => {
    telemetry.emit('circuit.opened', { pool: 'default' });
    telemetry.emit('pool.crash_loop', { pool: 'default', crashes: 5, windowMs: 60_000, retryInMs: 30_000 });
    for (const spy of Object.values(lines)) expect(spy).not.toHaveBeenCalled();
  });

  it('adds the trace and span ids of the active span', () => {
    const contextManager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(contextManager);
    try {
      const span = trace.wrapSpanContext({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 });
      context.with(trace.setSpan(context.active(), span), () => telemetry.emit('session.deleted', { sessionId: 's' }));
    } finally {
      context.disable();
    }
    expect(lines.debug).toHaveBeenCalledWith({
      msg: 'session deleted',
      session_id: 's',
      trace_id: '0af7651916cd43dd8448eb211c80319c',
      span_id: 'b7ad6b7169203331',
    });
  });
});

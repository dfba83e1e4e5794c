import { Global, Module } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { register } from 'prom-client';
import { PoolService } from '../pool/pool.service';
import type { PoolInfo } from '../pool/worker-pool';
import { SessionService } from '../session/session.service';
import type { TelemetryEventMap } from '../telemetry/telemetry-events';
import { TelemetryService } from '../telemetry/telemetry.service';
import type { WorkerInfo } from '../worker/worker';
import { SnakepitMetricsModule } from './snakepit-metrics.module';

const worker = (id: string, state: WorkerInfo['state'], busy = 0): WorkerInfo => ({
  id,
  pid: 100,
  state,
  busy,
  capacity: 1,
  requestsServed: 0,
  uptimeMs: 1,
  sharedMemoryBytes: 0,
});

/** What the metrics read from the pools; a test changes it between scrapes. */
const pools = {
  info: [] as PoolInfo[],
  poolNames: () => ['default'],
  poolInfo: () => pools.info,
  listTools: () => [{ pool: 'default', tools: [{ name: 'add' }, { name: 'crash' }] }],
};
const sessions = { count: jest.fn<Promise<number>, []>() };

/** SnakepitModule as the metrics see it (global, like `forRoot({ isGlobal: true })`), with fake pools and sessions. */
@Global()
@Module({
  providers: [TelemetryService, { provide: PoolService, useValue: pools }, { provide: SessionService, useValue: sessions }],
  exports: [TelemetryService, PoolService, SessionService],
})
class FakeSnakepitModule {}

/** A sample's current value; a histogram is read through its `_count` and `_sum` samples. */
async function sample(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = register.getSingleMetric(name.replace(/_(count|sum)$/, ''));
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const sameLabels = (found: object) => JSON.stringify(Object.entries(found).sort()) === JSON.stringify(Object.entries(labels).sort());
  return values.find((value) => ((value as { metricName?: string }).metricName ?? name) === name && sameLabels(value.labels))?.value;
}

describe('SnakepitMetricsModule', () => {
  let moduleRef: TestingModule;
  let telemetry: TelemetryService;
  const emit = <N extends keyof TelemetryEventMap>(name: N, data: TelemetryEventMap[N]) => telemetry.emit(name, data);

  beforeEach(async () => {
    pools.info = [];
    moduleRef = await Test.createTestingModule({ imports: [FakeSnakepitModule, SnakepitMetricsModule] }).compile();
    telemetry = moduleRef.get(TelemetryService);
    emit('worker.ready', { pool: 'default', workerId: 'default-1', pid: 100, startMs: 5 });
  });

  afterEach(async () => {
    await moduleRef.close();
    register.clear();
  });

  describe('calls', () => {
    it('counts a finished call and observes its duration, by pool, tool and outcome', async () => {
      emit('call.stop', { pool: 'default', tool: 'add', workerId: 'default-1', durationMs: 12, outcome: 'ok' });
      emit('call.stop', { pool: 'default', tool: 'add', durationMs: 30_000, outcome: 'error', errorCode: 'TIMEOUT' });
      const ok = { pool: 'default', tool: 'add', outcome: 'ok' };
      expect(await sample('snakepit_calls_total', ok)).toBe(1);
      expect(await sample('snakepit_calls_total', { ...ok, outcome: 'TIMEOUT' })).toBe(1);
      expect(await sample('snakepit_call_duration_seconds_count', ok)).toBe(1);
      expect(await sample('snakepit_call_duration_seconds_sum', ok)).toBeCloseTo(0.012);
      expect(await sample('snakepit_call_duration_seconds_sum', { ...ok, outcome: 'TIMEOUT' })).toBe(30);
    });

    it('labels pools and tools no worker offers as unknown, so callers cannot mint time series', async () => {
      emit('call.stop', { pool: 'default', tool: 'made_up_1', durationMs: 1, outcome: 'error', errorCode: 'TOOL_NOT_FOUND' });
      emit('call.stop', { pool: 'nope', tool: 'add', durationMs: 1, outcome: 'error', errorCode: 'POOL_NOT_FOUND' });
      expect(await sample('snakepit_calls_total', { pool: 'default', tool: 'unknown', outcome: 'TOOL_NOT_FOUND' })).toBe(1);
      expect(await sample('snakepit_calls_total', { pool: 'unknown', tool: 'unknown', outcome: 'POOL_NOT_FOUND' })).toBe(1);
    });
  });

  describe('queue', () => {
    it('follows the depth, observes waits by how they ended and counts refusals', async () => {
      expect(await sample('snakepit_queue_depth', { pool: 'default' })).toBe(0);
      emit('pool.queue_enter', { pool: 'default', depth: 1 });
      emit('pool.queue_enter', { pool: 'default', depth: 2 });
      expect(await sample('snakepit_queue_depth', { pool: 'default' })).toBe(2);
      emit('pool.queue_leave', { pool: 'default', depth: 1, waitMs: 250, outcome: 'dispatched' });
      emit('pool.queue_leave', { pool: 'default', depth: 0, waitMs: 10_000, outcome: 'timeout' });
      emit('pool.queue_full', { pool: 'default', depth: 0 });
      expect(await sample('snakepit_queue_depth', { pool: 'default' })).toBe(0);
      expect(await sample('snakepit_queue_wait_seconds_sum', { pool: 'default', outcome: 'dispatched' })).toBe(0.25);
      expect(await sample('snakepit_queue_wait_seconds_count', { pool: 'default', outcome: 'timeout' })).toBe(1);
      expect(await sample('snakepit_queue_full_total', { pool: 'default' })).toBe(1);
    });
  });

  describe('workers', () => {
    const crash = (reason: TelemetryEventMap['worker.crash']['reason']) =>
      emit('worker.crash', { pool: 'default', workerId: 'default-1', pid: 100, reason, exitCode: null, signal: 'SIGKILL', uptimeMs: 5, requestsServed: 0 });

    it('counts crashes and recycles by reason, failed starts and missed heartbeats', async () => {
      crash('exit');
      crash('frozen');
      crash('frozen');
      emit('worker.recycled', { pool: 'default', workerId: 'default-2', pid: 101, reason: 'max_requests', uptimeMs: 5, requestsServed: 10 });
      emit('worker.start_failed', { pool: 'default', workerId: 'default-3', reason: 'ImportError' });
      emit('worker.heartbeat_missed', { pool: 'default', workerId: 'default-2', pid: 101, missed: 1, threshold: 3 });
      expect(await sample('snakepit_worker_crashes_total', { pool: 'default', reason: 'exit' })).toBe(1);
      expect(await sample('snakepit_worker_crashes_total', { pool: 'default', reason: 'frozen' })).toBe(2);
      expect(await sample('snakepit_worker_recycles_total', { pool: 'default', reason: 'max_requests' })).toBe(1);
      expect(await sample('snakepit_worker_start_failures_total', { pool: 'default' })).toBe(1);
      expect(await sample('snakepit_heartbeat_missed_total', { pool: 'default' })).toBe(1);
    });

    it("reports each live worker's memory and drops it when the worker is gone", async () => {
      emit('worker.memory', { pool: 'default', workerId: 'default-1', pid: 100, rssBytes: 1000 });
      emit('worker.memory', { pool: 'default', workerId: 'default-2', pid: 101, rssBytes: 2000 });
      expect(await sample('snakepit_worker_memory_bytes', { pool: 'default', worker_id: 'default-1' })).toBe(1000);
      crash('exit');
      emit('worker.stop', { pool: 'default', workerId: 'default-2', pid: 101, reason: 'shutdown' });
      expect(await sample('snakepit_worker_memory_bytes', { pool: 'default', worker_id: 'default-1' })).toBeUndefined();
      expect(await sample('snakepit_worker_memory_bytes', { pool: 'default', worker_id: 'default-2' })).toBeUndefined();
    });

    it('counts workers by state when scraped: starting, idle, busy, draining', async () => {
      pools.info = [
        {
          name: 'default',
          size: 4,
          ready: 3,
          available: 1,
          busy: 2,
          queueDepth: 0,
          starting: 1,
          crashLooping: false,
          circuit: 'closed',
          workers: [worker('default-1', 'ready'), worker('default-2', 'ready', 1), worker('default-3', 'draining', 1)],
        },
      ];
      const byState = async (state: string) => sample('snakepit_workers', { pool: 'default', state });
      expect([await byState('starting'), await byState('idle'), await byState('busy'), await byState('draining')]).toEqual([1, 1, 1, 1]);
      pools.info[0].workers = [worker('default-1', 'ready', 1)];
      expect([await byState('idle'), await byState('busy'), await byState('draining')]).toEqual([0, 1, 0]);
    });
  });

  describe('pool state', () => {
    it('follows the circuit (0 closed, 1 half-open, 2 open) and the crash loop', async () => {
      const circuit = () => sample('snakepit_circuit_state', { pool: 'default' });
      const looping = () => sample('snakepit_pool_crash_looping', { pool: 'default' });
      expect([await circuit(), await looping()]).toEqual([0, 0]);
      emit('circuit.opened', { pool: 'default' });
      emit('pool.crash_loop', { pool: 'default', crashes: 5, windowMs: 60_000, retryInMs: 30_000 });
      expect([await circuit(), await looping()]).toEqual([2, 1]);
      emit('circuit.half_open', { pool: 'default' });
      expect(await circuit()).toBe(1);
      emit('circuit.closed', { pool: 'default' });
      emit('pool.crash_loop_cleared', { pool: 'default' });
      expect([await circuit(), await looping()]).toEqual([0, 0]);
    });
  });

  describe('sessions', () => {
    it("reports the store's count when scraped, and keeps the last one while the store does not answer", async () => {
      sessions.count.mockResolvedValueOnce(3).mockRejectedValueOnce(new Error('store down'));
      expect(await sample('snakepit_sessions_active')).toBe(3);
      expect(await sample('snakepit_sessions_active')).toBe(3);
    });
  });

  it('exposes every metric in the Prometheus text format', async () => {
    sessions.count.mockResolvedValue(0);
    const text = await register.metrics();
    expect(text).toContain('# TYPE snakepit_calls_total counter');
    expect(text).toContain('# TYPE snakepit_call_duration_seconds histogram');
    expect(text).toContain('snakepit_circuit_state{pool="default"} 0');
  });
});

import { Global, Module, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test, type TestingModule } from '@nestjs/testing';
import { PoolService } from '../pool/pool.service';
import type { PoolInfo } from '../pool/worker-pool';
import { SessionService } from '../session/session.service';
import { PoolsHealthIndicator } from './pools.health';
import { SessionStoreHealthIndicator } from './sessions.health';
import { SnakepitHealthModule } from './snakepit-health.module';
import { WorkersHealthIndicator, type WorkerHealthCheck } from './workers.health';

const healthyPool = (name: string): PoolInfo => ({
  name,
  size: 2,
  ready: 2,
  available: 2,
  busy: 0,
  queueDepth: 0,
  starting: 0,
  crashLooping: false,
  circuit: 'closed',
  workers: [],
});

/** PoolService as the indicators see it (it is also the worker health probe); a test sets its state. */
const pools = {
  info: [] as PoolInfo[],
  checks: [] as WorkerHealthCheck[],
  poolInfo: (): PoolInfo[] => pools.info,
  poolNames: (): string[] => pools.info.map((info) => info.name),
  checkWorkerHealth: jest.fn((_timeoutMs: number): Promise<WorkerHealthCheck[]> => Promise.resolve(pools.checks)),
};
const sessions = { ping: jest.fn<Promise<void>, []>() };

@Global()
@Module({
  providers: [
    { provide: PoolService, useValue: pools },
    { provide: SessionService, useValue: sessions },
  ],
  exports: [PoolService, SessionService],
})
class FakeSnakepitModule {}

describe('SnakepitHealthModule', () => {
  let moduleRef: TestingModule;
  let health: HealthCheckService;

  beforeEach(async () => {
    pools.info = [healthyPool('default'), healthyPool('batch')];
    pools.checks = [];
    moduleRef = await Test.createTestingModule({ imports: [TerminusModule.forRoot({ logger: false }), FakeSnakepitModule, SnakepitHealthModule] }).compile();
    health = moduleRef.get(HealthCheckService);
  });

  afterEach(() => moduleRef.close());

  describe('PoolsHealthIndicator', () => {
    const check = () => health.check([() => moduleRef.get(PoolsHealthIndicator).isHealthy('pools')]);

    it('is up while every pool has a ready worker, with a summary per pool', async () => {
      const result = await check();
      expect(result.status).toBe('ok');
      expect(result.info?.pools).toEqual({
        status: 'up',
        pools: {
          default: { ready: 2, size: 2, busy: 0, queueDepth: 0, circuit: 'closed', crashLooping: false },
          batch: { ready: 2, size: 2, busy: 0, queueDepth: 0, circuit: 'closed', crashLooping: false },
        },
      });
    });

    it('turns down (503) while a pool crash-loops with no ready worker, and up again when it recovers', async () => {
      Object.assign(pools.info[1], { ready: 0, crashLooping: true });
      const failure = await check().catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(ServiceUnavailableException);
      const body = (failure as ServiceUnavailableException).getResponse() as { status: string; error: Record<string, unknown> };
      expect(body.status).toBe('error');
      expect(body.error.pools).toMatchObject({ status: 'down', failing: { batch: ['no ready worker', 'crash-looping'] } });
      Object.assign(pools.info[1], { ready: 1, crashLooping: false });
      expect((await check()).status).toBe('ok');
    });

    it('turns down while a circuit is open, not while it is half-open', async () => {
      pools.info[0].circuit = 'open';
      await expect(check()).rejects.toBeInstanceOf(ServiceUnavailableException);
      pools.info[0].circuit = 'half_open';
      expect((await check()).status).toBe('ok');
    });
  });

  describe('SessionStoreHealthIndicator', () => {
    const check = (timeoutMs?: number) => moduleRef.get(SessionStoreHealthIndicator).pingCheck('sessions', { timeoutMs });

    it('is up when the store answers its ping', async () => {
      sessions.ping.mockResolvedValueOnce();
      expect(await check()).toEqual({ sessions: { status: 'up' } });
    });

    it('is down with the reason when the ping fails or takes too long', async () => {
      sessions.ping.mockRejectedValueOnce(new Error('ECONNREFUSED'));
      expect(await check()).toEqual({ sessions: { status: 'down', message: 'ECONNREFUSED' } });
      sessions.ping.mockReturnValueOnce(new Promise(() => undefined));
      expect(await check(20)).toEqual({ sessions: { status: 'down', message: 'the session store did not answer within 20 ms' } });
    });
  });

  describe('WorkersHealthIndicator', () => {
    const check = () => moduleRef.get(WorkersHealthIndicator).isHealthy('workers', { timeoutMs: 300 });
    const serving = (pool: string, workerId: string): WorkerHealthCheck => ({ pool, workerId, pid: 1, status: 'SERVING' });

    it('is up while every pool has a serving worker, listing the workers that are not', async () => {
      const frozen = { pool: 'batch', workerId: 'batch-2', pid: 2, error: '4 DEADLINE_EXCEEDED: Deadline exceeded' };
      pools.checks = [serving('default', 'default-1'), serving('batch', 'batch-1'), frozen];
      expect(await check()).toEqual({
        workers: { status: 'up', pools: { default: { serving: 1, workers: 1 }, batch: { serving: 1, workers: 2 } }, failing: [frozen] },
      });
      expect(pools.checkWorkerHealth).toHaveBeenLastCalledWith(300);
    });

    it('is down when a pool has no serving worker, shutting down or gone', async () => {
      const draining = { pool: 'default', workerId: 'default-1', pid: 1, status: 'NOT_SERVING' };
      pools.checks = [draining];
      expect(await check()).toEqual({
        workers: { status: 'down', pools: { default: { serving: 0, workers: 1 }, batch: { serving: 0, workers: 0 } }, failing: [draining] },
      });
    });
  });
});

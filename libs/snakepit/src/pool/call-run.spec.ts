import type { WorkerMessage__Output } from '../bridge/generated/snakepit/bridge/v1/WorkerMessage';
import type { CallListener } from '../bridge/worker-channel';
import { SnakepitError } from '../errors/snakepit-error';
import { CIRCUIT_BREAKER_DEFAULTS, POOL_DEFAULTS } from '../options/defaults';
import type { ResolvedPoolOptions } from '../options/resolve-options';
import { TelemetryService } from '../telemetry/telemetry.service';
import type { PoolWorker } from './pool-worker';
import { silentLogger as logger } from './simulation/silent-logger';
import { WorkerPool } from './worker-pool';

const config = {
  ...POOL_DEFAULTS,
  name: 'p',
  size: 1,
  adapter: 'a:B',
  python: 'python3',
  env: {},
  capacityPerWorker: 1,
  circuitBreaker: { ...CIRCUIT_BREAKER_DEFAULTS },
} as ResolvedPoolOptions;

/** A worker that answers every call with `reply`. */
function answering(reply: WorkerMessage__Output): PoolWorker {
  const worker = {
    id: 'p-1',
    pid: 1,
    state: 'ready',
    startedAt: Date.now(),
    capacity: 1,
    busy: 0,
    requestsServed: 0,
    tools: [],
    toolNames: new Set<string>(),
    isServing: true,
    dispatch: (_request: unknown, listener: CallListener) => {
      setTimeout(() => listener.end(reply), 0);
      return 1;
    },
    cancel: () => undefined,
    credit: () => undefined,
    drain: () => undefined,
    kill: () => undefined,
    stop: () => Promise.resolve(),
    whenIdle: () => Promise.resolve(),
    checkHealth: () => Promise.resolve('SERVING'),
    info: () => ({ id: 'p-1', pid: 1, state: 'ready' as const, busy: 0, capacity: 1, requestsServed: 0, uptimeMs: 0, sharedMemoryBytes: 0 }),
  };
  return worker as PoolWorker;
}

async function resultOf(reply: WorkerMessage__Output): Promise<unknown> {
  const worker = answering(reply);
  const pool = new WorkerPool({
    config,
    launcher: { launch: () => Promise.resolve(worker) },
    telemetry: new TelemetryService(),
    logger,
    sampleRss: () => new Map(),
    stopGraceMs: 10,
  });
  await pool.start();
  try {
    return await pool.run({ tool: 't', args: { json: Buffer.from('{}') }, stream: false, timeoutMs: 1_000, hostCallDepth: 0 }).catch((error: unknown) => error);
  } finally {
    await pool.stop();
  }
}

describe('CallRun results', () => {
  it('passes a malformed blob on with its own reason and path, and the call context', async () => {
    const error = await resultOf({
      kind: 'result',
      result: {
        value: { json: Buffer.from('{"x":null}'), blobs: [{ path: [{ key: 'x', segment: 'key' }], dtype: 'float32', shape: [2], data: Buffer.alloc(3) }] },
        session: null,
      },
    } as unknown as WorkerMessage__Output);
    expect(error).toBeInstanceOf(SnakepitError);
    expect((error as SnakepitError).code).toBe('SERIALIZATION_ERROR');
    expect((error as SnakepitError).message).toMatch(/malformed blob at \$\.x/);
    expect((error as SnakepitError).details).toMatchObject({ path: '$.x', pool: 'p', tool: 't', workerId: 'p-1' });
  });

  it('calls JSON that does not parse what it is', async () => {
    const error = await resultOf({
      kind: 'result',
      result: { value: { json: Buffer.from('{nope'), blobs: [] }, session: null },
    } as unknown as WorkerMessage__Output);
    expect([(error as SnakepitError).code, (error as SnakepitError).message]).toEqual(['SERIALIZATION_ERROR', 'The result of t is not valid JSON']);
  });
});

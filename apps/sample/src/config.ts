import { resolve } from 'node:path';
import type { PoolOptions, SnakepitModuleOptions } from '@snakepit/nestjs';

/** Everything the sample app reads from its environment, parsed once at start. */
export interface SampleConfig {
  host: string;
  port: number;
  grpcHost: string;
  grpcPort: number;
  python: string;
  pools: PoolOptions[];
  logLevel: string;
  exposeTracebacks: boolean;
  bodyLimitBytes: number;
  /** Host-level lifecycle settings (leftover cleanup, watchdog, drain). */
  lifecycle: Pick<SnakepitModuleOptions, 'instanceName' | 'stateDir' | 'watchdog' | 'drainTimeoutMs'>;
}

/** The repository root: apps/sample/src (ts) and dist/apps/sample (built) are both three levels down. */
export const REPO_ROOT = resolve(__dirname, '..', '..', '..');
const SHOWCASE = 'snakepit_bridge.examples.showcase:ShowcaseAdapter';

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer (got ${JSON.stringify(raw)})`);
  return value;
}

/** An integer setting that, when unset, leaves the library's default in place. */
function optionalInteger(env: NodeJS.ProcessEnv, name: string): number | undefined {
  return env[name] === undefined || env[name] === '' ? undefined : integer(env, name, 0);
}

/** Worker lifecycle knobs, per pool (see the README's lifecycle table). */
function lifecycleOptions(env: NodeJS.ProcessEnv): Partial<PoolOptions> {
  return {
    heartbeatIntervalMs: optionalInteger(env, 'SNAKEPIT_HEARTBEAT_INTERVAL_MS'),
    heartbeatTimeoutMs: optionalInteger(env, 'SNAKEPIT_HEARTBEAT_TIMEOUT_MS'),
    heartbeatMaxMissed: optionalInteger(env, 'SNAKEPIT_HEARTBEAT_MAX_MISSED'),
    cancelGraceMs: optionalInteger(env, 'SNAKEPIT_CANCEL_GRACE_MS'),
    workerTtlMs: optionalInteger(env, 'SNAKEPIT_WORKER_TTL_MS'),
    maxRequestsPerWorker: optionalInteger(env, 'SNAKEPIT_MAX_REQUESTS_PER_WORKER'),
    memoryThresholdMb: optionalInteger(env, 'SNAKEPIT_MEMORY_THRESHOLD_MB'),
    memoryLimitMb: optionalInteger(env, 'SNAKEPIT_MEMORY_LIMIT_MB'),
    crashLoopThreshold: optionalInteger(env, 'SNAKEPIT_CRASH_LOOP_THRESHOLD'),
    crashLoopCooldownMs: optionalInteger(env, 'SNAKEPIT_CRASH_LOOP_COOLDOWN_MS'),
    lifecycleCheckIntervalMs: optionalInteger(env, 'SNAKEPIT_LIFECYCLE_CHECK_MS'),
    circuitBreaker: env.SNAKEPIT_CIRCUIT_BREAKER === 'false' ? false : undefined,
  };
}

/**
 * `SNAKEPIT_POOLS=default:2,inference:1` chooses the pools (all running
 * SNAKEPIT_ADAPTER); without it there is one pool, `default`, of SNAKEPIT_POOL_SIZE.
 */
function parsePools(env: NodeJS.ProcessEnv): PoolOptions[] {
  const adapter = env.SNAKEPIT_ADAPTER || SHOWCASE;
  const shared: Partial<PoolOptions> = {
    timeoutMs: integer(env, 'SNAKEPIT_TIMEOUT_MS', 30_000),
    maxQueueSize: integer(env, 'SNAKEPIT_MAX_QUEUE', 1000),
    queueTimeoutMs: integer(env, 'SNAKEPIT_QUEUE_TIMEOUT_MS', 10_000),
    ...lifecycleOptions(env),
  };
  const spec = env.SNAKEPIT_POOLS || `default:${integer(env, 'SNAKEPIT_POOL_SIZE', 2)}`;
  return spec.split(',').map((entry) => {
    const [name, size] = entry.trim().split(':');
    const parsedSize = Number(size);
    if (!name || !Number.isInteger(parsedSize)) throw new Error(`SNAKEPIT_POOLS entries look like name:size (got ${JSON.stringify(entry)})`);
    return { ...shared, name, size: parsedSize, adapter };
  });
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): SampleConfig {
  const production = env.NODE_ENV === 'production';
  return {
    host: env.HOST || '127.0.0.1',
    port: integer(env, 'PORT', 3000),
    grpcHost: env.GRPC_HOST || '127.0.0.1',
    grpcPort: integer(env, 'GRPC_PORT', 50051),
    python: env.SNAKEPIT_PYTHON || resolve(REPO_ROOT, '.venv', 'bin', 'python'),
    pools: parsePools(env),
    logLevel: env.LOG_LEVEL || 'info',
    exposeTracebacks: env.EXPOSE_TRACEBACKS ? env.EXPOSE_TRACEBACKS === 'true' : !production,
    bodyLimitBytes: integer(env, 'BODY_LIMIT_BYTES', 1024 * 1024),
    lifecycle: {
      instanceName: env.SNAKEPIT_INSTANCE || undefined,
      stateDir: env.SNAKEPIT_STATE_DIR || undefined,
      watchdog: env.SNAKEPIT_WATCHDOG === 'false' ? false : undefined,
      drainTimeoutMs: optionalInteger(env, 'SNAKEPIT_DRAIN_TIMEOUT_MS'),
    },
  };
}

import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import {
  CIRCUIT_BREAKER_DEFAULTS,
  DEFAULT_INHERITED_ENV,
  defaultInstanceName,
  defaultStateDir,
  MODULE_DEFAULTS,
  POOL_DEFAULTS,
  SESSION_DEFAULTS,
  SHARED_MEMORY_DEFAULTS,
} from './defaults';
import type { ClusterOptions } from '../cluster/cluster-options';
import type { CircuitBreakerOptions, PoolOptions, SessionOptions, SharedMemoryOptions, SnakepitModuleOptions } from './snakepit-options';

export type ResolvedPoolOptions = Required<Omit<PoolOptions, 'env' | 'circuitBreaker' | 'sharedMemory'>> & {
  env: Record<string, string>;
  /** Calls one worker runs at once: 1 for the process profile, threadsPerWorker for the thread profile. */
  capacityPerWorker: number;
  circuitBreaker: Required<CircuitBreakerOptions> | false;
  sharedMemory: Required<SharedMemoryOptions> | false;
};

export interface ResolvedOptions {
  pools: ResolvedPoolOptions[];
  env: Record<string, string>;
  inheritEnv: readonly string[];
  socketDir?: string;
  /** The memory file system the run's shared-memory directory is made in; `explicit` when the user chose it. */
  sharedMemoryDir: { path: string; explicit: boolean };
  transport: 'unix' | 'tcp';
  instanceName: string;
  stateDir: string;
  watchdog: boolean;
  drainTimeoutMs: number;
  stopGraceMs: number;
  maxHostCallDepth: number;
  logCalls: boolean;
  sessions: Required<Omit<SessionOptions, 'store'>> & Pick<SessionOptions, 'store'>;
  exposeTracebacks: boolean;
  cluster?: ClusterOptions;
}

/** Thrown at start when the options cannot work; the message lists every problem. */
export class SnakepitConfigError extends Error {
  override readonly name = 'SnakepitConfigError';
  constructor(readonly problems: string[]) {
    super(`Invalid Snakepit configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

const POOL_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;
/** Every pool option: a misspelt or retired one is refused rather than silently ignored. */
const POOL_OPTION_NAMES = new Set(['name', 'size', 'adapter', 'python', 'env', 'circuitBreaker', 'sharedMemory', ...Object.keys(POOL_DEFAULTS)]);
const SHARED_MEMORY_OPTION_NAMES = ['thresholdBytes', 'regionBytes'];
const ADAPTER = /^[A-Za-z_][\w.]*:[A-Za-z_]\w*$/;

/** Finds an executable the way a shell would; returns undefined when there is none. */
export function findExecutable(command: string, pathVariable = process.env.PATH ?? ''): string | undefined {
  const candidates = command.includes('/')
    ? [command]
    : pathVariable
        .split(delimiter)
        .filter(Boolean)
        .map((dir) => join(dir, command));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return isAbsolute(candidate) ? candidate : join(process.cwd(), candidate);
    } catch {
      // not this one
    }
  }
  return undefined;
}

function nonNegativeInteger(problems: string[], where: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) problems.push(`${where} must be 0 (off) or a positive integer (got ${JSON.stringify(value)})`);
}

function positiveInteger(problems: string[], where: string, value: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value <= 0 || value > max) {
    problems.push(`${where} must be an integer between 1 and ${max} (got ${JSON.stringify(value)})`);
  }
}

/** The longest delay a Node timer keeps: setTimeout/setInterval run a longer one after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

/** A duration the host waits with a timer, so at most MAX_TIMER_MS (about 24.8 days). */
function milliseconds(problems: string[], where: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0 || value > MAX_TIMER_MS) {
    problems.push(
      `${where} must be an integer between 1 and ${MAX_TIMER_MS} ms (about 24.8 days: a Node timer cannot wait longer) (got ${JSON.stringify(value)})`,
    );
  }
}

export function resolveOptions(options: SnakepitModuleOptions): ResolvedOptions {
  const problems: string[] = [];
  if (!options || !Array.isArray(options.pools) || options.pools.length === 0) {
    throw new SnakepitConfigError(['`pools` must list at least one pool, e.g. { name: "default", size: 2, adapter: "pkg.module:Adapter" }']);
  }
  const defaultPython = options.python ?? MODULE_DEFAULTS.python;
  const seen = new Set<string>();
  const resolvedPythons = new Map<string, string | undefined>();

  const pools = options.pools.map((pool, index): ResolvedPoolOptions => {
    const where = `pools[${index}]${pool?.name ? ` (${pool.name})` : ''}`;
    if (typeof pool?.name !== 'string' || !POOL_NAME.test(pool.name)) {
      problems.push(`${where}.name must match ${POOL_NAME} (got ${JSON.stringify(pool?.name)})`);
    } else if (seen.has(pool.name)) {
      problems.push(`${where}.name is used by another pool`);
    } else {
      seen.add(pool.name);
    }
    if (typeof pool?.adapter !== 'string' || pool.adapter.length === 0) {
      problems.push(`${where}.adapter is missing: give the adapter class as "module:Class"`);
    } else if (!ADAPTER.test(pool.adapter)) {
      problems.push(`${where}.adapter must look like "package.module:Class" (got ${JSON.stringify(pool.adapter)})`);
    }
    for (const key of Object.keys(pool ?? {})) {
      if (!POOL_OPTION_NAMES.has(key)) problems.push(`${where}.${key} is not a pool option (known: ${[...POOL_OPTION_NAMES].join(', ')})`);
    }
    const resolved: ResolvedPoolOptions = {
      ...POOL_DEFAULTS,
      ...stripUndefined(pool),
      python: pool?.python ?? defaultPython,
      env: { ...(pool?.env ?? {}) },
      circuitBreaker: pool?.circuitBreaker === false ? false : { ...CIRCUIT_BREAKER_DEFAULTS, ...stripUndefined(pool?.circuitBreaker ?? {}) },
    } as ResolvedPoolOptions;
    resolved.sharedMemory = resolveSharedMemory(problems, where, pool?.sharedMemory, resolved.maxPayloadBytes);
    positiveInteger(problems, `${where}.size`, resolved.size, 1024);
    if (resolved.profile !== 'process' && resolved.profile !== 'thread') {
      problems.push(`${where}.profile must be "process" or "thread" (got ${JSON.stringify(resolved.profile)})`);
    }
    positiveInteger(problems, `${where}.threadsPerWorker`, resolved.threadsPerWorker, 1024);
    resolved.capacityPerWorker = resolved.profile === 'thread' ? resolved.threadsPerWorker : 1;
    milliseconds(problems, `${where}.timeoutMs`, resolved.timeoutMs);
    milliseconds(problems, `${where}.maxTimeoutMs`, resolved.maxTimeoutMs);
    positiveInteger(problems, `${where}.maxQueueSize`, resolved.maxQueueSize);
    milliseconds(problems, `${where}.queueTimeoutMs`, resolved.queueTimeoutMs);
    positiveInteger(problems, `${where}.maxPayloadBytes`, resolved.maxPayloadBytes, 1024 * 1024 * 1024);
    milliseconds(problems, `${where}.cancelGraceMs`, resolved.cancelGraceMs);
    milliseconds(problems, `${where}.startTimeoutMs`, resolved.startTimeoutMs);
    positiveInteger(problems, `${where}.startConcurrency`, resolved.startConcurrency, 1024);
    milliseconds(problems, `${where}.restartBackoffMs`, resolved.restartBackoffMs);
    milliseconds(problems, `${where}.maxRestartBackoffMs`, resolved.maxRestartBackoffMs);
    milliseconds(problems, `${where}.heartbeatIntervalMs`, resolved.heartbeatIntervalMs);
    milliseconds(problems, `${where}.heartbeatTimeoutMs`, resolved.heartbeatTimeoutMs);
    positiveInteger(problems, `${where}.heartbeatMaxMissed`, resolved.heartbeatMaxMissed);
    positiveInteger(problems, `${where}.crashLoopThreshold`, resolved.crashLoopThreshold);
    milliseconds(problems, `${where}.crashLoopWindowMs`, resolved.crashLoopWindowMs);
    milliseconds(problems, `${where}.crashLoopCooldownMs`, resolved.crashLoopCooldownMs);
    milliseconds(problems, `${where}.lifecycleCheckIntervalMs`, resolved.lifecycleCheckIntervalMs);
    for (const field of ['workerTtlMs', 'maxRequestsPerWorker', 'memoryThresholdMb', 'memoryLimitMb', 'pipelineDepth'] as const) {
      nonNegativeInteger(problems, `${where}.${field}`, resolved[field]);
    }
    if (resolved.circuitBreaker) {
      const breaker = resolved.circuitBreaker;
      for (const key of Object.keys(pool?.circuitBreaker || {})) {
        if (!(key in CIRCUIT_BREAKER_DEFAULTS))
          problems.push(`${where}.circuitBreaker.${key} is not a breaker option (known: ${Object.keys(CIRCUIT_BREAKER_DEFAULTS).join(', ')})`);
      }
      if (typeof breaker.failureRate !== 'number' || !(breaker.failureRate > 0 && breaker.failureRate < 1)) {
        problems.push(`${where}.circuitBreaker.failureRate must be a number between 0 and 1, exclusive (got ${JSON.stringify(breaker.failureRate)})`);
      }
      if (typeof breaker.minimumRps !== 'number' || !(breaker.minimumRps > 0) || !Number.isFinite(breaker.minimumRps)) {
        problems.push(`${where}.circuitBreaker.minimumRps must be a positive number (got ${JSON.stringify(breaker.minimumRps)})`);
      }
      milliseconds(problems, `${where}.circuitBreaker.windowMs`, breaker.windowMs);
      milliseconds(problems, `${where}.circuitBreaker.resetTimeoutMs`, breaker.resetTimeoutMs);
    }

    if (!['debug', 'info', 'warning', 'error'].includes(resolved.logLevel)) {
      problems.push(`${where}.logLevel must be debug, info, warning or error`);
    }
    if (!resolvedPythons.has(resolved.python)) resolvedPythons.set(resolved.python, findExecutable(resolved.python));
    const executable = resolvedPythons.get(resolved.python);
    if (!executable) {
      problems.push(`${where}: python executable not found: ${JSON.stringify(resolved.python)} (set \`python\` to an interpreter path, e.g. .venv/bin/python)`);
    } else {
      resolved.python = executable;
    }
    return resolved;
  });

  const transport = options.transport ?? MODULE_DEFAULTS.transport;
  if (transport !== 'unix' && transport !== 'tcp') problems.push(`transport must be "unix" or "tcp"`);
  const sessions = { ...SESSION_DEFAULTS, ...stripUndefined(options.sessions ?? {}) };
  positiveInteger(problems, 'sessions.defaultTtlSeconds', sessions.defaultTtlSeconds);
  positiveInteger(problems, 'sessions.maxTtlSeconds', sessions.maxTtlSeconds);
  milliseconds(problems, 'sessions.sweepIntervalMs', sessions.sweepIntervalMs);
  positiveInteger(problems, 'sessions.maxBytes', sessions.maxBytes);
  positiveInteger(problems, 'sessions.maxKeys', sessions.maxKeys);
  const instanceName = options.instanceName ?? defaultInstanceName();
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(instanceName)) problems.push('instanceName must be letters, digits, _ . - (at most 64)');
  const drainTimeoutMs = options.drainTimeoutMs ?? MODULE_DEFAULTS.drainTimeoutMs;
  const stopGraceMs = options.stopGraceMs ?? MODULE_DEFAULTS.stopGraceMs;
  milliseconds(problems, 'drainTimeoutMs', drainTimeoutMs);
  milliseconds(problems, 'stopGraceMs', stopGraceMs);
  const maxHostCallDepth = options.maxHostCallDepth ?? MODULE_DEFAULTS.maxHostCallDepth;
  positiveInteger(problems, 'maxHostCallDepth', maxHostCallDepth, 64);

  if (problems.length > 0) throw new SnakepitConfigError(problems);
  return {
    pools,
    env: { ...(options.env ?? {}) },
    inheritEnv: options.inheritEnv ?? DEFAULT_INHERITED_ENV,
    socketDir: options.socketDir,
    sharedMemoryDir: { path: options.sharedMemoryDir ?? SHARED_MEMORY_DEFAULTS.dir, explicit: options.sharedMemoryDir !== undefined },
    transport,
    instanceName,
    stateDir: options.stateDir ?? defaultStateDir(),
    watchdog: options.watchdog ?? MODULE_DEFAULTS.watchdog,
    drainTimeoutMs,
    stopGraceMs,
    maxHostCallDepth,
    logCalls: options.logCalls ?? false,
    sessions,
    exposeTracebacks: options.exposeTracebacks ?? false,
    cluster: options.cluster,
  };
}

/** A pool's shared-memory settings with their defaults; the region must hold at least one call of maxPayloadBytes. */
function resolveSharedMemory(
  problems: string[],
  where: string,
  options: SharedMemoryOptions | false | undefined,
  maxPayloadBytes: number,
): Required<SharedMemoryOptions> | false {
  if (options === false) return false;
  for (const key of Object.keys(options ?? {})) {
    if (!SHARED_MEMORY_OPTION_NAMES.includes(key))
      problems.push(`${where}.sharedMemory.${key} is not a shared-memory option (known: ${SHARED_MEMORY_OPTION_NAMES.join(', ')})`);
  }
  const resolved = {
    thresholdBytes: SHARED_MEMORY_DEFAULTS.thresholdBytes,
    regionBytes: Math.max(
      SHARED_MEMORY_DEFAULTS.minRegionBytes,
      SHARED_MEMORY_DEFAULTS.regionPayloads * (Number.isInteger(maxPayloadBytes) ? maxPayloadBytes : 0),
    ),
    ...stripUndefined(options ?? {}),
  };
  positiveInteger(problems, `${where}.sharedMemory.thresholdBytes`, resolved.thresholdBytes);
  positiveInteger(problems, `${where}.sharedMemory.regionBytes`, resolved.regionBytes, Number.MAX_SAFE_INTEGER);
  if (Number.isInteger(resolved.regionBytes) && resolved.regionBytes < maxPayloadBytes) {
    problems.push(
      `${where}.sharedMemory.regionBytes (${resolved.regionBytes}) must be at least maxPayloadBytes (${maxPayloadBytes}), or a call of the largest payload could never fit`,
    );
  }
  return resolved;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/** Environment variables workers inherit from the host unless `inheritEnv` replaces the list. */
export const DEFAULT_INHERITED_ENV = [
  'PATH',
  'HOME',
  'USER',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'TZ',
  'TMPDIR',
  'VIRTUAL_ENV',
  'PYTHONPATH',
  'PYTHONHOME',
  // Thread-count knobs of numeric libraries, and OpenBLAS's CPU-type overrides
  // that some machines need to avoid wrong results.
  'OMP_NUM_THREADS',
  'OPENBLAS_NUM_THREADS',
  'MKL_NUM_THREADS',
  'OPENBLAS_CORETYPE',
  'OPENBLAS_L2_SIZE',
] as const;

export const POOL_DEFAULTS = {
  profile: 'process',
  threadsPerWorker: 4,
  pipelineDepth: 0,
  timeoutMs: 30_000,
  maxTimeoutMs: 3_600_000,
  maxQueueSize: 1000,
  queueTimeoutMs: 10_000,
  maxPayloadBytes: 16 * 1024 * 1024,
  cancelGraceMs: 5_000,
  startTimeoutMs: 30_000,
  startConcurrency: 4,
  restartBackoffMs: 100,
  maxRestartBackoffMs: 10_000,
  logLevel: 'info',
  heartbeatIntervalMs: 2_000,
  heartbeatTimeoutMs: 1_000,
  heartbeatMaxMissed: 3,
  crashLoopThreshold: 5,
  crashLoopWindowMs: 60_000,
  crashLoopCooldownMs: 30_000,
  workerTtlMs: 0,
  maxRequestsPerWorker: 0,
  memoryThresholdMb: 0,
  memoryLimitMb: 0,
  lifecycleCheckIntervalMs: 5_000,
} as const;

export const SHARED_MEMORY_DEFAULTS = {
  dir: '/dev/shm',
  thresholdBytes: 128 * 1024,
  /** regionBytes: this many times the pool's maxPayloadBytes, and at least minRegionBytes. */
  regionPayloads: 4,
  minRegionBytes: 64 * 1024 * 1024,
} as const;

export const CIRCUIT_BREAKER_DEFAULTS = {
  failureRate: 0.5,
  windowMs: 10_000,
  minimumRps: 1,
  resetTimeoutMs: 10_000,
} as const;

export const MODULE_DEFAULTS = {
  python: 'python3',
  watchdog: true,
  transport: 'unix',
  drainTimeoutMs: 10_000,
  stopGraceMs: 5_000,
  maxHostCallDepth: 4,
} as const;

/**
 * The default `instanceName`: `app-` and 8 hex digits of the SHA-256 of the
 * entry script's real path and the working directory's. Two apps, or one app's
 * dev server and its test run, thus never take each other's registry for a
 * crashed run of their own, while a restarted app finds what its last run left.
 * The directory counts too because a shared launcher (a global ts-node, pm2)
 * is the entry script of many apps.
 */
export function defaultInstanceName(entry: string | undefined = process.argv[1], cwd: string = process.cwd()): string {
  const real = (path: string) => {
    try {
      return realpathSync(path);
    } catch {
      return resolve(path);
    }
  };
  const script = entry ? real(resolve(cwd, entry)) : '';
  const identity = `${script}\0${real(cwd)}`;
  return `app-${createHash('sha256').update(identity).digest('hex').slice(0, 8)}`;
}

/**
 * The default `stateDir`: `$XDG_RUNTIME_DIR/snakepit` when that is set (a
 * per-user private directory), else `snakepit-<uid>` in the OS temp directory.
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const runtimeDir = env.XDG_RUNTIME_DIR;
  if (runtimeDir && isAbsolute(runtimeDir)) return join(runtimeDir, 'snakepit');
  return join(tmpdir(), `snakepit-${process.geteuid?.() ?? userInfo().uid}`);
}

export const SESSION_DEFAULTS = {
  defaultTtlSeconds: 3600,
  maxTtlSeconds: 7 * 24 * 3600,
  sweepIntervalMs: 5_000,
  maxBytes: 1024 * 1024,
  maxKeys: 1024,
} as const;

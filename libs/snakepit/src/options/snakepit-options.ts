import type { ClusterOptions } from '../cluster/cluster-options';
import type { SessionStore } from '../session/session-store';

/** One named pool of Python workers running the same adapter. */
export interface PoolOptions {
  /** Pool name used for routing (`execute(tool, args, { pool })`). Letters, digits, `_` and `-`. */
  name: string;
  /** Number of worker processes kept alive. */
  size: number;
  /** The adapter class as `module:Class`, importable by the pool's Python. */
  adapter: string;
  /** Python executable for this pool (default: the module-level `python`). */
  python?: string;
  /** Extra environment variables for this pool's workers. */
  env?: Record<string, string>;
  /** Calls one worker runs at once (default 1: one call per process). */
  capacityPerWorker?: number;
  /** Time budget of a call, queue wait included, unless the call sets its own (default 30 000 ms). */
  timeoutMs?: number;
  /** Upper bound a caller may ask for with `timeoutMs` (default 1 hour). */
  maxTimeoutMs?: number;
  /** Calls allowed to wait for a free worker; beyond that, QUEUE_FULL (default 1000). */
  maxQueueSize?: number;
  /** Longest wait in the queue before QUEUE_TIMEOUT (default 10 000 ms). */
  queueTimeoutMs?: number;
  /** Largest serialized argument payload accepted (default 16 MiB). */
  maxPayloadBytes?: number;
  /** Time a worker gets to confirm a cancelled call stopped before it is replaced (default 5 000 ms). */
  cancelGraceMs?: number;
  /** Time a worker gets from spawn to answering its first round trip (default 30 000 ms). */
  startTimeoutMs?: number;
  /** Workers started at once during pool start (default 4). */
  startConcurrency?: number;
  /** First delay before replacing a dead worker; doubles per consecutive failure (default 100 ms). */
  restartBackoffMs?: number;
  /** Longest delay between replacement attempts (default 10 000 ms). */
  maxRestartBackoffMs?: number;
  /** Python log level passed to workers (default `info`). */
  logLevel?: 'debug' | 'info' | 'warning' | 'error';
}

export interface SessionOptions {
  /** TTL of a session created without one (default 3600 s). */
  defaultTtlSeconds?: number;
  /** Largest TTL a caller may ask for (default 7 days). */
  maxTtlSeconds?: number;
  /** How often expired sessions are swept from the in-memory store (default 5 000 ms). */
  sweepIntervalMs?: number;
  /** A SessionStore to use instead of the in-memory one. */
  store?: SessionStore;
}

export interface SnakepitModuleOptions {
  pools: PoolOptions[];
  /** Default Python executable (default `python3`). */
  python?: string;
  /** Environment variables given to every worker, on top of the allow-list. */
  env?: Record<string, string>;
  /**
   * Host environment variables workers inherit. Only these cross over: the
   * host's secrets stay out of Python unless named here.
   */
  inheritEnv?: string[];
  /** Where worker sockets live; a private 0700 directory is created inside it (default: the OS temp dir). */
  socketDir?: string;
  /** `unix` (default): Unix domain sockets; `tcp`: 127.0.0.1 with OS-assigned ports. */
  transport?: 'unix' | 'tcp';
  /** Time shutdown waits for in-flight calls before stopping workers (default 10 000 ms). */
  drainTimeoutMs?: number;
  /** Time a worker gets between SIGTERM and SIGKILL (default 5 000 ms). */
  stopGraceMs?: number;
  sessions?: SessionOptions;
  /** Turns cluster mode on: sessions in Redis, pools shared across nodes. Absent: everything stays in this process. */
  cluster?: ClusterOptions;
  /** Whether error bodies include Python tracebacks (default: true unless NODE_ENV=production, decided by the app). */
  exposeTracebacks?: boolean;
}

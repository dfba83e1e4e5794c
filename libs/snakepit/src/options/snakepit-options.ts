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
  /**
   * `process` (default): one call at a time per Python process — full isolation,
   * for any code. `thread`: each process runs up to `threadsPerWorker` calls at
   * once on threads — for thread-safe code that releases the GIL (numpy, model
   * inference) or free-threaded Python; the adapter must declare `thread_safe = True`.
   */
  profile?: 'process' | 'thread';
  /** Calls a `thread`-profile worker runs at once (default 4). */
  threadsPerWorker?: number;
  /**
   * Calls sent ahead to a busy worker, beyond the ones it runs, to wait in the
   * worker's own queue (default 0: calls wait in the pool's queue for any free
   * worker). Raises throughput for many short calls — they share gRPC messages —
   * but a call may wait behind a slow one while another worker is free, and a
   * crash fails the calls waiting there too. For short, uniform tools.
   */
  pipelineDepth?: number;
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
  /** How often each worker's health is checked over grpc.health.v1 (default 2 000 ms). */
  heartbeatIntervalMs?: number;
  /** How long one health check may take before it counts as missed (default 1 000 ms). */
  heartbeatTimeoutMs?: number;
  /** Missed heartbeats in a row after which a worker is declared frozen, killed and replaced (default 3). */
  heartbeatMaxMissed?: number;
  /** Crashes within `crashLoopWindowMs` that mark the pool crash-looping (default 5). */
  crashLoopThreshold?: number;
  /** The window crashes are counted in (default 60 000 ms). */
  crashLoopWindowMs?: number;
  /** While crash-looping, restarts pause this long before one more try (default 30 000 ms). */
  crashLoopCooldownMs?: number;
  /** Per-pool circuit breaker; `false` turns it off. */
  circuitBreaker?: CircuitBreakerOptions | false;
  /** Recycle a worker after it lived this long; 0 = never (default 0). */
  workerTtlMs?: number;
  /** Recycle a worker after it served this many calls; 0 = never (default 0). */
  maxRequestsPerWorker?: number;
  /** Recycle a worker whose process group uses more resident memory than this; 0 = never (default 0). */
  memoryThresholdMb?: number;
  /**
   * Hard address-space limit per worker, enforced by the OS (RLIMIT_AS) before
   * the adapter loads; a call that breaches it fails with RESOURCE_EXHAUSTED. 0 = none (default 0).
   */
  memoryLimitMb?: number;
  /** How often TTL and memory are checked (default 5 000 ms). */
  lifecycleCheckIntervalMs?: number;
  /**
   * Large arrays and bytes travel through shared memory instead of inside the
   * gRPC message (see SharedMemoryOptions); `false` keeps everything in the
   * messages. On by default where the module's `sharedMemoryDir` is usable.
   */
  sharedMemory?: SharedMemoryOptions | false;
}

/**
 * Each worker gets two regions, files on a memory file system (tmpfs) in a
 * private directory of the run: one the host writes arguments into and the
 * worker maps (numpy arrays over it, no copy), one the worker writes results
 * into and the host reads. The gRPC message carries only where each blob lies.
 */
export interface SharedMemoryOptions {
  /** Arrays and byte strings of at least this many bytes go through the regions (default 128 KiB: below, the two ways measured level). */
  thresholdBytes?: number;
  /**
   * Cap of each of a worker's two regions: the blobs of the calls in flight on
   * it (default 4 × maxPayloadBytes, at least 64 MiB). Pages are taken as they
   * are written, so the cap costs nothing until used. A call whose blobs do not
   * fit fails with RESOURCE_EXHAUSTED (`details.option: 'sharedMemory.regionBytes'`).
   */
  regionBytes?: number;
}

/**
 * The breaker counts only what says the pool is broken: calls whose worker
 * died or whose stream broke (WORKER_CRASHED) and calls no worker could take
 * because none would start (WORKER_UNAVAILABLE). Load shedding, timeouts,
 * cancels and the tool's own errors count as successes.
 */
export interface CircuitBreakerOptions {
  /** Share of calls in the window that found the pool broken, above which the circuit opens (default 0.5, between 0 and 1). */
  failureRate?: number;
  /** Length of the sliding window the rate is measured over (default 10 000 ms). */
  windowMs?: number;
  /** Calls per second the window must average before the rate counts, so a few crashes at low traffic never open it (default 1). */
  minimumRps?: number;
  /** Time the circuit stays open before one probe call is let through (default 10 000 ms). */
  resetTimeoutMs?: number;
}

export interface SessionOptions {
  /** TTL of a session created without one (default 3600 s). */
  defaultTtlSeconds?: number;
  /** Largest TTL a caller may ask for (default 7 days). */
  maxTtlSeconds?: number;
  /** How often expired sessions are swept from the in-memory store (default 5 000 ms). */
  sweepIntervalMs?: number;
  /**
   * Cap on one session's state: the UTF-8 bytes of every key plus its JSON
   * value (default 1 MiB). A commit that would grow past it writes nothing and
   * fails with PAYLOAD_TOO_LARGE (`details.option: 'sessions.maxBytes'`).
   */
  maxBytes?: number;
  /** Cap on the number of keys in one session's state (default 1024); same failure, `'sessions.maxKeys'`. */
  maxKeys?: number;
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
  /**
   * Names this host for leftover cleanup: on start it kills what an earlier,
   * crashed run of the same instance left behind. A second live host of the
   * same instance is refused at start. Default: `app-<8 hex>`, from the SHA-256
   * of the real paths of the entry script (`process.argv[1]`) and the working
   * directory, so two apps, or a dev server and a test run, on one machine are
   * different instances while a restarted app is the same one. Set it when one
   * script in one directory runs several hosts at once (e.g. per port).
   */
  instanceName?: string;
  /**
   * Where the instance's process registry (`<instanceName>.json`) lives.
   * Default: `$XDG_RUNTIME_DIR/snakepit` when XDG_RUNTIME_DIR is set, else
   * `snakepit-<uid>` in the OS temp dir. It is created with mode 0700 if
   * missing; one that exists must be a real directory (no symlink) owned by the
   * effective uid with mode 0700, else the module refuses to start
   * (SnakepitConfigError naming the path). If it disappears while the host
   * runs (a /tmp cleaner), the next registry write re-creates it; failed writes
   * (e.g. a full disk) are logged, never thrown.
   */
  stateDir?: string;
  /** Start the watchdog process that kills the workers if this host dies (default true). */
  watchdog?: boolean;
  /**
   * A memory file system (tmpfs) where each run makes its private 0700 directory
   * of shared-memory regions (default `/dev/shm`). When the default is missing or
   * not writable (macOS, some containers), pools fall back to gRPC messages and
   * say so in the log; a directory given here must be usable.
   */
  sharedMemoryDir?: string;
  /**
   * Log one debug line per finished call, with its context (default false): it
   * costs about a microsecond per call even where the logger drops debug lines.
   */
  logCalls?: boolean;
  /** Deepest Python -> host tool -> Python ... chain allowed (default 4). */
  maxHostCallDepth?: number;
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

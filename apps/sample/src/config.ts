import { resolve } from 'node:path';
import { DEFAULT_INHERITED_ENV, type ClusterOptions, type PoolOptions, type SnakepitModuleOptions } from '@snakepit/nestjs';

/** Everything the sample app reads from its environment, parsed once at start. */
export interface SampleConfig {
  host: string;
  port: number;
  grpcHost: string;
  grpcPort: number;
  /** The largest message the public gRPC server takes and sends (GRPC_MAX_MESSAGE_BYTES, default 64 MiB, like the binary route). */
  grpcMaxMessageBytes: number;
  python: string;
  pools: PoolOptions[];
  logLevel: string;
  exposeTracebacks: boolean;
  bodyLimitBytes: number;
  /** Host-level lifecycle settings (leftover cleanup, watchdog, drain). */
  lifecycle: Pick<SnakepitModuleOptions, 'instanceName' | 'stateDir' | 'socketDir' | 'sharedMemoryDir' | 'watchdog' | 'drainTimeoutMs' | 'inheritEnv'>;
  /** Set when REDIS_URL is: this app is one node of a cluster. */
  cluster?: ClusterOptions;
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

/** A decimal setting (a rate), checked by the library's own option validation. */
function optionalNumber(env: NodeJS.ProcessEnv, name: string): number | undefined {
  return env[name] === undefined || env[name] === '' ? undefined : Number(env[name]);
}

/** Worker lifecycle knobs, per pool (see the table in docs/lifecycle.md). */
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
    circuitBreaker:
      env.SNAKEPIT_CIRCUIT_BREAKER === 'false'
        ? false
        : {
            failureRate: optionalNumber(env, 'SNAKEPIT_CIRCUIT_FAILURE_RATE'),
            minimumRps: optionalNumber(env, 'SNAKEPIT_CIRCUIT_MIN_RPS'),
            windowMs: optionalInteger(env, 'SNAKEPIT_CIRCUIT_WINDOW_MS'),
            resetTimeoutMs: optionalInteger(env, 'SNAKEPIT_CIRCUIT_RESET_MS'),
          },
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
    maxPayloadBytes: optionalInteger(env, 'SNAKEPIT_MAX_PAYLOAD_BYTES'),
    // Passed through as given: the library rejects an unknown profile with a clear message.
    profile: (env.SNAKEPIT_PROFILE || undefined) as PoolOptions['profile'],
    logLevel: (env.SNAKEPIT_PYTHON_LOG_LEVEL || undefined) as PoolOptions['logLevel'],
    threadsPerWorker: optionalInteger(env, 'SNAKEPIT_THREADS_PER_WORKER'),
    pipelineDepth: optionalInteger(env, 'SNAKEPIT_PIPELINE_DEPTH'),
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

/** The cluster secret when SNAKEPIT_CLUSTER_SECRET is unset: for development only, refused with NODE_ENV=production. */
export const DEV_CLUSTER_SECRET = 'snakepit-dev-cluster-secret';

/**
 * `REDIS_URL` turns cluster mode on; `SNAKEPIT_NODE_ID` names the node. The
 * internal node-to-node service listens on SNAKEPIT_CLUSTER_HOST (127.0.0.1) :
 * SNAKEPIT_CLUSTER_PORT (0 = any free port) and is advertised as
 * SNAKEPIT_CLUSTER_ADVERTISE (default: that host and the bound port).
 * Security: SNAKEPIT_CLUSTER_ACCEPTED_SECRETS (comma-separated, for rotation),
 * SNAKEPIT_CLUSTER_TLS_{CA,CERT,KEY} (PEM file paths or PEM text),
 * SNAKEPIT_CLUSTER_TLS_REQUIRE_CLIENT_CERT=false, SNAKEPIT_CLUSTER_TLS_SERVER_NAME,
 * SNAKEPIT_CLUSTER_ALLOW_PLAINTEXT=true, SNAKEPIT_REDIS_TLS_{CA,CERT,KEY,SERVERNAME}.
 * Any TLS variable set passes the group on, so the library names what is missing.
 */
function clusterOptions(env: NodeJS.ProcessEnv, production: boolean): ClusterOptions | undefined {
  if (!env.REDIS_URL) return undefined;
  const secret = env.SNAKEPIT_CLUSTER_SECRET || (production ? undefined : DEV_CLUSTER_SECRET);
  if (!secret) throw new Error('SNAKEPIT_CLUSTER_SECRET must be set when REDIS_URL is set and NODE_ENV=production');
  return {
    redis: env.REDIS_URL,
    secret,
    nodeId: env.SNAKEPIT_NODE_ID || undefined,
    listen: `${env.SNAKEPIT_CLUSTER_HOST || '127.0.0.1'}:${integer(env, 'SNAKEPIT_CLUSTER_PORT', 0)}`,
    advertiseAddress: env.SNAKEPIT_CLUSTER_ADVERTISE || undefined,
    heartbeatIntervalMs: optionalInteger(env, 'SNAKEPIT_CLUSTER_HEARTBEAT_MS'),
    nodeTtlMs: optionalInteger(env, 'SNAKEPIT_CLUSTER_NODE_TTL_MS'),
    acceptedSecrets: env.SNAKEPIT_CLUSTER_ACCEPTED_SECRETS ? env.SNAKEPIT_CLUSTER_ACCEPTED_SECRETS.split(',') : undefined,
    allowPlaintext: env.SNAKEPIT_CLUSTER_ALLOW_PLAINTEXT === 'true' || undefined,
    tls: group(env, 'SNAKEPIT_CLUSTER_TLS_', { ca: 'CA', cert: 'CERT', key: 'KEY', serverName: 'SERVER_NAME' }, (tls) => ({
      ...tls,
      ca: tls.ca ?? '',
      cert: tls.cert ?? '',
      key: tls.key ?? '',
      requireClientCert: env.SNAKEPIT_CLUSTER_TLS_REQUIRE_CLIENT_CERT === 'false' ? false : undefined,
    })),
    redisTls: group(env, 'SNAKEPIT_REDIS_TLS_', { ca: 'CA', cert: 'CERT', key: 'KEY', servername: 'SERVERNAME' }, (tls) => tls),
  };
}

/** The variables `prefix` + name that are set, under their option names; undefined when none is. */
function group<K extends string, T>(
  env: NodeJS.ProcessEnv,
  prefix: string,
  names: Record<K, string>,
  build: (values: Partial<Record<K, string>>) => T,
): T | undefined {
  const values = Object.fromEntries(
    Object.entries<string>(names)
      .map(([option, name]) => [option, env[prefix + name]])
      .filter(([, value]) => value),
  ) as Partial<Record<K, string>>;
  return Object.keys(values).length > 0 ? build(values) : undefined;
}

/**
 * The body limit of POST /api/execute/:tool/binary (BINARY_BODY_LIMIT_BYTES, default 64 MiB), apart from
 * BODY_LIMIT_BYTES for JSON bodies. Read by the execute controller as it registers that route's body parser.
 */
export function binaryBodyLimitBytes(env: NodeJS.ProcessEnv = process.env): number {
  return integer(env, 'BINARY_BODY_LIMIT_BYTES', 64 * 1024 * 1024);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): SampleConfig {
  const production = env.NODE_ENV === 'production';
  return {
    host: env.HOST || '127.0.0.1',
    port: integer(env, 'PORT', 3000),
    grpcHost: env.GRPC_HOST || '127.0.0.1',
    grpcPort: integer(env, 'GRPC_PORT', 50051),
    grpcMaxMessageBytes: integer(env, 'GRPC_MAX_MESSAGE_BYTES', 64 * 1024 * 1024),
    python: env.SNAKEPIT_PYTHON || resolve(REPO_ROOT, '.venv', 'bin', 'python'),
    pools: parsePools(env),
    logLevel: env.LOG_LEVEL || 'info',
    exposeTracebacks: env.EXPOSE_TRACEBACKS ? env.EXPOSE_TRACEBACKS === 'true' : !production,
    // Room for a call of the default maxPayloadBytes (16 MiB) as JSON: $ndarray data is base64, 4/3 of the array.
    bodyLimitBytes: integer(env, 'BODY_LIMIT_BYTES', 24 * 1024 * 1024),
    lifecycle: {
      // Two sample apps on different ports are different instances: neither cleans up after the other.
      instanceName: env.SNAKEPIT_INSTANCE || `sample-${integer(env, 'PORT', 3000)}`,
      stateDir: env.SNAKEPIT_STATE_DIR || undefined,
      socketDir: env.SNAKEPIT_SOCKET_DIR || undefined,
      sharedMemoryDir: env.SNAKEPIT_SHARED_MEMORY_DIR || undefined,
      watchdog: env.SNAKEPIT_WATCHDOG === 'false' ? false : undefined,
      drainTimeoutMs: optionalInteger(env, 'SNAKEPIT_DRAIN_TIMEOUT_MS'),
      // Workers see only allow-listed variables; SNAKEPIT_INHERIT_ENV=A,B adds to the list.
      inheritEnv: [...DEFAULT_INHERITED_ENV, ...(env.SNAKEPIT_INHERIT_ENV ?? '').split(',').filter(Boolean)],
    },
    cluster: clusterOptions(env, production),
  };
}

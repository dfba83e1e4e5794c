import { hostname } from 'node:os';
import { SnakepitConfigError } from '../options/resolve-options';

/** Cluster mode: several Nest nodes act as one Snakepit, coordinated through Redis. */
export interface ClusterOptions {
  /** Redis connection URL, e.g. `redis://127.0.0.1:6379/0`. */
  redis: string;
  /**
   * Shared secret every node presents on the internal gRPC service (at least 16
   * characters). It travels in call metadata: keep the internal port on a private network.
   */
  secret: string;
  /** This node's id (default: hostname + pid). */
  nodeId?: string;
  /** host:port the internal gRPC service listens on (default `127.0.0.1:0`: loopback, an OS-assigned port). */
  listen?: string;
  /** host:port where other nodes reach this node's internal gRPC service (default: the listen host and bound port). */
  advertiseAddress?: string;
  /** Prefix of every Redis key and channel, so several clusters can share one Redis (default `snakepit:`). */
  keyPrefix?: string;
  /** How often this node refreshes its membership and re-reads everyone else's (default 1 000 ms). */
  heartbeatIntervalMs?: number;
  /** A node that has not refreshed for this long is gone: the failure-detection window (default 3 000 ms). */
  nodeTtlMs?: number;
  /** Longest wait for one Redis command before it fails (default 1 000 ms). */
  redisCommandTimeoutMs?: number;
}

export type ResolvedClusterOptions = Required<Omit<ClusterOptions, 'advertiseAddress'>> & Pick<ClusterOptions, 'advertiseAddress'>;

export const CLUSTER_DEFAULTS = {
  listen: '127.0.0.1:0',
  keyPrefix: 'snakepit:',
  heartbeatIntervalMs: 1_000,
  nodeTtlMs: 3_000,
  redisCommandTimeoutMs: 1_000,
} as const;

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/;
const WILDCARD_HOSTS = new Set(['0.0.0.0', '[::]']);
export const MIN_SECRET_LENGTH = 16;

/** Splits `host:port` (IPv6 in brackets); undefined when it is not one. */
export function parseHostPort(address: string): { host: string; port: number } | undefined {
  const match = HOST_PORT.exec(address);
  if (!match || Number(match[2]) > 65_535) return undefined;
  return { host: match[1], port: Number(match[2]) };
}

/** Applies the defaults and checks the cluster options, listing every problem at once. */
export function resolveClusterOptions(options: ClusterOptions): ResolvedClusterOptions {
  const resolved: ResolvedClusterOptions = {
    ...CLUSTER_DEFAULTS,
    nodeId: `${hostname()}-${process.pid}`,
    ...(Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as ClusterOptions),
  };
  const problems: string[] = [];
  if (typeof resolved.redis !== 'string' || !/^rediss?:\/\//.test(resolved.redis)) {
    problems.push('cluster.redis must be a redis:// or rediss:// URL');
  }
  if (typeof resolved.secret !== 'string' || resolved.secret.length < MIN_SECRET_LENGTH) {
    problems.push(`cluster.secret must be a string of at least ${MIN_SECRET_LENGTH} characters, the same on every node`);
  }
  if (!NODE_ID.test(resolved.nodeId)) problems.push(`cluster.nodeId must match ${NODE_ID} (got ${JSON.stringify(resolved.nodeId)})`);
  const listen = parseHostPort(resolved.listen);
  if (!listen) problems.push(`cluster.listen must be host:port (got ${JSON.stringify(resolved.listen)})`);
  if (resolved.advertiseAddress !== undefined) {
    const advertised = parseHostPort(resolved.advertiseAddress);
    if (!advertised || advertised.port === 0 || WILDCARD_HOSTS.has(advertised.host)) {
      problems.push(`cluster.advertiseAddress must be a host:port other nodes can dial (got ${JSON.stringify(resolved.advertiseAddress)})`);
    }
  } else if (listen && WILDCARD_HOSTS.has(listen.host)) {
    problems.push(`cluster.advertiseAddress is required when cluster.listen is a wildcard address (${resolved.listen})`);
  }
  for (const field of ['heartbeatIntervalMs', 'nodeTtlMs', 'redisCommandTimeoutMs'] as const) {
    const value = resolved[field];
    if (!Number.isInteger(value) || value <= 0) problems.push(`cluster.${field} must be a positive integer (got ${JSON.stringify(value)})`);
  }
  if (resolved.nodeTtlMs < 2 * resolved.heartbeatIntervalMs) {
    problems.push('cluster.nodeTtlMs must be at least twice cluster.heartbeatIntervalMs, or one late heartbeat would drop a live node');
  }
  if (typeof resolved.keyPrefix !== 'string') problems.push('cluster.keyPrefix must be a string');
  if (problems.length > 0) throw new SnakepitConfigError(problems);
  return resolved;
}

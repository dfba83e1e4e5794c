import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { createSecureContext } from 'node:tls';
import { SnakepitConfigError } from '../options/resolve-options';

/**
 * TLS of the internal node-to-node service. Every node presents `cert` as a
 * server and as a client, and trusts peers whose certificate `ca` signed. Each
 * of `ca`, `cert` and `key` is PEM text or the path of a PEM file.
 */
export interface ClusterTlsOptions {
  /** CA certificate(s) that signed the nodes' certificates. */
  ca: string;
  /** This node's certificate (chain), valid for the host of its advertised address (or `serverName`), for serverAuth and clientAuth. */
  cert: string;
  /** The private key of `cert`. */
  key: string;
  /** Mutual TLS: refuse a caller without a certificate `ca` signed (default true). */
  requireClientCert?: boolean;
  /** The name checked in the other nodes' certificates instead of the host they are dialled at (e.g. one name for the whole cluster). */
  serverName?: string;
}

/** TLS towards Redis (with a `rediss://` URL); each of `ca`, `cert`, `key` PEM text or a file path. */
export interface RedisTlsOptions {
  /** CA that signed Redis's certificate (default: Node's trusted roots). */
  ca?: string;
  /** Client certificate, when Redis checks clients (`tls-auth-clients yes`); needs `key`. */
  cert?: string;
  key?: string;
  /** The name checked in Redis's certificate (default: the URL's host). */
  servername?: string;
}

/** Cluster mode: several Nest nodes act as one Snakepit, coordinated through Redis. */
export interface ClusterOptions {
  /** Redis connection URL, e.g. `redis://127.0.0.1:6379/0`. */
  redis: string;
  /**
   * Shared secret (at least 16 characters): signs this node's record in Redis
   * and every call it forwards (HMAC-SHA256). It never leaves the node.
   */
  secret: string;
  /**
   * Secrets also accepted when checking other nodes' records and calls, for
   * rotation without a full restart (see docs/cluster.md, "Security settings").
   */
  acceptedSecrets?: string[];
  /** TLS (mutual by default) on the internal service. Required with NODE_ENV=production unless `allowPlaintext`. */
  tls?: ClusterTlsOptions;
  /** Serve and dial the internal service in plaintext even with NODE_ENV=production (a private network or an encrypting mesh). */
  allowPlaintext?: boolean;
  /** TLS options towards Redis; the URL must be `rediss://`. User and password come from the URL. */
  redisTls?: RedisTlsOptions;
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

export interface ResolvedClusterTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  requireClientCert: boolean;
  serverName?: string;
}

export interface ResolvedRedisTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
}

export type ResolvedClusterOptions = Required<Omit<ClusterOptions, 'advertiseAddress' | 'acceptedSecrets' | 'tls' | 'redisTls'>> &
  Pick<ClusterOptions, 'advertiseAddress'> & {
    /** Every secret a record or call may be signed with: `secret` first, then `acceptedSecrets`. */
    verifySecrets: string[];
    tls?: ResolvedClusterTls;
    redisTls?: ResolvedRedisTls;
  };

export const CLUSTER_DEFAULTS = {
  listen: '127.0.0.1:0',
  keyPrefix: 'snakepit:',
  heartbeatIntervalMs: 1_000,
  nodeTtlMs: 3_000,
  redisCommandTimeoutMs: 1_000,
  allowPlaintext: false,
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

/**
 * Applies the defaults and checks the cluster options, listing every problem at
 * once. PEM files are read here; `env` decides the production rule (NODE_ENV).
 */
export function resolveClusterOptions(options: ClusterOptions, env: NodeJS.ProcessEnv = process.env): ResolvedClusterOptions {
  const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as ClusterOptions;
  const { acceptedSecrets = [], tls, redisTls, ...plain } = given;
  const problems: string[] = [];
  const resolved: ResolvedClusterOptions = {
    ...CLUSTER_DEFAULTS,
    nodeId: `${hostname()}-${process.pid}`,
    ...plain,
    verifySecrets: [],
    tls: tls === undefined ? undefined : resolveTls(tls, problems),
    redisTls: redisTls === undefined ? undefined : resolveRedisTls(redisTls, problems),
  };
  if (typeof resolved.redis !== 'string' || !/^rediss?:\/\//.test(resolved.redis)) {
    problems.push('cluster.redis must be a redis:// or rediss:// URL');
  }
  if (typeof resolved.secret !== 'string' || resolved.secret.length < MIN_SECRET_LENGTH) {
    problems.push(`cluster.secret must be a string of at least ${MIN_SECRET_LENGTH} characters, the same on every node`);
  }
  if (!Array.isArray(acceptedSecrets) || acceptedSecrets.some((secret) => typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH)) {
    problems.push(`cluster.acceptedSecrets must be an array of strings of at least ${MIN_SECRET_LENGTH} characters`);
  } else {
    resolved.verifySecrets = [...new Set([resolved.secret, ...acceptedSecrets])];
  }
  if (env.NODE_ENV === 'production' && tls === undefined && resolved.allowPlaintext !== true) {
    problems.push('cluster.tls is required with NODE_ENV=production (or set cluster.allowPlaintext: true on a private network that encrypts)');
  }
  if (redisTls !== undefined && typeof resolved.redis === 'string' && !resolved.redis.startsWith('rediss://')) {
    problems.push('cluster.redisTls is set but cluster.redis is not a rediss:// URL');
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

/** Half a TLS configuration is refused, naming what is missing; the key must match the certificate. */
function resolveTls(tls: ClusterTlsOptions, problems: string[]): ResolvedClusterTls | undefined {
  const missing = (['ca', 'cert', 'key'] as const).filter((field) => tls[field] === undefined || tls[field] === '');
  if (missing.length > 0) {
    problems.push(`cluster.tls is missing ${missing.map((field) => `cluster.tls.${field}`).join(', ')} (ca, cert and key are all required)`);
    return undefined;
  }
  const before = problems.length;
  const ca = loadPem('cluster.tls.ca', tls.ca, problems);
  const cert = loadPem('cluster.tls.cert', tls.cert, problems);
  const key = loadPem('cluster.tls.key', tls.key, problems);
  if (tls.requireClientCert !== undefined && typeof tls.requireClientCert !== 'boolean') problems.push('cluster.tls.requireClientCert must be a boolean');
  if (tls.serverName !== undefined && (typeof tls.serverName !== 'string' || tls.serverName === ''))
    problems.push('cluster.tls.serverName must be a non-empty string');
  if (problems.length > before || !ca || !cert || !key) return undefined;
  checkSecureContext('cluster.tls', { ca, cert, key }, problems);
  return { ca, cert, key, requireClientCert: tls.requireClientCert ?? true, ...(tls.serverName ? { serverName: tls.serverName } : {}) };
}

function resolveRedisTls(tls: RedisTlsOptions, problems: string[]): ResolvedRedisTls | undefined {
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    problems.push(`cluster.redisTls.${tls.cert === undefined ? 'cert' : 'key'} is missing (a client certificate needs both cert and key)`);
    return undefined;
  }
  const before = problems.length;
  const resolved: ResolvedRedisTls = {};
  for (const field of ['ca', 'cert', 'key'] as const) {
    if (tls[field] !== undefined) resolved[field] = loadPem(`cluster.redisTls.${field}`, tls[field], problems);
  }
  if (tls.servername !== undefined) resolved.servername = tls.servername;
  if (problems.length > before) return undefined;
  checkSecureContext('cluster.redisTls', resolved, problems);
  return resolved;
}

/** Lets OpenSSL parse the PEMs now: a mangled certificate or a key of another certificate fails start, naming the option. */
function checkSecureContext(field: string, pems: { ca?: Buffer; cert?: Buffer; key?: Buffer }, problems: string[]): void {
  try {
    createSecureContext(pems);
  } catch (error) {
    problems.push(`${field}: ${(error as Error).message} (do the key and the certificate belong together?)`);
  }
}

const PEM_START = '-----BEGIN';

/**
 * A PEM option: the PEM text itself (it starts with "-----BEGIN") or the path
 * of a file holding it. Read once at start, so a missing or unreadable file is
 * a configuration error naming the option, not a failed handshake later.
 */
function loadPem(field: string, value: unknown, problems: string[]): Buffer | undefined {
  if (typeof value !== 'string' || value.trim() === '') {
    problems.push(`${field} must be a PEM string or the path of a PEM file`);
    return undefined;
  }
  if (value.trimStart().startsWith(PEM_START)) return Buffer.from(value);
  let text: string;
  try {
    text = readFileSync(value, 'utf8');
  } catch (error) {
    problems.push(`${field}: cannot read ${JSON.stringify(value)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    return undefined;
  }
  if (!text.includes(PEM_START)) {
    problems.push(`${field}: ${JSON.stringify(value)} holds no PEM block`);
    return undefined;
  }
  return Buffer.from(text);
}

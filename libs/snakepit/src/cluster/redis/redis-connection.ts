import type { OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import Redis, { ReplyError, type RedisOptions } from 'ioredis';
import { SnakepitError } from '../../errors/snakepit-error';
import { SnakepitConfigError } from '../../options/resolve-options';
import type { ResolvedClusterOptions } from '../cluster-options';
import { SnakepitLogger } from '../../logging/snakepit-logger';

/** Longest a node waits for Redis at start before it starts without it (and keeps reconnecting). */
const FIRST_CONNECT_WAIT_MS = 5_000;
/** Reconnect delays grow by this per attempt up to the cap: Redis coming back is noticed within a second. */
const RECONNECT_STEP_MS = 100;
const RECONNECT_CAP_MS = 1_000;
/** Replies meaning "not now" (restarting, failing over, busy), not "never". */
const TRANSIENT_REPLY = /^(LOADING|READONLY|MASTERDOWN|BUSY|TRYAGAIN|CLUSTERDOWN)\b/;
/** Replies meaning this node's credentials or rights are wrong: retrying will not help. */
const REFUSED_REPLY = /^(WRONGPASS|NOAUTH|NOPERM)\b/;
/** TLS failures that are configuration (an untrusted or misnamed certificate, a client certificate refused), not a network blip. */
const TLS_REFUSAL = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|ERR_SSL|ERR_TLS/;

/**
 * The node's Redis connections: one for commands, one for pub/sub. While Redis
 * is unreachable a command fails at once (no offline queue, no retries) with a
 * SnakepitError naming Redis; ioredis reconnects in the background, so
 * everything recovers by itself when Redis returns.
 */
export class RedisConnection implements OnModuleInit, OnApplicationShutdown {
  readonly client: Redis;
  private readonly subscribers: Redis[] = [];
  private readonly logger = new SnakepitLogger('SnakepitCluster');
  private up = false;
  private closing = false;

  constructor(private readonly options: ResolvedClusterOptions) {
    this.client = this.connect('commands', {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.redisCommandTimeoutMs,
    });
    this.client.on('ready', () => this.setUp(true));
    this.client.on('close', () => this.setUp(false));
  }

  /**
   * Waits (up to 5 s) for Redis. Unreachable, the node starts anyway and keeps
   * trying; but a Redis that refuses this node (wrong user or password, missing
   * rights, a certificate the configured CA did not sign) fails start with a
   * configuration error naming why, since retrying cannot fix it.
   */
  async onModuleInit(): Promise<void> {
    let onError: (error: Error) => void = () => undefined;
    const refused = new Promise<Error>((resolve) => {
      onError = (error) => {
        if (isRefusal(error)) resolve(error);
      };
      this.client.on('error', onError);
    });
    const ready = new Promise<void>((resolve) => this.client.once('ready', resolve));
    this.client.connect().catch(() => undefined); // failures are retried by ioredis and logged by setUp
    // The refusal is wrapped, not tested with instanceof: TLS errors come from Node's own realm, not always the caller's.
    const outcome = await Promise.race([
      ready.then(() => 'ready' as const),
      refused.then((error) => ({ refusal: error })),
      delay(FIRST_CONNECT_WAIT_MS).then(() => 'waited' as const),
    ]);
    this.client.off('error', onError);
    if (typeof outcome === 'object') {
      this.closing = true;
      this.client.disconnect();
      const redis = redact(this.options.redis);
      throw new SnakepitConfigError([
        `cluster.redis: Redis at ${redis} refused this node: ${outcome.refusal.message} (check the URL's user and password, and cluster.redisTls)`,
      ]);
    }
    if (outcome === 'waited')
      this.logger.warn({ msg: 'Redis unreachable at start: session and remote calls fail until it answers', redis: redact(this.options.redis) });
  }

  async onApplicationShutdown(): Promise<void> {
    this.closing = true;
    await Promise.all([this.client, ...this.subscribers].map((connection) => quit(connection)));
  }

  /**
   * Calls `onMessage` for every message on `channel`, on a dedicated connection
   * that re-subscribes by itself after a reconnect.
   */
  async subscribe(channel: string, onMessage: (message: string) => void): Promise<void> {
    const subscriber = this.connect('subscriber', { enableOfflineQueue: true, autoResubscribe: true });
    this.subscribers.push(subscriber);
    subscriber.on('message', (from: string, message: string) => {
      if (from === channel) onMessage(message);
    });
    subscriber.connect().catch(() => undefined);
    await subscriber.subscribe(channel);
  }

  /**
   * Runs `operation`. When Redis cannot serve it (down, unreachable, too slow,
   * loading or failing over) it fails with WORKER_UNAVAILABLE, reason
   * `redis_unreachable`; any other refusal by Redis is an INTERNAL error.
   */
  async guard<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof SnakepitError) throw error;
      const message = (error as Error).message;
      if (error instanceof ReplyError && !TRANSIENT_REPLY.test(message)) {
        throw new SnakepitError('INTERNAL', `Redis refused ${operation}: ${message}`, { details: { operation }, cause: error });
      }
      throw new SnakepitError('WORKER_UNAVAILABLE', `Redis is unreachable (${operation}): ${message}`, {
        details: { reason: 'redis_unreachable', operation },
        cause: error,
      });
    }
  }

  private connect(role: string, extra: RedisOptions): Redis {
    const connection = new Redis(this.options.redis, {
      lazyConnect: true,
      connectionName: `snakepit:${this.options.nodeId}:${role}`,
      connectTimeout: Math.max(this.options.redisCommandTimeoutMs, 1_000),
      retryStrategy: (attempt: number) => Math.min(attempt * RECONNECT_STEP_MS, RECONNECT_CAP_MS),
      // With a rediss:// URL ioredis speaks TLS; these add the CA, client certificate and name to check.
      ...(this.options.redisTls ? { tls: { ...this.options.redisTls } } : {}),
      ...extra,
    });
    // Without a listener ioredis prints every failed reconnect; state changes are logged by setUp.
    connection.on('error', () => undefined);
    return connection;
  }

  private setUp(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    if (this.closing) return;
    if (up) this.logger.log({ msg: 'Redis connected', redis: redact(this.options.redis) });
    else this.logger.warn({ msg: 'Redis connection lost; reconnecting', redis: redact(this.options.redis) });
  }
}

function isRefusal(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  return REFUSED_REPLY.test(error.message) || TLS_REFUSAL.test(code);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

async function quit(connection: Redis): Promise<void> {
  if (connection.status === 'end') return;
  try {
    await Promise.race([connection.quit(), delay(500)]);
  } catch {
    // already closing
  }
  connection.disconnect();
}

/** The URL without its password, for logs. */
function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}

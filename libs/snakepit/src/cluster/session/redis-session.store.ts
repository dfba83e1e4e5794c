import {
  sessionState,
  type CreateSessionInput,
  type SessionCommitOptions,
  type SessionCommitResult,
  type SessionDelta,
  type SessionLimits,
  type SessionRecord,
  type SessionStore,
} from '../../session/session-store';
import type { RedisConnection } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import { COMMIT_SESSION, COUNT_SESSIONS, CREATE_SESSION, DELETE_SESSION, SWEEP_SESSIONS, TOUCH_SESSION } from './session-scripts';

/** Expired ids reported per sweep; the next sweep continues where this one stopped. */
const SWEEP_BATCH = 500;
const STATE_PREFIX = 's:';

/**
 * Sessions in Redis, shared by every node of the cluster. Each session is a
 * hash with a Redis-side TTL that slides on every use; every change runs as one
 * Lua script, so the version compare, the size caps and the key-by-key merge
 * of a commit are one atomic step across nodes, exactly as in the in-memory
 * store. All expiry times come from the Redis server's clock. When Redis cannot
 * be reached, every method fails at once with WORKER_UNAVAILABLE (reason
 * `redis_unreachable`).
 */
export class RedisSessionStore implements SessionStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: RedisKeys,
  ) {}

  create(input: CreateSessionInput): Promise<SessionRecord> {
    return this.redis.guard('session.create', async () => {
      const fields = await CREATE_SESSION.run(this.redis.client, this.sessionKeys(input.id), [input.id, input.ttlSeconds, JSON.stringify(input.metadata)]);
      return toRecord(input.id, fields as string[])!;
    });
  }

  get(id: string): Promise<SessionRecord | null> {
    return this.redis.guard('session.get', async () => {
      const fields = (await this.redis.client.call('HGETALL', this.keys.session(id))) as string[];
      return toRecord(id, fields);
    });
  }

  touch(id: string, lastWorkerId?: string): Promise<SessionRecord | null> {
    return this.redis.guard('session.touch', async () => {
      const fields = await TOUCH_SESSION.run(this.redis.client, this.sessionKeys(id), [id, lastWorkerId ?? '']);
      return fields === null ? null : toRecord(id, fields as string[]);
    });
  }

  commit(id: string, delta: SessionDelta, options: SessionCommitOptions): Promise<SessionCommitResult> {
    const pairs = Object.entries(delta.set).flat();
    const { maxBytes, maxKeys } = options.limits;
    const args = [id, options.lastWorkerId ?? '', options.expectedVersion ?? '', maxBytes, maxKeys, pairs.length / 2, ...pairs, ...delta.deleted];
    return this.redis.guard('session.commit', async () =>
      toCommitResult((await COMMIT_SESSION.run(this.redis.client, this.sessionKeys(id), args)) as unknown[]),
    );
  }

  delete(id: string): Promise<boolean> {
    return this.redis.guard('session.delete', async () => (await DELETE_SESSION.run(this.redis.client, this.sessionKeys(id), [id])) === 1);
  }

  /** Ids whose expiry passed, by the Redis clock (`now` is the caller's and not needed). */
  sweep(): Promise<string[]> {
    return this.redis.guard('session.sweep', async () => (await SWEEP_SESSIONS.run(this.redis.client, [this.keys.sessionExpiry], [SWEEP_BATCH])) as string[]);
  }

  count(): Promise<number> {
    return this.redis.guard('session.count', async () => Number(await COUNT_SESSIONS.run(this.redis.client, [this.keys.sessionExpiry], [])));
  }

  ping(): Promise<void> {
    return this.redis.guard('ping', async () => {
      await this.redis.client.ping();
    });
  }

  async close(): Promise<void> {
    // Nothing to release: the connection belongs to RedisConnection, which closes
    // it after the pools drained (calls still finishing need it to commit).
  }

  private sessionKeys(id: string): string[] {
    return [this.keys.session(id), this.keys.sessionExpiry];
  }
}

/** The commit script's reply, as the store contract says it. */
function toCommitResult(reply: unknown[]): SessionCommitResult {
  switch (reply[0]) {
    case 'committed':
      return { status: 'committed', version: Number(reply[1]) };
    case 'not_found':
      return { status: 'not_found' };
    case 'conflict':
      return { status: 'conflict', actualVersion: Number(reply[1]) };
    default:
      return { status: 'too_large', limit: reply[1] as keyof SessionLimits, bytes: Number(reply[2]), keys: Number(reply[3]) };
  }
}

/** A session hash as the flat HGETALL list (field, value, ...): read pairwise, so no field name becomes an object key. */
function toRecord(id: string, flat: string[]): SessionRecord | null {
  const fixed = new Map<string, string>();
  const state: Array<[string, string]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (flat[i].startsWith(STATE_PREFIX)) state.push([flat[i].slice(STATE_PREFIX.length), flat[i + 1]]);
    else fixed.set(flat[i], flat[i + 1]);
  }
  const created = fixed.get('created');
  if (created === undefined) return null;
  const lastWorkerId = fixed.get('w');
  return {
    id,
    createdAt: Number(created),
    expiresAt: Number(fixed.get('exp')),
    ttlSeconds: Number(fixed.get('ttl')),
    metadata: JSON.parse(fixed.get('meta') ?? '{}') as Record<string, unknown>,
    state: sessionState(state),
    version: Number(fixed.get('v')),
    ...(lastWorkerId ? { lastWorkerId } : {}),
  };
}

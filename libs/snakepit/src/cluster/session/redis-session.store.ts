import type { CreateSessionInput, SessionDelta, SessionRecord, SessionStore } from '../../session/session-store';
import type { RedisConnection } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import { COMMIT_SESSION, COUNT_SESSIONS, CREATE_SESSION, DELETE_SESSION, SWEEP_SESSIONS } from './session-scripts';

/** Expired ids reported per sweep; the next sweep continues where this one stopped. */
const SWEEP_BATCH = 500;
const STATE_PREFIX = 's:';

/**
 * Sessions in Redis, shared by every node of the cluster. Each session is a
 * hash with a Redis-side TTL that slides on every use; every change runs as one
 * Lua script, so it is atomic and versioned across nodes, and a tool's delta is
 * merged key by key exactly as the in-memory store does. All expiry times come
 * from the Redis server's clock. When Redis cannot be reached, every method
 * fails at once with WORKER_UNAVAILABLE (reason `redis_unreachable`).
 */
export class RedisSessionStore implements SessionStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: RedisKeys,
  ) {}

  create(input: CreateSessionInput): Promise<SessionRecord> {
    return this.redis.guard('session.create', async () => {
      const fields = await CREATE_SESSION.run(this.redis.client, this.sessionKeys(input.id), [
        input.id,
        input.ttlSeconds,
        JSON.stringify(input.metadata),
      ]);
      return toRecord(input.id, fieldMap(fields))!;
    });
  }

  get(id: string): Promise<SessionRecord | null> {
    return this.redis.guard('session.get', async () => toRecord(id, await this.redis.client.hgetall(this.keys.session(id))));
  }

  touch(id: string, lastWorkerId?: string): Promise<SessionRecord | null> {
    return this.commit('session.touch', id, [id, lastWorkerId ?? '', 0]);
  }

  applyDelta(id: string, delta: SessionDelta, lastWorkerId?: string): Promise<SessionRecord | null> {
    const pairs = Object.entries(delta.set).flat();
    return this.commit('session.applyDelta', id, [id, lastWorkerId ?? '', pairs.length / 2, ...pairs, ...delta.deleted]);
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

  /**
   * Nothing to release: the connection belongs to RedisConnection, which closes
   * it after the pools drained (calls still finishing need it to commit).
   */
  async close(): Promise<void> {}

  private commit(operation: string, id: string, args: Array<string | number>): Promise<SessionRecord | null> {
    return this.redis.guard(operation, async () => {
      const fields = await COMMIT_SESSION.run(this.redis.client, this.sessionKeys(id), args);
      return fields === null ? null : toRecord(id, fieldMap(fields));
    });
  }

  private sessionKeys(id: string): string[] {
    return [this.keys.session(id), this.keys.sessionExpiry];
  }
}

/** HGETALL as a script returns it (a flat list) into field -> value. */
function fieldMap(reply: unknown): Record<string, string> {
  const flat = reply as string[];
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
  return fields;
}

function toRecord(id: string, fields: Record<string, string>): SessionRecord | null {
  if (fields.created === undefined) return null;
  const state: Record<string, string> = {};
  for (const [field, value] of Object.entries(fields)) {
    if (field.startsWith(STATE_PREFIX)) state[field.slice(STATE_PREFIX.length)] = value;
  }
  return {
    id,
    createdAt: Number(fields.created),
    expiresAt: Number(fields.exp),
    ttlSeconds: Number(fields.ttl),
    metadata: JSON.parse(fields.meta) as Record<string, unknown>,
    state,
    version: Number(fields.v),
    ...(fields.w ? { lastWorkerId: fields.w } : {}),
  };
}

import {
  entryBytes,
  sessionState,
  type CreateSessionInput,
  type SessionCommitOptions,
  type SessionCommitResult,
  type SessionDelta,
  type SessionRecord,
  type SessionStore,
} from './session-store';

/** A stored session: the state as a Map (any string is a key) and its size kept up to date. */
interface StoredSession extends Omit<SessionRecord, 'state'> {
  state: Map<string, string>;
  bytes: number;
}

/**
 * The embedded default: sessions in this process's memory. State survives the
 * death of any worker (it never lived in Python), not the death of the host.
 * Records are copied on the way in and out so callers cannot mutate the store.
 */
/* eslint-disable @typescript-eslint/require-await -- SessionStore is async (the Redis store awaits its server); this
   one answers at once, and `async` keeps a throw (structuredClone of bad metadata) a rejection like the Redis store's. */
export class InMemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, StoredSession>();

  async create(input: CreateSessionInput): Promise<SessionRecord> {
    const now = Date.now();
    const stored: StoredSession = {
      id: input.id,
      createdAt: now,
      expiresAt: now + input.ttlSeconds * 1000,
      ttlSeconds: input.ttlSeconds,
      metadata: structuredClone(input.metadata),
      state: new Map(),
      bytes: 0,
      version: 0,
    };
    this.sessions.set(input.id, stored);
    return copy(stored);
  }

  async get(id: string): Promise<SessionRecord | null> {
    const stored = this.live(id);
    return stored ? copy(stored) : null;
  }

  async touch(id: string, lastWorkerId?: string): Promise<SessionRecord | null> {
    const stored = this.live(id);
    if (!stored) return null;
    slide(stored, lastWorkerId);
    return copy(stored);
  }

  async commit(id: string, delta: SessionDelta, options: SessionCommitOptions): Promise<SessionCommitResult> {
    const stored = this.live(id);
    if (!stored) return { status: 'not_found' };
    if (options.expectedVersion !== undefined && stored.version !== options.expectedVersion) {
      return { status: 'conflict', actualVersion: stored.version };
    }
    // The net change per key (sets first, then deletions, like the apply order): undefined = delete.
    const changes = new Map<string, string | undefined>(Object.entries(delta.set));
    for (const key of delta.deleted) changes.set(key, undefined);
    let bytes = stored.bytes;
    let keys = stored.state.size;
    for (const [key, value] of changes) {
      const old = stored.state.get(key);
      if (old !== undefined) {
        bytes -= entryBytes(key, old);
        keys--;
      }
      if (value !== undefined) {
        bytes += entryBytes(key, value);
        keys++;
      }
    }
    const { maxBytes, maxKeys } = options.limits;
    if (keys > maxKeys && keys > stored.state.size) return { status: 'too_large', limit: 'maxKeys', bytes, keys };
    if (bytes > maxBytes && bytes > stored.bytes) return { status: 'too_large', limit: 'maxBytes', bytes, keys };
    for (const [key, value] of changes) {
      if (value === undefined) stored.state.delete(key);
      else stored.state.set(key, value);
    }
    stored.bytes = bytes;
    if (changes.size > 0) stored.version++;
    slide(stored, options.lastWorkerId);
    return { status: 'committed', version: stored.version };
  }

  async delete(id: string): Promise<boolean> {
    return this.sessions.delete(id);
  }

  async sweep(now: number): Promise<string[]> {
    const expired: string[] = [];
    for (const [id, stored] of this.sessions) {
      if (stored.expiresAt <= now) {
        this.sessions.delete(id);
        expired.push(id);
      }
    }
    return expired;
  }

  async count(): Promise<number> {
    return this.sessions.size;
  }

  async ping(): Promise<void> {
    // Always answers: the sessions live in this process.
  }

  async close(): Promise<void> {
    this.sessions.clear();
  }

  private live(id: string): StoredSession | undefined {
    const stored = this.sessions.get(id);
    // Expired but not swept yet: gone for every reader; sweep() reports it.
    return stored && stored.expiresAt > Date.now() ? stored : undefined;
  }
}
/* eslint-enable @typescript-eslint/require-await */

function slide(stored: StoredSession, lastWorkerId?: string): void {
  stored.expiresAt = Date.now() + stored.ttlSeconds * 1000;
  if (lastWorkerId) stored.lastWorkerId = lastWorkerId;
}

function copy(stored: StoredSession): SessionRecord {
  return {
    id: stored.id,
    createdAt: stored.createdAt,
    expiresAt: stored.expiresAt,
    ttlSeconds: stored.ttlSeconds,
    metadata: structuredClone(stored.metadata),
    state: sessionState(stored.state),
    version: stored.version,
    ...(stored.lastWorkerId ? { lastWorkerId: stored.lastWorkerId } : {}),
  };
}

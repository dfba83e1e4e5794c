import type { CreateSessionInput, SessionDelta, SessionRecord, SessionStore } from './session-store';

/**
 * The embedded default: sessions in this process's memory. State survives the
 * death of any worker (it never lived in Python), not the death of the host.
 * Records are copied on the way in and out so callers cannot mutate the store.
 */
export class InMemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, SessionRecord>();

  async create(input: CreateSessionInput): Promise<SessionRecord> {
    const now = Date.now();
    const record: SessionRecord = {
      id: input.id,
      createdAt: now,
      expiresAt: now + input.ttlSeconds * 1000,
      ttlSeconds: input.ttlSeconds,
      metadata: structuredClone(input.metadata),
      state: {},
      version: 0,
    };
    this.sessions.set(input.id, record);
    return copy(record);
  }

  async get(id: string): Promise<SessionRecord | null> {
    const record = this.live(id);
    return record ? copy(record) : null;
  }

  async touch(id: string, lastWorkerId?: string): Promise<SessionRecord | null> {
    const record = this.live(id);
    if (!record) return null;
    record.expiresAt = Date.now() + record.ttlSeconds * 1000;
    if (lastWorkerId) record.lastWorkerId = lastWorkerId;
    return copy(record);
  }

  async applyDelta(id: string, delta: SessionDelta, lastWorkerId?: string): Promise<SessionRecord | null> {
    const record = this.live(id);
    if (!record) return null;
    for (const [key, value] of Object.entries(delta.set)) record.state[key] = value;
    for (const key of delta.deleted) delete record.state[key];
    if (Object.keys(delta.set).length > 0 || delta.deleted.length > 0) record.version++;
    record.expiresAt = Date.now() + record.ttlSeconds * 1000;
    if (lastWorkerId) record.lastWorkerId = lastWorkerId;
    return copy(record);
  }

  async delete(id: string): Promise<boolean> {
    return this.sessions.delete(id);
  }

  async sweep(now: number): Promise<string[]> {
    const expired: string[] = [];
    for (const [id, record] of this.sessions) {
      if (record.expiresAt <= now) {
        this.sessions.delete(id);
        expired.push(id);
      }
    }
    return expired;
  }

  async count(): Promise<number> {
    return this.sessions.size;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.sessions.clear();
  }

  private live(id: string): SessionRecord | undefined {
    const record = this.sessions.get(id);
    // Expired but not swept yet: gone for every reader; sweep() reports it.
    return record && record.expiresAt > Date.now() ? record : undefined;
  }
}

function copy(record: SessionRecord): SessionRecord {
  return { ...record, metadata: structuredClone(record.metadata), state: { ...record.state } };
}

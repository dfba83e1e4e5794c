/** A session as stored: metadata, tool-written state and expiry. */
export interface SessionRecord {
  id: string;
  createdAt: number;
  /** Epoch ms; every use slides it to now + ttlSeconds. */
  expiresAt: number;
  ttlSeconds: number;
  metadata: Record<string, unknown>;
  /**
   * Tool-written state: key -> JSON text of the value. A null-prototype object
   * (see `sessionState`), so every string, `__proto__` included, is a key like any other.
   */
  state: Record<string, string>;
  /** Bumped by every commit that changes the state; commits compare it (optimistic concurrency). */
  version: number;
  /** The worker that served the session last (affinity hint). */
  lastWorkerId?: string;
}

/** Changes a tool made to its session during one call. Applied sets first, then deletions. */
export interface SessionDelta {
  /** key -> JSON text of the new value. */
  set: Record<string, string>;
  deleted: string[];
}

export interface CreateSessionInput {
  id: string;
  ttlSeconds: number;
  metadata: Record<string, unknown>;
}

/** Size caps of one session's stored state (`sessions.maxBytes`, `sessions.maxKeys`). */
export interface SessionLimits {
  /** Sum over the state of UTF-8 bytes of each key plus its JSON value. */
  maxBytes: number;
  maxKeys: number;
}

export interface SessionCommitOptions {
  /**
   * Write only if the stored version still equals this one (the version of the
   * snapshot the call ran with). Omitted: no compare, for writes that read nothing.
   */
  expectedVersion?: number;
  /** The worker that served the call (affinity hint). */
  lastWorkerId?: string;
  limits: SessionLimits;
}

/** What a commit did. Anything but `committed` wrote nothing at all. */
export type SessionCommitResult =
  | { status: 'committed'; version: number }
  | { status: 'not_found' }
  | { status: 'conflict'; actualVersion: number }
  /** The state would grow past `limit` (bytes and keys as they would have been). */
  | { status: 'too_large'; limit: keyof SessionLimits; bytes: number; keys: number };

/**
 * Where sessions live. The in-memory store is the embedded default; a
 * distributed store (Redis) implements the same contract. Every method is
 * atomic on its own: `commit` compares the version, checks the caps and
 * applies the delta as one step, or does nothing.
 */
export interface SessionStore {
  create(input: CreateSessionInput): Promise<SessionRecord>;
  /** The live session, or null when it does not exist or has expired. */
  get(id: string): Promise<SessionRecord | null>;
  /** Slides the expiry (and records the worker) of a live session and returns it; null when gone. */
  touch(id: string, lastWorkerId?: string): Promise<SessionRecord | null>;
  /**
   * Applies a delta atomically, key by key, if the version matches and the
   * state stays within the limits (a commit that shrinks an over-limit state
   * is allowed). A non-empty delta bumps the version; the expiry slides.
   */
  commit(id: string, delta: SessionDelta, options: SessionCommitOptions): Promise<SessionCommitResult>;
  delete(id: string): Promise<boolean>;
  /** Removes expired sessions, returning their ids. */
  sweep(now: number): Promise<string[]>;
  /** Number of live sessions. */
  count(): Promise<number>;
  /** Cheap round trip proving the store answers (for readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const SESSION_STORE = Symbol('SNAKEPIT_SESSION_STORE');

/** A state map with no prototype: `__proto__`, `constructor`... are plain keys. */
export function sessionState(entries: Iterable<readonly [string, string]> = []): Record<string, string> {
  const state = Object.create(null) as Record<string, string>;
  for (const [key, value] of entries) state[key] = value;
  return state;
}

/** Bytes a key and its JSON value count for `sessions.maxBytes`. */
export function entryBytes(key: string, json: string): number {
  return Buffer.byteLength(key, 'utf8') + Buffer.byteLength(json, 'utf8');
}

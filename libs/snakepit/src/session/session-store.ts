/** A session as stored: metadata, tool-written state and expiry. */
export interface SessionRecord {
  id: string;
  createdAt: number;
  /** Epoch ms; every use slides it to now + ttlSeconds. */
  expiresAt: number;
  ttlSeconds: number;
  metadata: Record<string, unknown>;
  /** Tool-written state: key -> JSON text of the value. */
  state: Record<string, string>;
  /** Bumped by every state change; lets stores detect concurrent writers. */
  version: number;
  /** The worker that served the session last (affinity hint). */
  lastWorkerId?: string;
}

/** Changes a tool made to its session during one call. */
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

/**
 * Where sessions live. The in-memory store is the embedded default; a
 * distributed store (Redis) implements the same contract. Every method is
 * atomic on its own: `applyDelta` never loses a concurrent writer's keys.
 */
export interface SessionStore {
  create(input: CreateSessionInput): Promise<SessionRecord>;
  /** The live session, or null when it does not exist or has expired. */
  get(id: string): Promise<SessionRecord | null>;
  /** Slides the expiry (and records the worker) of a live session; null when gone. */
  touch(id: string, lastWorkerId?: string): Promise<SessionRecord | null>;
  /** Applies a tool's changes atomically; null when the session is gone. */
  applyDelta(id: string, delta: SessionDelta, lastWorkerId?: string): Promise<SessionRecord | null>;
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

import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { assertJsonSafe } from '../bridge/payload';
import { SnakepitError } from '../errors/snakepit-error';
import type { ResolvedOptions } from '../options/resolve-options';
import { SNAKEPIT_RESOLVED_OPTIONS } from '../options/tokens';
import { TelemetryService } from '../telemetry/telemetry.service';
import { SESSION_STORE, type SessionDelta, type SessionLimits, type SessionRecord, type SessionStore } from './session-store';

export interface CreateSessionOptions {
  ttlSeconds?: number;
  metadata?: Record<string, unknown>;
}

/** A session as callers see it: state decoded from JSON. */
export interface SessionInfo {
  sessionId: string;
  createdAt: string;
  expiresAt: string;
  ttlSeconds: number;
  metadata: Record<string, unknown>;
  /** Null-prototype object: `__proto__` is a key like any other. */
  state: Record<string, unknown>;
  version: number;
  lastWorkerId?: string;
}

/** Host-side changes to a session's state (`SessionService.put`): sets first, then deletions. */
export interface SessionChanges {
  /** key -> any JSON value. */
  set?: Record<string, unknown>;
  delete?: string[];
}

/** @internal How a call waits for its session's turn. */
export interface SessionTurnOptions {
  /** What is left of the call's budget, in ms: the wait counts against it. */
  timeoutMs: number;
  /** Aborting it removes the call from the wait (CANCELLED). */
  signal?: AbortSignal;
  /**
   * A call made by a host tool (host-call depth > 0). It never waits: its
   * parent may hold the turn, so waiting could deadlock. It runs in the turn
   * when the session is free, alongside the holder otherwise.
   */
  nested?: boolean;
  /** For error messages and details. */
  pool?: string;
  tool?: string;
}

/**
 * @internal A call's turn in its session: the snapshot it runs with, read
 * once the turn came. End it with release() whatever happens.
 */
export interface SessionTurn {
  readonly sessionId: string;
  /** The snapshot the call runs with (its version is what commit() expects). */
  readonly record: SessionRecord;
  /** Reads a fresh snapshot (sliding the expiry), for a re-run after a conflict. */
  refresh(): Promise<SessionRecord>;
  /**
   * Writes the call's changes if nothing else wrote the session since the
   * snapshot: SESSION_CONFLICT otherwise, PAYLOAD_TOO_LARGE past a cap,
   * SESSION_NOT_FOUND when the session ended while the call ran — in each case
   * nothing is written. A call that changed nothing only records its worker.
   */
  commit(delta: SessionDelta, workerId: string): Promise<void>;
  /** Ends the turn: the next waiting call of the session runs. Idempotent. */
  release(): void;
}

/** A call waiting for its session's turn. */
interface Waiter {
  grant(): void;
}

const SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/;
const MAX_METADATA_BYTES = 64 * 1024;
const NO_RELEASE = (): void => undefined;

/**
 * Sessions group calls that share state. The state lives on the host side in
 * the SessionStore (never only in a Python process): each call carries a
 * snapshot to the worker, and the tool's changes come back with its result and
 * are committed atomically, so a session outlives any worker that served it.
 *
 * Concurrency: on one node a session's calls run one at a time, in arrival
 * order, each with a snapshot read when its turn comes, so none loses another's
 * update. Every commit also compares the snapshot's version with the stored
 * one, for writers the order cannot cover (another node sharing the store, a
 * nested host-tool call, `put`): a commit that lost the race writes nothing and
 * fails with SESSION_CONFLICT (PoolService re-runs an idempotent tool once).
 */
@Injectable()
export class SessionService implements OnModuleInit, OnApplicationShutdown {
  private sweepTimer?: NodeJS.Timeout;
  /**
   * Sessions whose turn is taken, with the calls waiting for it in arrival
   * order (a Set iterates in insertion order and removes in O(1)). An entry
   * exists only while the turn is held: the last release deletes it.
   *
   * Hand-written rather than a keyed-lock package (async-lock has no
   * AbortSignal and throws past a fixed maxPending): the turn spans the call's
   * run, commit and re-run, and its failures are the call's own errors.
   */
  private readonly turns = new Map<string, Set<Waiter>>();

  constructor(
    @Inject(SESSION_STORE) private readonly store: SessionStore,
    @Inject(SNAKEPIT_RESOLVED_OPTIONS) private readonly options: ResolvedOptions,
    private readonly telemetry: TelemetryService,
  ) {}

  onModuleInit(): void {
    this.sweepTimer = setInterval(() => void this.sweep(), this.options.sessions.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** Last, after pools drained: calls finishing during the drain still commit their session changes. */
  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.sweepTimer);
    await this.store.close();
  }

  async create(options: CreateSessionOptions = {}): Promise<SessionInfo> {
    const { defaultTtlSeconds, maxTtlSeconds } = this.options.sessions;
    const ttlSeconds = options.ttlSeconds ?? defaultTtlSeconds;
    if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > maxTtlSeconds) {
      throw new SnakepitError('INVALID_ARGUMENTS', `ttlSeconds must be an integer between 1 and ${maxTtlSeconds}`, {
        details: { ttlSeconds: options.ttlSeconds, maxTtlSeconds },
      });
    }
    const metadata = options.metadata ?? {};
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw new SnakepitError('INVALID_ARGUMENTS', 'metadata must be a JSON object');
    }
    assertJsonSafe(metadata, '$.metadata');
    const bytes = Buffer.byteLength(JSON.stringify(metadata));
    if (bytes > MAX_METADATA_BYTES) {
      throw new SnakepitError('PAYLOAD_TOO_LARGE', `Session metadata is ${bytes} bytes; the limit is ${MAX_METADATA_BYTES}`, {
        details: { bytes, maxBytes: MAX_METADATA_BYTES },
      });
    }
    const record = await this.store.create({ id: `sess_${randomUUID()}`, ttlSeconds, metadata });
    this.telemetry.emit('session.created', { sessionId: record.id, ttlSeconds });
    return toInfo(record);
  }

  /** The live session; SESSION_NOT_FOUND when it does not exist or expired. */
  async get(sessionId: string): Promise<SessionInfo> {
    checkId(sessionId);
    const record = await this.store.get(sessionId);
    if (!record) throw notFound(sessionId);
    return toInfo(record);
  }

  /**
   * Sets and deletes keys of a live session from the host, as one atomic
   * write within `sessions.maxBytes` / `maxKeys` (PAYLOAD_TOO_LARGE, nothing
   * written, past either). It reads nothing, so it does not wait for the
   * session's turn: a call of the session running meanwhile then fails its
   * commit with SESSION_CONFLICT (an idempotent tool is re-run on the new
   * state). Resolves with the new version.
   */
  async put(sessionId: string, changes: SessionChanges): Promise<number> {
    checkId(sessionId);
    const delta = encodeChanges(changes);
    return this.write(sessionId, delta, {});
  }

  async delete(sessionId: string): Promise<void> {
    checkId(sessionId);
    if (!(await this.store.delete(sessionId))) throw notFound(sessionId);
    this.telemetry.emit('session.deleted', { sessionId });
  }

  async count(): Promise<number> {
    return this.store.count();
  }

  /** Checks the store answers (readiness). */
  ping(): Promise<void> {
    return this.store.ping();
  }

  /**
   * @internal Waits for the call's turn in its session (FIFO per session on
   * this node), then reads the snapshot and slides the expiry. Fails with
   * TIMEOUT (`details.phase: 'session'`) when the budget runs out first and
   * CANCELLED when the signal aborts first; either way the call never ran.
   */
  async forCall(sessionId: string, options: SessionTurnOptions): Promise<SessionTurn> {
    checkId(sessionId);
    const release = await this.takeTurn(sessionId, options);
    try {
      let record = await this.snapshot(sessionId);
      return {
        sessionId,
        get record() {
          return record;
        },
        refresh: async () => (record = await this.snapshot(sessionId)),
        commit: async (delta, workerId) => {
          if (delta.deleted.length === 0 && Object.keys(delta.set).length === 0) {
            // Nothing to lose: a read-only call succeeds even if the session ended meanwhile.
            if (workerId !== record.lastWorkerId) await this.store.touch(sessionId, workerId);
            return;
          }
          await this.write(sessionId, delta, { expectedVersion: record.version, lastWorkerId: workerId, ttlSeconds: record.ttlSeconds });
        },
        release,
      };
    } catch (error) {
      release();
      throw error;
    }
  }

  /** Resolves with the function that ends the turn, once the call has it (or may bypass it). */
  private takeTurn(sessionId: string, options: SessionTurnOptions): Promise<() => void> {
    const { signal, tool } = options;
    if (signal?.aborted) return Promise.reject(cancelled(sessionId, tool));
    const waiters = this.turns.get(sessionId);
    if (!waiters) {
      this.turns.set(sessionId, new Set());
      return Promise.resolve(this.releaser(sessionId));
    }
    if (options.nested) return Promise.resolve(NO_RELEASE);
    return new Promise((resolve, reject) => {
      const startedAt = Date.now();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        waiters.delete(waiter);
      };
      const waiter: Waiter = {
        grant: () => {
          done();
          resolve(this.releaser(sessionId));
        },
      };
      const timer = setTimeout(
        () => {
          done();
          const waitedMs = Date.now() - startedAt;
          reject(
            new SnakepitError('TIMEOUT', `Call to ${tool ?? 'a tool'} timed out after ${waitedMs} ms while waiting for its session's turn`, {
              details: { pool: options.pool, tool, sessionId, timeoutMs: options.timeoutMs, phase: 'session' },
            }),
          );
        },
        Math.max(0, options.timeoutMs),
      );
      const onAbort = () => {
        done();
        reject(cancelled(sessionId, tool));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      waiters.add(waiter);
    });
  }

  /** Hands the turn to the first waiter, or frees the session (deleting its entry) when none waits. */
  private releaser(sessionId: string): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const waiters = this.turns.get(sessionId);
      const next = waiters?.values().next();
      if (!next || next.done) this.turns.delete(sessionId);
      else next.value.grant();
    };
  }

  private async snapshot(sessionId: string): Promise<SessionRecord> {
    const record = await this.store.touch(sessionId);
    if (!record) throw notFound(sessionId);
    return record;
  }

  /** One version-checked, capped commit, its refusals turned into errors; resolves with the new version. */
  private async write(sessionId: string, delta: SessionDelta, call: { expectedVersion?: number; lastWorkerId?: string; ttlSeconds?: number }): Promise<number> {
    const limits: SessionLimits = { maxBytes: this.options.sessions.maxBytes, maxKeys: this.options.sessions.maxKeys };
    const result = await this.store.commit(sessionId, delta, { expectedVersion: call.expectedVersion, lastWorkerId: call.lastWorkerId, limits });
    switch (result.status) {
      case 'committed':
        return result.version;
      case 'not_found':
        if (call.ttlSeconds === undefined) throw notFound(sessionId);
        throw new SnakepitError(
          'SESSION_NOT_FOUND',
          `Session ${JSON.stringify(sessionId)} expired or was deleted while the call ran (its TTL is ${call.ttlSeconds} s); the call's changes were not saved`,
          { details: { sessionId, ttlSeconds: call.ttlSeconds, phase: 'commit' } },
        );
      case 'conflict':
        throw new SnakepitError(
          'SESSION_CONFLICT',
          `Session ${JSON.stringify(sessionId)} changed while the call ran (version ${call.expectedVersion} -> ${result.actualVersion}); nothing was written`,
          { details: { sessionId, expectedVersion: call.expectedVersion, actualVersion: result.actualVersion } },
        );
      case 'too_large': {
        const option = `sessions.${result.limit}`;
        const limit = limits[result.limit];
        const [measure, amount] = result.limit === 'maxBytes' ? ['bytes', result.bytes] : ['keys', result.keys];
        throw new SnakepitError(
          'PAYLOAD_TOO_LARGE',
          `Session ${JSON.stringify(sessionId)} would hold ${amount} ${measure} of state; ${option} is ${limit}. Nothing was written`,
          { details: { sessionId, option, [measure]: amount, limit } },
        );
      }
    }
  }

  private async sweep(): Promise<void> {
    try {
      for (const sessionId of await this.store.sweep(Date.now())) this.telemetry.emit('session.expired', { sessionId });
    } catch {
      // The store is unreachable; the next sweep retries and readiness reports it.
    }
  }
}

function checkId(sessionId: string): void {
  if (typeof sessionId !== 'string' || !SESSION_ID.test(sessionId)) throw notFound(String(sessionId).slice(0, 140));
}

function notFound(sessionId: string): SnakepitError {
  return new SnakepitError('SESSION_NOT_FOUND', `No live session ${JSON.stringify(sessionId)}`, { details: { sessionId } });
}

function cancelled(sessionId: string, tool: string | undefined): SnakepitError {
  return new SnakepitError('CANCELLED', `The caller cancelled ${tool ?? 'the call'} while it waited for its session's turn`, {
    details: { tool, sessionId, phase: 'session' },
  });
}

function encodeChanges(changes: SessionChanges): SessionDelta {
  const { set = {}, delete: deleted = [] } = changes ?? {};
  if (typeof set !== 'object' || set === null || Array.isArray(set)) {
    throw new SnakepitError('INVALID_ARGUMENTS', 'set must be an object of key -> JSON value');
  }
  if (!Array.isArray(deleted) || deleted.some((key) => typeof key !== 'string')) {
    throw new SnakepitError('INVALID_ARGUMENTS', 'delete must be an array of keys');
  }
  const delta: SessionDelta = { set: Object.create(null) as Record<string, string>, deleted };
  for (const [key, value] of Object.entries(set)) {
    assertJsonSafe(value, `$.set[${JSON.stringify(key)}]`);
    delta.set[key] = JSON.stringify(value);
  }
  return delta;
}

function toInfo(record: SessionRecord): SessionInfo {
  const state = Object.create(null) as Record<string, unknown>;
  for (const [key, json] of Object.entries(record.state)) state[key] = JSON.parse(json) as unknown;
  return {
    sessionId: record.id,
    createdAt: new Date(record.createdAt).toISOString(),
    expiresAt: new Date(record.expiresAt).toISOString(),
    ttlSeconds: record.ttlSeconds,
    metadata: record.metadata,
    state,
    version: record.version,
    lastWorkerId: record.lastWorkerId,
  };
}

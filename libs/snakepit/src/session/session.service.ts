import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { assertJsonSafe } from '../bridge/payload';
import { SnakepitError } from '../errors/snakepit-error';
import type { ResolvedOptions } from '../options/resolve-options';
import { SNAKEPIT_RESOLVED_OPTIONS } from '../options/tokens';
import { TelemetryService } from '../telemetry/telemetry.service';
import { SESSION_STORE, type SessionDelta, type SessionRecord, type SessionStore } from './session-store';

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
  state: Record<string, unknown>;
  version: number;
  lastWorkerId?: string;
}

const SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/;
const MAX_METADATA_BYTES = 64 * 1024;

/**
 * Sessions group calls that share state. The state lives on the host side in
 * the SessionStore (never only in a Python process): each call carries a
 * snapshot to the worker, and the tool's changes come back with its result and
 * are applied atomically, so a session outlives any worker that served it.
 */
@Injectable()
export class SessionService implements OnModuleInit, OnApplicationShutdown {
  private sweepTimer?: NodeJS.Timeout;

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
    return toInfo(await this.require(sessionId, (id) => this.store.get(id)));
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

  /** @internal The session a call runs in, its expiry slid forward. */
  forCall(sessionId: string): Promise<SessionRecord> {
    return this.require(sessionId, (id) => this.store.touch(id));
  }

  /** @internal Applies a finished call's changes and remembers the worker for affinity. */
  async commit(sessionId: string, delta: SessionDelta, workerId: string): Promise<void> {
    if (!(await this.store.applyDelta(sessionId, delta, workerId))) throw notFound(sessionId);
  }

  private async require(sessionId: string, read: (id: string) => Promise<SessionRecord | null>): Promise<SessionRecord> {
    checkId(sessionId);
    const record = await read(sessionId);
    if (!record) throw notFound(sessionId);
    return record;
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

function toInfo(record: SessionRecord): SessionInfo {
  return {
    sessionId: record.id,
    createdAt: new Date(record.createdAt).toISOString(),
    expiresAt: new Date(record.expiresAt).toISOString(),
    ttlSeconds: record.ttlSeconds,
    metadata: record.metadata,
    state: Object.fromEntries(Object.entries(record.state).map(([key, json]) => [key, JSON.parse(json) as unknown])),
    version: record.version,
    lastWorkerId: record.lastWorkerId,
  };
}

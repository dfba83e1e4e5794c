import { Inject, Injectable, Optional, type BeforeApplicationShutdown, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { Observable } from 'rxjs';
import type { SessionState } from '../bridge/generated/snakepit/bridge/v1/SessionState';
import type { ToolSpec__Output } from '../bridge/generated/snakepit/bridge/v1/ToolSpec';
import { encodeArgs } from '../bridge/payload';
import { SnakepitError, toSnakepitError } from '../errors/snakepit-error';
import { MAX_TIMER_MS, type ResolvedOptions, type ResolvedPoolOptions } from '../options/resolve-options';
import { SNAKEPIT_RESOLVED_OPTIONS } from '../options/tokens';
import { SessionService, type SessionTurn } from '../session/session.service';
import { sessionState, type SessionDelta } from '../session/session-store';
import { TelemetryService } from '../telemetry/telemetry.service';
import { WorkerRuntime } from '../worker/worker-runtime';
import { currentHostCallDepth } from '../host-tools/call-depth';
import { HostToolRegistry } from '../host-tools/host-tool.registry';
import type { WorkerHealthCheck, WorkerHealthProbe } from '../health/workers.health';
import { CallTracer } from '../telemetry/call-tracer';
import { SNAKEPIT_REMOTE_POOLS, type RemotePools } from './remote-pools';
import { processGroupRss } from '../worker/process-stats';
import { ProcessLauncher } from './process-launcher';
import type { ChunkSink } from './pool.interfaces';
import { pullStream } from './pull-stream';
import { WorkerPool, type PoolCallOutcome, type PoolInfo } from './worker-pool';
import { SnakepitLogger } from '../logging/snakepit-logger';

export interface ExecuteOptions {
  /** Pool to run on (default: the pool named `default`, else the first pool). */
  pool?: string;
  /**
   * Run inside this session: the tool sees and may change its state. On one
   * node a session's calls run one at a time, in arrival order; the wait for
   * the session's turn counts against `timeoutMs` (TIMEOUT, `details.phase:
   * 'session'`). A commit that finds the session changed by another writer
   * (another node, a nested host-tool call, `SessionService.put`) writes
   * nothing and fails with SESSION_CONFLICT, unless the call may run again.
   */
  sessionId?: string;
  /** Time budget for the whole call, queue wait included (default: the pool's timeoutMs). */
  timeoutMs?: number;
  /** Abort to cancel the call; the worker stops the tool. */
  signal?: AbortSignal;
  /** Extra string metadata for the tool (`ctx.metadata`), e.g. a request id. */
  metadata?: Record<string, string>;
  /**
   * The tool is safe to run twice: if its worker crashes mid-call, the call is
   * retried once on another worker instead of failing with WORKER_CRASHED; and
   * in a session (as for a tool declared idempotent) a conflicting commit runs
   * the call once more on a fresh snapshot instead of failing with SESSION_CONFLICT.
   */
  idempotent?: boolean;
  /** @internal Run on this node only (set by cluster forwarding, so calls never bounce between nodes). */
  localOnly?: boolean;
}

export interface ExecuteResult<T = unknown> {
  result: T;
  workerId: string;
  pid: number;
  pool: string;
  durationMs: number;
}

export interface StreamChunk<T = unknown> {
  data: T;
  seq: number;
}

export interface ToolParameterInfo {
  name: string;
  type: string;
  required: boolean;
  nullable: boolean;
  description: string;
  items?: string;
  default?: unknown;
  /** For an "ndarray" parameter: the element type its annotation declares (`NDArray[np.float32]`: "float32"). */
  dtype?: string;
  /** For an "ndarray" parameter: the number of dimensions its annotation declares. */
  ndim?: number;
}

export interface ToolInfo {
  name: string;
  description: string;
  streaming: boolean;
  idempotent: boolean;
  parameters: ToolParameterInfo[];
}

export interface PoolTools {
  pool: string;
  tools: ToolInfo[];
  /** In a cluster: the nodes that serve this pool. */
  nodes?: string[];
}

/** Tool names are identifiers: no paths, spaces or control characters reach a worker. */
const TOOL_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;

/**
 * Runs Python tools on the configured pools. Starts every pool with the
 * application and drains and stops them (no process left behind) when it shuts down.
 */
@Injectable()
export class PoolService implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown, WorkerHealthProbe {
  private readonly logger = new SnakepitLogger('Snakepit');
  private readonly tracer = new CallTracer();
  private readonly pools = new Map<string, WorkerPool>();
  private readonly defaultPool: string;
  private shuttingDown = false;

  constructor(
    @Inject(SNAKEPIT_RESOLVED_OPTIONS) private readonly options: ResolvedOptions,
    private readonly runtime: WorkerRuntime,
    private readonly sessions: SessionService,
    private readonly telemetry: TelemetryService,
    hostTools: HostToolRegistry,
    @Optional() @Inject(SNAKEPIT_REMOTE_POOLS) private readonly remote?: RemotePools,
  ) {
    for (const config of options.pools) {
      const launcher = new ProcessLauncher(config, runtime, telemetry, this.logger, options.stopGraceMs, hostTools);
      this.pools.set(
        config.name,
        new WorkerPool({ config, launcher, telemetry, logger: this.logger, sampleRss: processGroupRss, stopGraceMs: options.stopGraceMs }),
      );
    }
    // In a cluster `default` may live on another node.
    this.defaultPool = this.pools.has('default') || remote ? 'default' : options.pools[0].name;
  }

  async onModuleInit(): Promise<void> {
    this.runtime.start(this.logger);
    const results = await Promise.allSettled([...this.pools.values()].map((pool) => pool.start()));
    const failed = results.findIndex((result) => result.status === 'rejected');
    if (failed >= 0) {
      await this.stopAll();
      const reason = (results[failed] as PromiseRejectedResult).reason as Error;
      throw new SnakepitError('WORKER_UNAVAILABLE', `Snakepit pool ${this.options.pools[failed].name} could not start: ${reason.message}`, {
        details: reason instanceof SnakepitError ? reason.details : {},
        cause: reason,
      });
    }
    this.logger.log({ msg: 'pools ready', pools: this.options.pools.map((p) => `${p.name}:${p.size}`).join(',') });
  }

  /** Stops intake and lets running and queued calls finish, up to drainTimeoutMs. */
  async beforeApplicationShutdown(): Promise<void> {
    this.shuttingDown = true;
    const drained = await Promise.all([...this.pools.values()].map((pool) => pool.drain(this.options.drainTimeoutMs)));
    if (drained.includes(false)) this.logger.warn({ msg: 'drain deadline passed; stopping workers with calls in flight' });
  }

  async onApplicationShutdown(): Promise<void> {
    this.shuttingDown = true;
    await this.stopAll();
  }

  /**
   * Runs `tool` on a worker and resolves with its result and where it ran.
   *
   * `args` is a JSON object of named parameters, in which TypedArrays,
   * Buffers and NdArrays may stand at any depth (they travel as raw bytes
   * beside the JSON; see NdArray for the mapping), or a Buffer as the whole
   * arguments. They are sent without a copy, read when the call is written to
   * the worker, which may be after a wait in the queue: the arrays and buffers
   * you pass must not change until the call's promise settles.
   */
  execute<T = unknown>(tool: string, args: unknown = {}, options: ExecuteOptions = {}): Promise<ExecuteResult<T>> {
    const remotePool = this.remotePoolFor(options);
    if (remotePool) return this.remote!.execute<T>(tool, args, { ...options, pool: remotePool });
    return this.run<T>(tool, args, options, false);
  }

  /**
   * Runs a streaming tool. Chunks arrive as they are yielded; the Observable
   * completes with the tool. Unsubscribing cancels the call: the Python
   * generator is closed and the worker is free again. A non-streaming tool
   * gives its result as the only chunk.
   *
   * Push-based: each chunk's credit goes back as soon as `next` returns, so a
   * subscriber slower than the generator buffers the stream (in its own
   * operators or sockets). Use `stream()` when the consumer may be slow.
   * Arrays and buffers in `args` must not change until the stream ends (see execute).
   */
  executeStream<T = unknown>(tool: string, args: unknown = {}, options: ExecuteOptions = {}): Observable<StreamChunk<T>> {
    const remotePool = this.remotePoolFor(options);
    if (remotePool) return this.remote!.executeStream<T>(tool, args, { ...options, pool: remotePool });
    return new Observable<StreamChunk<T>>((subscriber) => {
      const unsubscribed = new AbortController();
      const signal = options.signal ? AbortSignal.any([options.signal, unsubscribed.signal]) : unsubscribed.signal;
      let chunks = 0;
      let finished = false;
      this.run<T>(tool, args, { ...options, signal }, true, (data, seq) => {
        chunks++;
        subscriber.next({ data: data as T, seq });
      }).then(
        (outcome) => {
          finished = true;
          if (chunks === 0 && outcome.result !== null) subscriber.next({ data: outcome.result, seq: 0 });
          subscriber.complete();
        },
        (error: unknown) => {
          finished = true;
          subscriber.error(error);
        },
      );
      return () => {
        if (!finished) unsubscribed.abort();
      };
    });
  }

  /**
   * Runs a streaming tool as a pull-based async iterable: each `for await`
   * starts the call, and the Python generator runs only as far ahead of the
   * loop as the stream window (64 chunks), so a slow consumer pauses it
   * instead of the host buffering the stream. Breaking out of the loop (or
   * throwing in it) cancels the call like unsubscribing does. A non-streaming
   * tool gives its result as the only chunk. A pool on another cluster node
   * is forwarded push-based (no credit across nodes yet). Arrays and buffers
   * in `args` must not change until the loop ends (see execute).
   */
  stream<T = unknown>(tool: string, args: unknown = {}, options: ExecuteOptions = {}): AsyncIterable<StreamChunk<T>> {
    const remotePool = this.remotePoolFor(options);
    if (remotePool) {
      const chunks = this.remote!.executeStream<T>(tool, args, { ...options, pool: remotePool });
      return pullStream<T>(
        (sink, signal) =>
          new Promise((resolve, reject) => {
            const subscription = chunks.subscribe({
              next: (chunk) => void sink(chunk.data, chunk.seq),
              error: reject,
              complete: () => resolve({ result: null }),
            });
            signal.addEventListener('abort', () => subscription.unsubscribe(), { once: true });
          }),
        options.signal,
      );
    }
    return pullStream<T>((sink, signal) => this.run<T>(tool, args, { ...options, signal }, true, sink), options.signal);
  }

  /** The tools every pool offers (as its workers described them); in a cluster, every node's pools. */
  listTools(pool?: string): PoolTools[] {
    const local = [...this.pools.values()].map((p) => ({ pool: p.name, tools: p.tools().map(toToolInfo) }));
    const all = this.remote ? this.remote.listTools(local) : local;
    if (!pool) return all;
    const found = all.filter((entry) => entry.pool === pool);
    if (found.length === 0) this.pool(pool); // throws POOL_NOT_FOUND
    return found;
  }

  /** Sizes, free slots, queue depth and every worker's state, per pool. */
  poolInfo(): PoolInfo[] {
    return [...this.pools.values()].map((pool) => pool.info());
  }

  poolNames(): string[] {
    return [...this.pools.keys()];
  }

  /**
   * Replaces every worker of `pool` one by one, each only after its replacement
   * serves, so no call fails (code upgrades). Resolves with the number replaced.
   */
  rollingRestart(pool: string): Promise<number> {
    return this.pool(pool).rollingRestart();
  }

  /** Replaces one worker gracefully (its running calls finish first). */
  recycleWorker(pool: string, workerId: string): Promise<boolean> {
    return this.pool(pool).recycleWorker(workerId);
  }

  /** Replaces every worker of `pool` at once, gracefully. */
  recycleAll(pool: string): Promise<number> {
    return this.pool(pool).recycleAll();
  }

  /** The pool to forward to when this node lacks it and another node has it. */
  private remotePoolFor(options: ExecuteOptions): string | undefined {
    const name = options.pool ?? this.defaultPool;
    if (options.localOnly || !this.remote || this.pools.has(name)) return undefined;
    return this.remote.has(name) ? name : undefined;
  }

  /** Every live worker's answer to a grpc.health.v1 check, across pools. */
  async checkWorkerHealth(timeoutMs: number): Promise<WorkerHealthCheck[]> {
    const perPool = await Promise.all([...this.pools.values()].map((pool) => pool.checkWorkerHealth(timeoutMs)));
    return perPool.flat();
  }

  /** One span per call (a no-op without an OpenTelemetry SDK); its context travels to Python in the metadata. */
  private run<T>(tool: string, args: unknown, options: ExecuteOptions, stream: boolean, onChunk?: ChunkSink): Promise<ExecuteResult<T>> {
    return this.tracer.trace({ pool: options.pool ?? this.defaultPool, tool, sessionId: options.sessionId, stream, metadata: options.metadata }, (metadata) =>
      this.runCall<T>(tool, args, options, metadata, stream, onChunk),
    );
  }

  /** `metadata` replaces options.metadata: it is the caller's plus the trace context. */
  private async runCall<T>(
    tool: string,
    args: unknown,
    options: ExecuteOptions,
    metadata: Record<string, string>,
    stream: boolean,
    onChunk?: ChunkSink,
  ): Promise<ExecuteResult<T>> {
    const started = performance.now();
    const poolName = options.pool ?? this.defaultPool;
    this.telemetry.emit('call.start', { pool: poolName, tool, sessionId: options.sessionId });
    let turn: SessionTurn | undefined;
    try {
      if (this.shuttingDown) throw new SnakepitError('SHUTTING_DOWN', 'Snakepit is shutting down', { details: { pool: poolName } });
      const pool = this.pool(poolName);
      checkTool(pool, tool);
      const timeoutMs = resolveTimeout(options.timeoutMs, pool.config);
      const payload = encodeArgs(args, pool.config.maxPayloadBytes);
      // A session's calls run one at a time, in arrival order, the wait counted in the budget; the snapshot is read once the turn comes.
      turn = options.sessionId
        ? await this.sessions.forCall(options.sessionId, {
            timeoutMs: timeoutMs - (performance.now() - started),
            signal: options.signal,
            nested: currentHostCallDepth() > 0,
            pool: poolName,
            tool,
          })
        : undefined;
      const call = {
        tool,
        args: payload,
        stream,
        timeoutMs: 0,
        budgetMs: timeoutMs,
        sessionId: options.sessionId,
        session: turn && toSessionState(turn.record.state, turn.record.version),
        metadata,
        preferWorkerId: turn?.record.lastWorkerId,
        hostCallDepth: currentHostCallDepth(),
        signal: options.signal,
        onChunk,
      };
      let outcome: PoolCallOutcome;
      for (let attempt = 1; ; attempt++) {
        const remainingMs = timeoutMs - (performance.now() - started);
        try {
          call.timeoutMs = Math.max(1, remainingMs);
          outcome = await pool.run(call);
          break;
        } catch (error) {
          // Only a call its caller declared idempotent runs twice, and only after a crash.
          const retry = options.idempotent && attempt === 1 && !stream && error instanceof SnakepitError && error.code === 'WORKER_CRASHED';
          if (!retry || remainingMs <= 1) throw error;
          this.logger.warn({ msg: 'retrying an idempotent call after its worker crashed', pool: poolName, tool, worker_id: error.details.workerId });
        }
      }
      if (turn) {
        const held = turn;
        outcome = await this.commitSession(held, outcome, async () => {
          // Only a tool safe to run twice (by its spec or its caller), never a stream whose chunks went out.
          call.timeoutMs = timeoutMs - (performance.now() - started);
          const idempotent = options.idempotent || pool.tools().some((spec) => spec.name === tool && spec.idempotent);
          if (stream || !idempotent || call.timeoutMs < 1) return undefined;
          this.logger.warn({
            msg: 'session changed while an idempotent call ran; running it again on the new state',
            pool: poolName,
            tool,
            session_id: held.sessionId,
          });
          const fresh = await held.refresh();
          call.session = toSessionState(fresh.state, fresh.version);
          call.preferWorkerId = fresh.lastWorkerId;
          return pool.run(call);
        });
      }
      const durationMs = performance.now() - started;
      this.telemetry.emit('call.stop', {
        pool: poolName,
        tool,
        workerId: outcome.workerId,
        pid: outcome.pid,
        requestId: outcome.requestId,
        sessionId: options.sessionId,
        durationMs,
        outcome: 'ok',
      });
      return { result: outcome.value as T, workerId: outcome.workerId, pid: outcome.pid, pool: poolName, durationMs };
    } catch (thrown) {
      const error = toSnakepitError(thrown);
      this.telemetry.emit('call.stop', {
        pool: poolName,
        tool,
        workerId: error.details.workerId as string | undefined,
        pid: error.details.pid as number | undefined,
        requestId: error.details.requestId as number | undefined,
        sessionId: options.sessionId,
        durationMs: performance.now() - started,
        outcome: 'error',
        errorCode: error.code,
      });
      throw error;
    } finally {
      turn?.release();
    }
  }

  /**
   * Commits a session call's changes against its snapshot's version. When
   * another writer got there first (another node, a nested host-tool call,
   * SessionService.put) nothing is written: `rerun` runs the call once more
   * on a fresh snapshot if it may, else SESSION_CONFLICT is the call's error.
   */
  private async commitSession(turn: SessionTurn, outcome: PoolCallOutcome, rerun: () => Promise<PoolCallOutcome | undefined>): Promise<PoolCallOutcome> {
    try {
      await turn.commit(toSessionDelta(outcome), outcome.workerId);
      return outcome;
    } catch (error) {
      if (!(error instanceof SnakepitError && error.code === 'SESSION_CONFLICT')) throw error;
      const again = await rerun();
      if (!again) throw error;
      await turn.commit(toSessionDelta(again), again.workerId);
      return again;
    }
  }

  private pool(name: string): WorkerPool {
    const pool = this.pools.get(name);
    if (!pool) {
      // In a cluster, every pool a caller could name: the other nodes' too.
      const known = this.remote ? this.listTools().map((entry) => entry.pool) : [...this.pools.keys()];
      throw new SnakepitError('POOL_NOT_FOUND', `No pool named ${JSON.stringify(name)}`, {
        details: { pool: name, pools: known },
      });
    }
    return pool;
  }

  private async stopAll(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.stop()));
    this.runtime.dispose();
  }
}

function checkTool(pool: WorkerPool, tool: string): void {
  if (typeof tool !== 'string' || !TOOL_NAME.test(tool)) {
    throw new SnakepitError('INVALID_ARGUMENTS', 'Tool names are identifiers: letters, digits, _ . - (at most 128)', {
      details: { tool: typeof tool === 'string' ? tool.slice(0, 140) : typeof tool },
    });
  }
  if (pool.offers(tool) === false) {
    throw new SnakepitError('TOOL_NOT_FOUND', `Pool ${pool.name} has no tool ${JSON.stringify(tool)}`, {
      details: { pool: pool.name, tool, available: pool.tools().map((spec) => spec.name) },
    });
  }
}

/** A call's budget: the pool's default, or the caller's within maxTimeoutMs and what a Node timer can wait. */
export function resolveTimeout(timeoutMs: number | undefined, config: Pick<ResolvedPoolOptions, 'timeoutMs' | 'maxTimeoutMs'>): number {
  if (timeoutMs === undefined) return config.timeoutMs;
  // Option validation caps maxTimeoutMs already; this keeps a hand-built config from arming a timer that fires at once.
  const maxTimeoutMs = Math.min(config.maxTimeoutMs, MAX_TIMER_MS);
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > maxTimeoutMs) {
    throw new SnakepitError('INVALID_ARGUMENTS', `timeoutMs must be a number of milliseconds between 1 and ${maxTimeoutMs}`, {
      details: { timeoutMs, maxTimeoutMs },
    });
  }
  return timeoutMs;
}

function toSessionState(state: Record<string, string>, version: number): SessionState {
  return { values: Object.fromEntries(Object.entries(state).map(([key, json]) => [key, Buffer.from(json)])), version };
}

/** A tool's changes as the store takes them (a null-prototype map, so `__proto__` stays a key). */
function toSessionDelta(outcome: PoolCallOutcome): SessionDelta {
  return {
    set: sessionState(Object.entries(outcome.delta?.set ?? {}).map(([key, value]) => [key, value.toString('utf8')])),
    deleted: outcome.delta?.deleted ?? [],
  };
}

function toToolInfo(spec: ToolSpec__Output): ToolInfo {
  return {
    name: spec.name,
    description: spec.description,
    streaming: spec.streaming,
    idempotent: spec.idempotent,
    parameters: spec.parameters.map((p) => ({
      name: p.name,
      type: p.type,
      required: p.required,
      nullable: p.nullable,
      description: p.description,
      ...(p.items ? { items: p.items } : {}),
      ...(p.dtype ? { dtype: p.dtype } : {}),
      ...(p.ndim ? { ndim: p.ndim } : {}),
      ...(p.defaultJson && p.defaultJson.length > 0 ? { default: JSON.parse(p.defaultJson.toString('utf8')) as unknown } : {}),
    })),
  };
}

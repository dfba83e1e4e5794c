import type { Logger } from '@nestjs/common';
import { CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen, isBrokenCircuitError, type CircuitBreakerPolicy } from 'cockatiel';
import type { Payload } from '../bridge/generated/snakepit/bridge/v1/Payload';
import type { SessionDelta__Output } from '../bridge/generated/snakepit/bridge/v1/SessionDelta';
import type { SessionState } from '../bridge/generated/snakepit/bridge/v1/SessionState';
import type { ToolSpec__Output } from '../bridge/generated/snakepit/bridge/v1/ToolSpec';
import type { WorkerMessage__Output } from '../bridge/generated/snakepit/bridge/v1/WorkerMessage';
import { errorFromWorker } from '../bridge/error-info';
import { decodePayload } from '../bridge/payload';
import { SnakepitError, toSnakepitError } from '../errors/snakepit-error';
import type { ResolvedPoolOptions } from '../options/resolve-options';
import type { TelemetryService } from '../telemetry/telemetry.service';
import type { WorkerRecycleReason } from '../telemetry/telemetry-events';
import { processGroupRss } from '../worker/process-stats';
import type { WorkerHealthCheck } from '../health/workers.health';
import type { HostToolRegistry } from '../host-tools/host-tool.registry';
import { Worker, type WorkerInfo } from '../worker/worker';
import type { ProcessExit } from '../worker/worker-process';
import type { WorkerRuntime } from '../worker/worker-runtime';
import { RequestQueue } from './request-queue';

/** One call as the pool sees it: already encoded, already validated. */
export interface PoolCall {
  tool: string;
  args: Payload;
  stream: boolean;
  /** Budget from now, queue wait included. */
  timeoutMs: number;
  sessionId?: string;
  session?: SessionState;
  metadata?: Record<string, string>;
  /** Affinity hint: the worker that served this session last. */
  preferWorkerId?: string;
  /** Host-tool hops that led to this call (0 from user code). */
  hostCallDepth: number;
  signal?: AbortSignal;
  onChunk?: (value: unknown, seq: number) => void;
}

export interface PoolCallOutcome {
  value: unknown;
  delta?: SessionDelta__Output;
  workerId: string;
  pid: number;
  /** The call's id on its worker's stream (it appears in the worker's logs too). */
  requestId: number;
}

export interface PoolInfo {
  name: string;
  size: number;
  ready: number;
  /** Free call slots across ready workers. */
  available: number;
  /** Workers running at least one call. */
  busy: number;
  queueDepth: number;
  starting: number;
  /** Too many crashes in the window: restarts are paused and the pool is unhealthy. */
  crashLooping: boolean;
  circuit: 'closed' | 'open' | 'half_open';
  workers: WorkerInfo[];
}

interface Settle {
  resolve(outcome: PoolCallOutcome): void;
  reject(error: SnakepitError): void;
}

interface Waiter {
  call: PoolCall;
  /** Runs synchronously when a slot frees, so no other caller can take it first. */
  grant(worker: Worker): void;
  fail(error: SnakepitError): void;
}

/** A worker that lived at least this long before dying resets the restart backoff. */
const STABLE_UPTIME_MS = 10_000;

/**
 * Failures that say the pool itself is unwell and feed the circuit breaker.
 * A tool's own exception or bad arguments do not: they are the caller's business.
 */
const INFRASTRUCTURE_FAILURES = new Set(['WORKER_CRASHED', 'WORKER_UNAVAILABLE', 'TIMEOUT', 'QUEUE_TIMEOUT', 'RESOURCE_EXHAUSTED']);

const CIRCUIT_STATES: Record<CircuitState, PoolInfo['circuit']> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.HalfOpen]: 'half_open',
  [CircuitState.Open]: 'open',
  [CircuitState.Isolated]: 'open',
};

/**
 * One named pool: keeps `size` workers alive, hands calls to free slots,
 * queues the rest in a bounded FIFO and enforces each call's single time budget.
 */
export class WorkerPool {
  private readonly workers = new Map<string, Worker>();
  private readonly queue: RequestQueue<Waiter>;
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private workerSeq = 0;
  private starting = 0;
  private consecutiveFailures = 0;
  private closing = false;
  /** Times of recent crashes and failed starts, for crash-loop detection. */
  private failureTimes: number[] = [];
  private crashLooping = false;
  private lifecycleTimer?: NodeJS.Timeout;
  /**
   * cockatiel's breaker (consecutive failures, half-open probe after a delay):
   * a small, typed, dependency-free library, preferred over writing our own
   * state machine; opossum would also fit but wraps functions rather than calls.
   */
  private readonly breaker?: CircuitBreakerPolicy;

  constructor(
    readonly config: ResolvedPoolOptions,
    private readonly runtime: WorkerRuntime,
    private readonly telemetry: TelemetryService,
    private readonly logger: Logger,
    private readonly stopGraceMs: number,
    private readonly hostTools: HostToolRegistry,
  ) {
    this.queue = new RequestQueue(config.maxQueueSize);
    if (config.circuitBreaker) {
      this.breaker = circuitBreaker(
        handleWhen((error) => error instanceof SnakepitError && INFRASTRUCTURE_FAILURES.has(error.code)),
        { halfOpenAfter: config.circuitBreaker.resetTimeoutMs, breaker: new ConsecutiveBreaker(config.circuitBreaker.failureThreshold) },
      );
      this.breaker.onBreak(() => {
        this.logger.warn({ msg: 'circuit opened: calls fail fast until a probe succeeds', pool: this.name });
        this.telemetry.emit('circuit.opened', { pool: this.name });
      });
      this.breaker.onHalfOpen(() => this.telemetry.emit('circuit.half_open', { pool: this.name }));
      this.breaker.onReset(() => {
        this.logger.log({ msg: 'circuit closed', pool: this.name });
        this.telemetry.emit('circuit.closed', { pool: this.name });
      });
    }
  }

  get name(): string {
    return this.config.name;
  }

  /** Starts every worker (bounded concurrency); resolves when they answered. Fails only if none could start. */
  async start(): Promise<void> {
    const started = Date.now();
    const errors: SnakepitError[] = [];
    let next = 0;
    const lane = async () => {
      while (next < this.config.size) {
        next++;
        try {
          await this.spawnWorker();
        } catch (error) {
          errors.push(toSnakepitError(error));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.config.startConcurrency, this.config.size) }, lane));
    if (this.workers.size === 0) {
      throw errors[0] ?? new SnakepitError('WORKER_UNAVAILABLE', `Pool ${this.name} started no worker`);
    }
    for (const error of errors) {
      this.logger.error({ msg: 'worker failed to start; replacing it', pool: this.name, error: error.message, details: error.details });
      this.recordFailure();
      this.scheduleReplacement();
    }
    this.lifecycleTimer = setInterval(() => this.checkLifecycle(), this.config.lifecycleCheckIntervalMs);
    this.lifecycleTimer.unref();
    this.telemetry.emit('pool.ready', { pool: this.name, workers: this.workers.size, durationMs: Date.now() - started });
  }

  /** Runs one call through the circuit breaker: on a free slot now, or after waiting in the queue. */
  run(call: PoolCall): Promise<PoolCallOutcome> {
    if (!this.breaker) return this.admit(call);
    return this.breaker.execute(() => this.admit(call)).catch((error: unknown) => {
      if (!isBrokenCircuitError(error)) throw error;
      throw new SnakepitError('CIRCUIT_OPEN', `Pool ${this.name}: the circuit is open after repeated failures; calls fail fast until a probe succeeds`, {
        details: { pool: this.name, resetTimeoutMs: this.config.circuitBreaker && this.config.circuitBreaker.resetTimeoutMs },
      });
    });
  }

  private admit(call: PoolCall): Promise<PoolCallOutcome> {
    return new Promise((resolve, reject) => {
      const settle: Settle = { resolve, reject };
      if (this.closing) {
        reject(new SnakepitError('SHUTTING_DOWN', `Pool ${this.name} is shutting down`, { details: { pool: this.name } }));
        return;
      }
      if (this.crashLooping && this.readyWorkers().length === 0) {
        // Waiting in the queue would only end in a timeout: say why at once.
        reject(
          new SnakepitError('WORKER_UNAVAILABLE', `Pool ${this.name} has no ready worker: it is crash-looping`, {
            details: { pool: this.name, crashLooping: true },
          }),
        );
        return;
      }
      const deadline = Date.now() + call.timeoutMs;
      // FIFO fairness: while anyone waits, slots go to the queue first.
      const worker = this.queue.size === 0 ? this.pickWorker(call.preferWorkerId) : undefined;
      if (worker) this.dispatch(worker, call, deadline, settle);
      else this.enqueue(call, deadline, settle);
    });
  }

  tools(): ToolSpec__Output[] {
    return this.describedWorker()?.tools ?? [];
  }

  /** Whether the workers offer `tool`; undefined while no worker is ready to say. */
  offers(tool: string): boolean | undefined {
    return this.describedWorker()?.toolNames.has(tool);
  }

  private describedWorker(): Worker | undefined {
    for (const worker of this.workers.values()) if (worker.state === 'ready') return worker;
    return undefined;
  }

  info(): PoolInfo {
    const workers = [...this.workers.values()];
    const ready = workers.filter((w) => w.isServing);
    return {
      name: this.name,
      size: this.config.size,
      ready: ready.length,
      available: ready.reduce((sum, w) => sum + Math.max(0, w.capacity - w.busy), 0),
      busy: workers.filter((w) => w.busy > 0).length,
      queueDepth: this.queue.size,
      starting: this.starting,
      crashLooping: this.crashLooping,
      circuit: this.breaker ? CIRCUIT_STATES[this.breaker.state] : 'closed',
      workers: workers.map((w) => w.info()),
    };
  }

  /** Stops intake; queued and running calls go on. Resolves when idle or at the deadline. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.closing = true;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.queue.size === 0 && [...this.workers.values()].every((w) => w.busy === 0)) return true;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return false;
  }

  /** Fails whatever still waits, then stops every worker (TERM, then KILL of the group). */
  async stop(): Promise<void> {
    this.closing = true;
    clearInterval(this.lifecycleTimer);
    for (const timer of this.restartTimers) clearTimeout(timer);
    this.restartTimers.clear();
    for (const waiter of this.queue.drain()) {
      waiter.fail(new SnakepitError('SHUTTING_DOWN', `Pool ${this.name} stopped before the call could run`, { details: { pool: this.name } }));
    }
    await Promise.all(
      [...this.workers.values()].map(async (worker) => {
        this.telemetry.emit('worker.stop', { pool: this.name, workerId: worker.id, pid: worker.pid, reason: 'shutdown' });
        await worker.stop(this.stopGraceMs);
      }),
    );
    this.workers.clear();
  }

  /**
   * Replaces a worker without failing a call: the old worker takes no new calls,
   * finishes its running ones and stops, and a replacement takes its place.
   * A worker past its request or memory limit stops taking calls at once (they
   * wait briefly in the queue); otherwise the replacement starts first, so
   * capacity never dips. Resolves when the old worker is gone, or false when
   * the recycle was not possible now.
   */
  async recycle(worker: Worker, reason: WorkerRecycleReason): Promise<boolean> {
    if (worker.state !== 'ready' || worker.recyclePending || this.closing) return false;
    worker.recyclePending = true;
    const overLimit = reason === 'max_requests' || reason === 'memory';
    if (overLimit) worker.drain();
    try {
      await this.spawnWorker();
    } catch (error) {
      worker.recyclePending = false;
      worker.undrain();
      this.pump();
      this.logger.error({ msg: 'recycle postponed: the replacement did not start', pool: this.name, worker_id: worker.id, reason, error: (error as Error).message });
      return false;
    }
    worker.drain();
    this.telemetry.emit('worker.recycled', {
      pool: this.name,
      workerId: worker.id,
      pid: worker.pid,
      reason,
      uptimeMs: Date.now() - worker.startedAt,
      requestsServed: worker.requestsServed,
    });
    // Every call it runs ends within its budget or is cancelled; the grace covers confirmation.
    const drainMs = this.config.maxTimeoutMs + this.config.cancelGraceMs;
    await Promise.race([worker.whenIdle(), new Promise((resolve) => setTimeout(resolve, drainMs).unref())]);
    this.telemetry.emit('worker.stop', { pool: this.name, workerId: worker.id, pid: worker.pid, reason: `recycled: ${reason}` });
    await worker.stop(this.stopGraceMs);
    return true;
  }

  /** Every live worker's answer to a grpc.health.v1 check (for readiness probes). */
  checkWorkerHealth(timeoutMs: number): Promise<WorkerHealthCheck[]> {
    return Promise.all(
      [...this.workers.values()].map((worker) => {
        const identity = { pool: this.name, workerId: worker.id, pid: worker.pid };
        return worker.checkHealth(timeoutMs).then(
          (status) => ({ ...identity, status }),
          (error: Error) => ({ ...identity, error: error.message }),
        );
      }),
    );
  }

  /** Recycles one worker by id (on demand). */
  recycleWorker(workerId: string): Promise<boolean> {
    const worker = this.workers.get(workerId);
    if (!worker) {
      return Promise.reject(
        new SnakepitError('WORKER_UNAVAILABLE', `Pool ${this.name} has no worker ${JSON.stringify(workerId)}`, {
          details: { pool: this.name, workerId, workers: [...this.workers.keys()] },
        }),
      );
    }
    return this.recycle(worker, 'manual');
  }

  /** Recycles every worker at once (a recycle storm is safe: each old worker drains first). */
  async recycleAll(): Promise<number> {
    const results = await Promise.all(this.readyWorkers().map((worker) => this.recycle(worker, 'manual')));
    return results.filter(Boolean).length;
  }

  /** Replaces every worker one by one, each only after its replacement serves (code upgrades). */
  async rollingRestart(): Promise<number> {
    let replaced = 0;
    for (const worker of this.readyWorkers()) {
      if (await this.recycle(worker, 'rolling_restart')) replaced++;
    }
    return replaced;
  }

  private readyWorkers(): Worker[] {
    return [...this.workers.values()].filter((worker) => worker.state === 'ready');
  }

  /** TTL and memory: sampled on an interval, acted on by recycling. */
  private checkLifecycle(): void {
    if (this.closing) return;
    const workers = this.readyWorkers();
    const { workerTtlMs, memoryThresholdMb } = this.config;
    const rss = processGroupRss(workers.map((worker) => worker.pid));
    for (const worker of workers) {
      const rssBytes = rss.get(worker.pid);
      if (rssBytes !== undefined) this.telemetry.emit('worker.memory', { pool: this.name, workerId: worker.id, pid: worker.pid, rssBytes });
      if (workerTtlMs > 0 && Date.now() - worker.startedAt >= workerTtlMs) {
        void this.recycle(worker, 'ttl');
      } else if (memoryThresholdMb > 0 && rssBytes !== undefined && rssBytes > memoryThresholdMb * 1024 * 1024) {
        this.logger.warn({ msg: 'worker above its memory threshold; recycling it', pool: this.name, worker_id: worker.id, pid: worker.pid, rss_bytes: rssBytes });
        void this.recycle(worker, 'memory');
      }
    }
  }

  /**
   * The worker for the next call: the session's worker if it has a free slot,
   * else the least busy one with a free slot. With `pipelineDepth`, once every
   * slot is taken a call may still go to the least busy worker, to wait in that
   * worker's own queue: calls then share gRPC messages instead of crossing one
   * at a time, at the price of waiting behind that worker's current call.
   */
  private pickWorker(preferWorkerId?: string): Worker | undefined {
    if (preferWorkerId) {
      const preferred = this.workers.get(preferWorkerId);
      if (preferred?.hasFreeSlot) return preferred;
    }
    let best: Worker | undefined;
    for (const worker of this.workers.values()) {
      if (worker.isServing && (!best || worker.busy < best.busy)) best = worker;
    }
    if (!best) return undefined;
    return best.busy < best.capacity + this.config.pipelineDepth ? best : undefined;
  }

  private enqueue(call: PoolCall, deadline: number, settle: Settle): void {
    if (this.queue.isFull) {
      this.telemetry.emit('pool.queue_full', { pool: this.name, depth: this.queue.size });
      settle.reject(
        new SnakepitError('QUEUE_FULL', `Pool ${this.name}: every worker is busy and ${this.queue.size} calls already wait`, {
          details: { pool: this.name, maxQueueSize: this.config.maxQueueSize },
        }),
      );
      return;
    }
    const enqueuedAt = Date.now();
    const budget = deadline - enqueuedAt;
    const queueTimeoutFirst = this.config.queueTimeoutMs < budget;
    let ticket = 0;
    const leave = (outcome: 'dispatched' | 'timeout' | 'cancelled') => {
      clearTimeout(timer);
      call.signal?.removeEventListener('abort', onAbort);
      this.telemetry.emit('pool.queue_leave', { pool: this.name, depth: this.queue.size, waitMs: Date.now() - enqueuedAt, outcome });
    };
    const timer = setTimeout(
      () => {
        if (!this.queue.remove(ticket)) return;
        leave('timeout');
        const waitedMs = Date.now() - enqueuedAt;
        settle.reject(
          queueTimeoutFirst
            ? new SnakepitError('QUEUE_TIMEOUT', `Pool ${this.name}: no worker became free within ${this.config.queueTimeoutMs} ms`, {
                details: { pool: this.name, queueTimeoutMs: this.config.queueTimeoutMs, waitedMs },
              })
            : new SnakepitError('TIMEOUT', `Call to ${call.tool} timed out after ${waitedMs} ms while waiting for a worker`, {
                details: { pool: this.name, tool: call.tool, timeoutMs: call.timeoutMs, phase: 'queue' },
              }),
        );
      },
      Math.max(0, Math.min(this.config.queueTimeoutMs, budget)),
    );
    const onAbort = () => {
      if (!this.queue.remove(ticket)) return;
      leave('cancelled');
      settle.reject(cancelledError(call));
    };
    ticket = this.queue.push({
      call,
      grant: (worker) => {
        leave('dispatched');
        this.dispatch(worker, call, deadline, settle);
      },
      fail: (error) => {
        leave('cancelled');
        settle.reject(error);
      },
    })!;
    this.telemetry.emit('pool.queue_enter', { pool: this.name, depth: this.queue.size });
    if (call.signal?.aborted) onAbort();
    else call.signal?.addEventListener('abort', onAbort, { once: true });
  }

  /** Hands freed slots to waiting callers, oldest first. */
  private pump(): void {
    while (this.queue.size > 0) {
      const worker = this.pickWorker();
      if (!worker) return;
      this.queue.shift()!.grant(worker);
    }
  }

  private dispatch(worker: Worker, call: PoolCall, deadline: number, settle: Settle): void {
    let settled = false;
    let graceTimer: NodeJS.Timeout | undefined;
    // Declared before dispatch: a broken channel answers synchronously, before any timer exists.
    let deadlineTimer: NodeJS.Timeout | undefined;
    // Error details and logs of this call; requestId joins once the stream assigned it.
    const context: Record<string, unknown> = { pool: this.name, tool: call.tool, workerId: worker.id, pid: worker.pid, sessionId: call.sessionId };
    const finish = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(deadlineTimer);
      call.signal?.removeEventListener('abort', onAbort);
      return true;
    };
    // The caller stops waiting now; the slot stays taken until the worker confirms.
    const abandon = (error: SnakepitError) => {
      if (!finish()) return;
      settle.reject(error);
      worker.cancel(requestId, error.code);
      graceTimer = setTimeout(() => {
        this.telemetry.emit('worker.cancel_unconfirmed', { pool: this.name, workerId: worker.id, pid: worker.pid, graceMs: this.config.cancelGraceMs });
        this.logger.warn({
          msg: 'worker did not confirm a cancelled call; replacing it',
          pool: this.name,
          tool: call.tool,
          worker_id: worker.id,
          pid: worker.pid,
          session_id: call.sessionId,
          request_id: requestId,
          grace_ms: this.config.cancelGraceMs,
        });
        worker.kill('cancel_unconfirmed');
      }, this.config.cancelGraceMs);
    };
    const ended = () => {
      clearTimeout(graceTimer);
      this.telemetry.emit('pool.checkin', { pool: this.name, workerId: worker.id, tool: call.tool, busy: worker.busy });
      const { maxRequestsPerWorker } = this.config;
      if (maxRequestsPerWorker > 0 && worker.requestsServed >= maxRequestsPerWorker) void this.recycle(worker, 'max_requests');
      this.pump();
    };
    const requestId = worker.dispatch(
      {
        tool: call.tool,
        args: call.args,
        timeoutMs: Math.max(1, deadline - Date.now()),
        sessionId: call.sessionId ?? '',
        session: call.session,
        metadata: call.metadata ?? {},
        stream: call.stream,
        hostCallDepth: call.hostCallDepth,
      },
      {
        chunk: (message) => {
          if (settled || !message.chunk) return;
          try {
            call.onChunk?.(decodePayload(message.chunk.value), message.chunk.seq ?? 0);
          } catch (error) {
            abandon(toSnakepitError(error).withDetails(context));
          }
        },
        end: (message) => {
          ended();
          if (finish()) this.settleFromMessage(message, worker, call, settle, context);
        },
        broken: (error) => {
          ended();
          if (finish()) settle.reject(error.withDetails(context));
        },
      },
    );
    context.requestId = requestId;
    this.telemetry.emit('pool.checkout', { pool: this.name, workerId: worker.id, tool: call.tool, busy: worker.busy });
    if (settled) return;
    deadlineTimer = setTimeout(
      () =>
        abandon(
          new SnakepitError('TIMEOUT', `Call to ${call.tool} timed out after ${call.timeoutMs} ms`, {
            details: { ...context, timeoutMs: call.timeoutMs, phase: 'execute' },
          }),
        ),
      Math.max(0, deadline - Date.now()),
    );
    const onAbort = () => abandon(cancelledError(call).withDetails(context));
    if (call.signal?.aborted) onAbort();
    else call.signal?.addEventListener('abort', onAbort, { once: true });
  }

  private settleFromMessage(
    message: WorkerMessage__Output,
    worker: Worker,
    call: PoolCall,
    settle: Settle,
    context: Record<string, unknown>,
  ): void {
    switch (message.kind) {
      case 'result': {
        let value: unknown;
        try {
          value = decodePayload(message.result?.value);
        } catch (error) {
          settle.reject(
            new SnakepitError('SERIALIZATION_ERROR', `The result of ${call.tool} is not valid JSON`, { details: context, cause: error }),
          );
          return;
        }
        settle.resolve({ value, delta: message.result?.session ?? undefined, workerId: worker.id, pid: worker.pid, requestId: context.requestId as number });
        return;
      }
      case 'error': {
        const error = errorFromWorker(message.error?.error).withDetails(context);
        this.telemetry.emit('call.exception', {
          pool: this.name,
          tool: call.tool,
          workerId: worker.id,
          code: error.code,
          pythonType: error.python?.type,
        });
        settle.reject(error);
        return;
      }
      default:
        settle.reject(
          new SnakepitError('CANCELLED', `The worker cancelled ${call.tool}: ${message.cancelled?.reason || 'no reason given'}`, {
            details: context,
          }),
        );
    }
  }

  private async spawnWorker(): Promise<Worker> {
    const workerId = `${this.name}-${++this.workerSeq}`;
    this.starting++;
    const spawnedAt = Date.now();
    try {
      const worker = await Worker.start({
        workerId,
        pool: this.name,
        python: this.config.python,
        adapter: this.config.adapter,
        address: this.runtime.addressFor(workerId),
        capacity: this.config.capacityPerWorker,
        logLevel: this.config.logLevel,
        env: this.runtime.envFor(this.config, workerId),
        maxMessageBytes: this.config.maxPayloadBytes + 64 * 1024,
        startTimeoutMs: this.config.startTimeoutMs,
        shutdownGraceMs: this.stopGraceMs,
        memoryLimitMb: this.config.memoryLimitMb,
        token: this.runtime.token,
        logger: this.logger,
        registry: this.runtime,
        hostTools: this.hostTools,
        hostCallTimeoutMs: this.config.timeoutMs,
        heartbeat: {
          intervalMs: this.config.heartbeatIntervalMs,
          timeoutMs: this.config.heartbeatTimeoutMs,
          maxMissed: this.config.heartbeatMaxMissed,
          onMissed: (w, missed) => {
            this.telemetry.emit('worker.heartbeat_missed', { pool: this.name, workerId: w.id, pid: w.pid, missed, threshold: this.config.heartbeatMaxMissed });
            this.logger.warn({ msg: 'worker missed a heartbeat', pool: this.name, worker_id: w.id, pid: w.pid, missed, threshold: this.config.heartbeatMaxMissed });
          },
        },
        onExit: (w, exit, expected) => this.onWorkerExit(w, exit, expected),
      });
      this.telemetry.emit('worker.start', { pool: this.name, workerId, pid: worker.pid });
      if (this.closing) {
        await worker.stop(this.stopGraceMs);
        throw new SnakepitError('SHUTTING_DOWN', `Pool ${this.name} is shutting down`);
      }
      this.workers.set(workerId, worker);
      if (this.crashLooping) {
        this.crashLooping = false;
        this.failureTimes = [];
        this.logger.log({ msg: 'pool recovered from its crash loop', pool: this.name, worker_id: workerId });
        this.telemetry.emit('pool.crash_loop_cleared', { pool: this.name });
      }
      this.telemetry.emit('worker.ready', { pool: this.name, workerId, pid: worker.pid, startMs: Date.now() - spawnedAt });
      this.logger.debug?.({ msg: 'worker ready', pool: this.name, worker_id: workerId, pid: worker.pid, start_ms: Date.now() - spawnedAt });
      this.pump();
      return worker;
    } catch (error) {
      this.telemetry.emit('worker.start_failed', { pool: this.name, workerId, reason: (error as Error).message });
      throw error;
    } finally {
      this.starting--;
    }
  }

  private onWorkerExit(worker: Worker, exit: ProcessExit, expected: boolean): void {
    if (!this.workers.delete(worker.id) || expected || this.closing) return;
    const uptimeMs = Date.now() - worker.startedAt;
    const reason = worker.crashReason ?? 'exit';
    this.telemetry.emit('worker.crash', {
      pool: this.name,
      workerId: worker.id,
      pid: worker.pid,
      reason,
      exitCode: exit.code,
      signal: exit.signal,
      uptimeMs,
      requestsServed: worker.requestsServed,
    });
    this.logger.error({
      msg: 'worker died; replacing it',
      pool: this.name,
      worker_id: worker.id,
      pid: worker.pid,
      reason,
      exit_code: exit.code,
      signal: exit.signal,
      uptime_ms: uptimeMs,
      requests_served: worker.requestsServed,
    });
    // A worker that died while being recycled already has its replacement.
    if (worker.recyclePending) return;
    // Backoff protects against workers that cannot start or die at once; one that
    // served calls or lived a while was healthy, so its replacement starts promptly.
    if (uptimeMs >= STABLE_UPTIME_MS || worker.requestsServed > 0) this.consecutiveFailures = 0;
    this.recordFailure();
    this.scheduleReplacement();
  }

  /** Counts a crash or failed start; enough of them within the window make the pool crash-looping. */
  private recordFailure(): void {
    const now = Date.now();
    this.consecutiveFailures++;
    this.failureTimes = this.failureTimes.filter((time) => now - time < this.config.crashLoopWindowMs);
    this.failureTimes.push(now);
    if (!this.crashLooping && this.failureTimes.length >= this.config.crashLoopThreshold) {
      this.crashLooping = true;
      this.logger.error({
        msg: 'pool is crash-looping: restarts pause, one retry per cooldown',
        pool: this.name,
        crashes: this.failureTimes.length,
        window_ms: this.config.crashLoopWindowMs,
        retry_in_ms: this.config.crashLoopCooldownMs,
      });
      this.telemetry.emit('pool.crash_loop', {
        pool: this.name,
        crashes: this.failureTimes.length,
        windowMs: this.config.crashLoopWindowMs,
        retryInMs: this.config.crashLoopCooldownMs,
      });
    }
  }

  /**
   * Replaces a lost worker after an exponential backoff; while the pool is
   * crash-looping, only one try per cooldown, so a broken adapter cannot spin the CPU.
   */
  private scheduleReplacement(): void {
    if (this.closing) return;
    const exponent = Math.max(0, this.consecutiveFailures - 1);
    const delayMs = this.crashLooping
      ? this.config.crashLoopCooldownMs
      : Math.min(this.config.restartBackoffMs * 2 ** exponent, this.config.maxRestartBackoffMs);
    this.telemetry.emit('worker.restart_scheduled', { pool: this.name, delayMs, consecutiveFailures: this.consecutiveFailures });
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      this.spawnWorker().then(
        () => undefined,
        (error: unknown) => {
          if (this.closing) return;
          this.recordFailure();
          this.logger.error({ msg: 'replacement worker failed to start', pool: this.name, error: (error as Error).message });
          this.scheduleReplacement();
        },
      );
    }, delayMs);
    this.restartTimers.add(timer);
  }
}

function cancelledError(call: PoolCall): SnakepitError {
  return new SnakepitError('CANCELLED', `The caller cancelled ${call.tool}`, { details: { tool: call.tool } });
}

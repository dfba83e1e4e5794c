import type { Payload__Output } from '../../bridge/generated/snakepit/bridge/v1/Payload';
import type { CallRequest } from '../../bridge/generated/snakepit/bridge/v1/CallRequest';
import type { ToolSpec__Output } from '../../bridge/generated/snakepit/bridge/v1/ToolSpec';
import type { WorkerMessage__Output } from '../../bridge/generated/snakepit/bridge/v1/WorkerMessage';
import type { CallListener } from '../../bridge/worker-channel';
import { SnakepitError } from '../../errors/snakepit-error';
import type { WorkerCrashReason } from '../../telemetry/telemetry-events';
import type { WorkerInfo, WorkerState } from '../../worker/worker';
import type { PoolWorker, WorkerExitListener, WorkerLauncher } from '../pool-worker';
import type { Prng } from './prng';

/** What the simulation checks and injects through its workers. */
export interface SimWorld {
  readonly prng: Prng;
  /** A broken rule, with what led to it. */
  violation(message: string): void;
  /** The call (by its `sim-id` metadata) left the host for `worker`. */
  delivered(simId: string, worker: SimWorker): void;
  /** Extra slots a worker may hold beyond its capacity (pipelineDepth). */
  readonly pipelineDepth: number;
}

interface SimCall {
  id: number;
  simId: string;
  request: CallRequest;
  listener: CallListener;
  delivered: boolean;
  /** The terminal message (or the break) was given: nothing more may reach the listener. */
  finished: boolean;
}

const TOOL: ToolSpec__Output = { name: 'work', description: '', parameters: [], streaming: true, idempotent: false };

/**
 * A worker on the virtual clock: calls take random times, stream random
 * chunks, fail or hang; the simulation crashes it, breaks its stream or
 * freezes it. It follows the seam's contract (no synchronous callbacks, one
 * terminal per call, a slot held until the terminal) and checks the pool's
 * side of it (never over capacity, never a call after it stopped serving).
 */
export class SimWorker implements PoolWorker {
  state: WorkerState = 'ready';
  readonly startedAt = Date.now();
  readonly capacity: number;
  busy = 0;
  requestsServed = 0;
  readonly tools = [TOOL];
  readonly toolNames = new Set([TOOL.name]);
  crashReason?: WorkerCrashReason;
  frozen = false;
  /** Stream credit the pool returned (the simulated tools stream a few chunks and never wait for it). */
  creditedChunks = 0;
  private connected = true;
  private nextId = 1;
  private readonly calls = new Map<number, SimCall>();
  private idleWaiters: Array<() => void> = [];
  private exited = false;

  constructor(
    readonly id: string,
    readonly pid: number,
    capacity: number,
    private readonly world: SimWorld,
    private readonly onExit: WorkerExitListener,
  ) {
    this.capacity = capacity;
  }

  get isServing(): boolean {
    return this.state === 'ready' && this.connected;
  }

  get live(): boolean {
    return !this.exited;
  }

  dispatch(request: CallRequest, listener: CallListener): number | undefined {
    if (!this.isServing) return undefined;
    if (this.busy >= this.capacity + this.world.pipelineDepth) this.world.violation(`${this.id} got a call with ${this.busy} of ${this.capacity} slots busy`);
    const call: SimCall = { id: this.nextId++, simId: request.metadata?.['sim-id'] ?? '?', request, listener, delivered: false, finished: false };
    this.calls.set(call.id, call);
    this.busy++;
    // The outbox flushes at the end of the tick; a break before that means the call never left.
    setTimeout(() => {
      if (call.finished || !this.connected) return;
      call.delivered = true;
      this.world.delivered(call.simId, this);
      this.runCall(call);
    }, 0);
    return call.id;
  }

  cancel(requestId: number, reason: string): void {
    const call = this.calls.get(requestId);
    if (!call || this.frozen) return;
    // Confirmation comes once the tool has really stopped.
    setTimeout(() => this.finish(call, { kind: 'cancelled', cancelled: { reason } }), this.world.prng.int(0, 30));
  }

  credit(_requestId: number, chunks: number): void {
    this.creditedChunks += chunks;
  }

  drain(): void {
    if (this.state === 'ready') this.state = 'draining';
  }

  kill(reason: WorkerCrashReason): void {
    this.crashReason ??= reason;
    setTimeout(() => this.crash(this.world.prng.chance(0.5)), 0);
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    this.state = 'stopping';
    this.breakStream(new SnakepitError('WORKER_UNAVAILABLE', `worker ${this.id} is stopping`));
    await new Promise((resolve) => setTimeout(resolve, 1));
    this.exit(true);
  }

  whenIdle(): Promise<void> {
    if (this.busy === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  checkHealth(): Promise<string> {
    return Promise.resolve(this.frozen ? 'UNKNOWN' : 'SERVING');
  }

  info(): WorkerInfo {
    return {
      id: this.id,
      pid: this.pid,
      state: this.state,
      busy: this.busy,
      capacity: this.capacity,
      requestsServed: this.requestsServed,
      uptimeMs: Date.now() - this.startedAt,
      sharedMemoryBytes: 0,
    };
  }

  /** The process dies: its stream breaks and its exit is reported, in either order (both happen for real). */
  crash(exitFirst: boolean): void {
    if (this.exited) return;
    const error = new SnakepitError('WORKER_CRASHED', `worker ${this.id} died`);
    if (exitFirst) {
      this.exit(false);
      this.breakStream(error);
    } else {
      this.breakStream(error);
      setTimeout(() => this.exit(false), this.world.prng.int(0, 20));
    }
  }

  /** The stream breaks but the process lingers; like the real Worker, it is killed after a grace. */
  loseStream(): void {
    if (this.exited || !this.connected) return;
    this.breakStream(new SnakepitError('WORKER_CRASHED', `worker ${this.id}: stream broke`));
    setTimeout(() => this.kill('stream_broken'), 1_000);
  }

  private runCall(call: SimCall): void {
    const { prng } = this.world;
    const outcome = prng.weighted({ result: 70, error: 15, hang: 5, stream: 10 });
    const durationMs = prng.int(0, prng.chance(0.1) ? 3_000 : 100);
    if (outcome === 'hang') return;
    if (outcome === 'stream' && call.request.stream) {
      const chunks = prng.int(1, 4);
      for (let seq = 1; seq <= chunks; seq++) {
        setTimeout(
          () => this.send(call, { kind: 'chunk', chunk: { seq, value: { json: Buffer.from(JSON.stringify(seq)), blobs: [], body: 'json' } } }),
          (durationMs * seq) / (chunks + 1),
        );
      }
    }
    setTimeout(() => {
      if (outcome === 'error') {
        this.finish(call, {
          kind: 'error',
          error: { error: { code: 'PYTHON_EXCEPTION', message: 'tool failed', python: null, detailsJson: Buffer.alloc(0) }, session: null },
        });
      } else {
        this.finish(call, { kind: 'result', result: { value: call.request.args as Payload__Output, session: null } });
      }
    }, durationMs);
  }

  private send(call: SimCall, message: Partial<WorkerMessage__Output>): void {
    if (call.finished || this.frozen || !this.connected) return;
    call.listener.chunk({ id: call.id, ...message });
  }

  private finish(call: SimCall, message: Partial<WorkerMessage__Output>): void {
    if (call.finished || this.frozen || !this.connected) return;
    call.finished = true;
    this.calls.delete(call.id);
    this.release();
    this.requestsServed++;
    call.listener.end({ id: call.id, ...message });
  }

  private breakStream(error: SnakepitError): void {
    if (!this.connected) return;
    // Unusable first, as the real channel does, then every call in flight hears of it.
    this.connected = false;
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const call of calls) {
      call.finished = true;
      this.release();
      call.listener.broken(error, call.delivered);
    }
  }

  private release(): void {
    this.busy--;
    if (this.busy < 0) this.world.violation(`${this.id} released more slots than it gave`);
    if (this.busy === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  private exit(expected: boolean): void {
    if (this.exited) return;
    this.exited = true;
    const wasStopping = this.state === 'stopping';
    this.state = expected || wasStopping ? 'stopped' : 'crashed';
    this.breakStream(new SnakepitError(expected ? 'WORKER_UNAVAILABLE' : 'WORKER_CRASHED', `worker ${this.id} exited`));
    this.onExit(this, { code: expected ? 0 : null, signal: expected ? null : 'SIGKILL' }, expected || wasStopping);
  }
}

/** Starts SimWorkers after a random delay; the simulation makes starts fail or hang for a while. */
export class SimLauncher implements WorkerLauncher {
  readonly workers: SimWorker[] = [];
  /** Starts still to fail on purpose. */
  failNext = 0;
  /** Upper bound of a start's duration. */
  maxStartMs = 200;
  private pid = 1000;

  constructor(
    private readonly world: SimWorld,
    private readonly capacity: number,
  ) {}

  launch(workerId: string, onExit: WorkerExitListener): Promise<PoolWorker> {
    const { prng } = this.world;
    const fail = this.failNext > 0;
    if (fail) this.failNext--;
    const delayMs = prng.int(1, this.maxStartMs);
    return new Promise((resolve, reject) => {
      setTimeout(() => {
        if (fail) {
          reject(new SnakepitError('WORKER_UNAVAILABLE', `worker ${workerId} failed to start (simulated)`));
          return;
        }
        const worker = new SimWorker(workerId, ++this.pid, this.capacity, this.world, onExit);
        this.workers.push(worker);
        resolve(worker);
      }, delayMs);
    });
  }

  live(): SimWorker[] {
    return this.workers.filter((worker) => worker.live);
  }
}

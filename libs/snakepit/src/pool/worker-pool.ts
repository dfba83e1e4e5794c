import type { Logger } from '@nestjs/common';
import type { ToolSpec__Output } from '../bridge/generated/snakepit/bridge/v1/ToolSpec';
import { SnakepitError } from '../errors/snakepit-error';
import type { WorkerHealthCheck } from '../health/workers.health';
import type { ResolvedPoolOptions } from '../options/resolve-options';
import type { TelemetryService } from '../telemetry/telemetry.service';
import { callSize, type CallSize } from '../bridge/frame-size';
import { PoolBreaker } from './pool-breaker';
import type { PoolCall, PoolCallOutcome, PoolInfo } from './pool.interfaces';
import type { PoolWorker, WorkerLauncher } from './pool-worker';
import { Recycler, type RssSampler } from './recycler';
import { Scheduler } from './scheduler';
import { Supervisor } from './supervisor';

export type { PoolCall, PoolCallOutcome, PoolInfo } from './pool.interfaces';

/** What a pool is built from; the launcher and the RSS sampler are the seams the simulation suite replaces. */
export interface WorkerPoolDeps {
  config: ResolvedPoolOptions;
  launcher: WorkerLauncher;
  telemetry: TelemetryService;
  logger: Logger;
  sampleRss: RssSampler;
  stopGraceMs: number;
}

/**
 * One named pool, composed of pieces that each own one job and only look
 * down: the scheduler (admission, queue, dispatch), one CallRun per call
 * (its timer, abort listener and slot), the supervisor (spawn, crash,
 * backoff, crash loop, reconcile to size), the recycler (TTL, requests,
 * memory, rolling restarts) and the circuit breaker around admission.
 */
export class WorkerPool {
  readonly config: ResolvedPoolOptions;
  private readonly supervisor: Supervisor;
  private readonly scheduler: Scheduler;
  private readonly recycler: Recycler;
  private readonly breaker: PoolBreaker;
  private readonly telemetry: TelemetryService;
  private readonly stopGraceMs: number;
  private closing = false;

  constructor(deps: WorkerPoolDeps) {
    const { config, telemetry, logger } = deps;
    this.config = config;
    this.supervisor = new Supervisor(config, deps.launcher, telemetry, logger, {
      workerReady: () => {
        this.recycler.workerReady();
        this.scheduler.pump();
      },
      workerGone: (worker) => this.recycler.workerGone(worker),
    });
    this.scheduler = new Scheduler(config, telemetry, logger, {
      serving: () => this.supervisor.serving(),
      byId: (workerId) => this.supervisor.byId(workerId),
      checkedIn: (worker) => {
        this.supervisor.noteServed();
        this.recycler.checkedIn(worker);
      },
    });
    this.recycler = new Recycler(config, this.supervisor, telemetry, logger, deps.sampleRss, deps.stopGraceMs);
    this.breaker = new PoolBreaker(config, telemetry, logger);
    this.telemetry = telemetry;
    this.stopGraceMs = deps.stopGraceMs;
  }

  get name(): string {
    return this.config.name;
  }

  /** Starts every worker (bounded concurrency); resolves when they answered. Fails only if none could start. */
  async start(): Promise<void> {
    const started = Date.now();
    await this.supervisor.start();
    this.recycler.start();
    this.telemetry.emit('pool.ready', { pool: this.name, workers: this.supervisor.all().length, durationMs: Date.now() - started });
  }

  /** Runs one call through the circuit breaker: on a free slot now, or after waiting in the queue. */
  run(call: PoolCall): Promise<PoolCallOutcome> {
    if (this.closing) return Promise.reject(new SnakepitError('SHUTTING_DOWN', `Pool ${this.name} is shutting down`, { details: { pool: this.name } }));
    const size = callSize(call);
    if (size.total > this.config.maxPayloadBytes) return Promise.reject(tooLarge(call, size, this.config.maxPayloadBytes));
    return this.breaker.execute(() => this.admit(call));
  }

  private admit(call: PoolCall): Promise<PoolCallOutcome> {
    if (this.supervisor.crashLooping && this.supervisor.serving().next().done) {
      // Waiting in the queue would only end in a timeout: say why at once.
      return Promise.reject(
        new SnakepitError('WORKER_UNAVAILABLE', `Pool ${this.name} has no ready worker: it is crash-looping`, {
          details: { pool: this.name, crashLooping: true },
        }),
      );
    }
    return this.scheduler.submit(call);
  }

  tools(): ToolSpec__Output[] {
    return this.describedWorker()?.tools ?? [];
  }

  /** Whether the workers offer `tool`; undefined while no worker is ready to say. */
  offers(tool: string): boolean | undefined {
    return this.describedWorker()?.toolNames.has(tool);
  }

  private describedWorker(): PoolWorker | undefined {
    return this.supervisor.all().find((worker) => worker.state === 'ready');
  }

  info(): PoolInfo {
    const workers = this.supervisor.all();
    const ready = workers.filter((w) => w.isServing);
    return {
      name: this.name,
      size: this.config.size,
      ready: ready.length,
      available: ready.reduce((sum, w) => sum + Math.max(0, w.capacity - w.busy), 0),
      busy: workers.filter((w) => w.busy > 0).length,
      queueDepth: this.scheduler.queueDepth,
      starting: this.supervisor.startingCount,
      crashLooping: this.supervisor.crashLooping,
      circuit: this.breaker.state,
      workers: workers.map((w) => w.info()),
    };
  }

  /** Stops intake; queued and running calls go on. Resolves when idle or at the deadline. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.closing = true;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.scheduler.queueDepth === 0 && this.supervisor.all().every((w) => w.busy === 0)) return true;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return false;
  }

  /** Fails whatever still waits, then stops every worker (TERM, then KILL of the group). */
  async stop(): Promise<void> {
    this.closing = true;
    this.recycler.stop();
    this.scheduler.close(`Pool ${this.name} stopped before the call could run`);
    await this.supervisor.stop(this.stopGraceMs);
  }

  /** Every live worker's answer to a grpc.health.v1 check (for readiness probes). */
  checkWorkerHealth(timeoutMs: number): Promise<WorkerHealthCheck[]> {
    return Promise.all(
      this.supervisor.all().map((worker) => {
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
    const worker = this.supervisor.byId(workerId);
    if (!worker) {
      return Promise.reject(
        new SnakepitError('WORKER_UNAVAILABLE', `Pool ${this.name} has no worker ${JSON.stringify(workerId)}`, {
          details: { pool: this.name, workerId, workers: this.supervisor.all().map((w) => w.id) },
        }),
      );
    }
    return this.recycler.recycle(worker, 'manual');
  }

  recycleAll(): Promise<number> {
    return this.recycler.recycleAll();
  }

  rollingRestart(): Promise<number> {
    return this.recycler.rollingRestart();
  }
}

function tooLarge(call: PoolCall, size: CallSize, maxPayloadBytes: number): SnakepitError {
  return new SnakepitError(
    'PAYLOAD_TOO_LARGE',
    `Call to ${call.tool} is ${size.total} bytes (arguments ${size.args}, session ${size.session}, metadata ${size.metadata}); the pool's maxPayloadBytes is ${maxPayloadBytes}`,
    {
      details: {
        tool: call.tool,
        bytes: size.total,
        argsBytes: size.args,
        sessionBytes: size.session,
        metadataBytes: size.metadata,
        maxBytes: maxPayloadBytes,
        option: 'maxPayloadBytes',
      },
    },
  );
}

import type { Logger } from '@nestjs/common';
import { SnakepitError, toSnakepitError } from '../errors/snakepit-error';
import type { ResolvedPoolOptions } from '../options/resolve-options';
import type { TelemetryService } from '../telemetry/telemetry.service';
import type { ProcessExit } from '../worker/worker-process';
import type { PoolWorker, WorkerLauncher } from './pool-worker';

/** A worker that answered a call, or lived this long, was healthy: its death is not a start problem. */
export const STABLE_UPTIME_MS = 10_000;

/** What the supervisor tells the rest of the pool. */
export interface SupervisorEvents {
  /** A new worker is ready: queued calls can run, a recycle can go on. */
  workerReady(worker: PoolWorker): void;
  /** A worker left the pool (crash, stop); its in-flight calls were already told by its channel. */
  workerGone(worker: PoolWorker): void;
}

/**
 * Keeps the pool at its size: starts workers, notices their deaths and
 * reconciles — whenever active + starting < size, it tops up. Restarts back
 * off exponentially only after failed starts and deaths soon after start; a
 * healthy worker that served calls and was then killed is replaced at once.
 * Enough start failures in the window make the pool crash-looping: one try per
 * cooldown, so a broken adapter cannot spin the CPU.
 */
export class Supervisor {
  private readonly workers = new Map<string, PoolWorker>();
  /** Workers being recycled: still serving or draining, no longer counted in the size. */
  private readonly retiring = new Set<string>();
  private readonly launches = new Set<Promise<void>>();
  private starting = 0;
  private workerSeq = 0;
  private closing = false;
  private restartTimer?: NodeJS.Timeout;
  /** Failed starts and early deaths since the last healthy start. */
  private consecutiveFailures = 0;
  private lastFailureAt = 0;
  /** Times of recent failed starts and early deaths, for crash-loop detection. */
  private failureTimes: number[] = [];
  private looping = false;

  constructor(
    private readonly config: ResolvedPoolOptions,
    private readonly launcher: WorkerLauncher,
    private readonly telemetry: TelemetryService,
    private readonly logger: Logger,
    private readonly events: SupervisorEvents,
  ) {}

  get name(): string {
    return this.config.name;
  }

  get crashLooping(): boolean {
    return this.looping;
  }

  get startingCount(): number {
    return this.starting;
  }

  all(): PoolWorker[] {
    return [...this.workers.values()];
  }

  byId(workerId: string): PoolWorker | undefined {
    return this.workers.get(workerId);
  }

  *serving(): Generator<PoolWorker, void, undefined> {
    for (const worker of this.workers.values()) if (worker.isServing) yield worker;
  }

  /** Workers that count towards the size and are ready (not being recycled). */
  active(): PoolWorker[] {
    return this.all().filter((worker) => worker.state === 'ready' && !this.retiring.has(worker.id));
  }

  isRetiring(worker: PoolWorker): boolean {
    return this.retiring.has(worker.id);
  }

  /** Starts `size` workers (bounded concurrency); fails only if none could start. */
  async start(): Promise<void> {
    const errors: SnakepitError[] = [];
    let next = 0;
    const lane = async () => {
      while (next < this.config.size) {
        next++;
        const error = await this.launch();
        if (error) errors.push(error);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.config.startConcurrency, this.config.size) }, lane));
    if (this.workers.size === 0) throw errors[0] ?? new SnakepitError('WORKER_UNAVAILABLE', `Pool ${this.name} started no worker`);
    this.reconcile();
  }

  /** Takes `worker` out of the count so that a replacement starts; it keeps serving until the recycler drains it. */
  retire(worker: PoolWorker): void {
    this.retiring.add(worker.id);
    this.reconcile();
  }

  /** Tops the pool up to its size, now or when the backoff allows. */
  reconcile(): void {
    if (this.closing || this.restartTimer) return;
    const counted = this.workers.size - this.retiring.size + this.starting;
    const deficit = this.config.size - counted;
    if (deficit <= 0) return;
    const waitMs = this.lastFailureAt + this.backoffMs() - Date.now();
    if (waitMs > 0 || this.starting >= this.parallelStarts()) {
      if (waitMs > 0) this.telemetry.emit('worker.restart_scheduled', { pool: this.name, delayMs: waitMs, consecutiveFailures: this.consecutiveFailures });
      // A start in flight reconciles when it ends; only a backoff needs a timer.
      if (waitMs > 0) {
        this.restartTimer = setTimeout(() => {
          this.restartTimer = undefined;
          this.reconcile();
        }, waitMs);
      }
      return;
    }
    const launches = Math.min(deficit, this.parallelStarts() - this.starting);
    for (let i = 0; i < launches; i++) void this.launch();
  }

  /** Stops every worker (TERM, then KILL of the group), and any that is still starting once it is up. */
  async stop(graceMs: number): Promise<void> {
    this.closing = true;
    clearTimeout(this.restartTimer);
    await Promise.allSettled([...this.launches]);
    await Promise.all(
      this.all().map(async (worker) => {
        this.telemetry.emit('worker.stop', { pool: this.name, workerId: worker.id, pid: worker.pid, reason: 'shutdown' });
        await worker.stop(graceMs);
      }),
    );
    this.workers.clear();
    this.retiring.clear();
  }

  /** While crash-looping only one start at a time, else startConcurrency. */
  private parallelStarts(): number {
    return this.looping ? 1 : this.config.startConcurrency;
  }

  private backoffMs(): number {
    if (this.consecutiveFailures === 0) return 0;
    if (this.looping) return this.config.crashLoopCooldownMs;
    return Math.min(this.config.restartBackoffMs * 2 ** (this.consecutiveFailures - 1), this.config.maxRestartBackoffMs);
  }

  /** Starts one worker and reconciles once it is up or failed; resolves with the error when it failed. */
  private launch(): Promise<SnakepitError | undefined> {
    const attempt = this.startOne();
    const tracked = attempt.then(() => {
      this.launches.delete(tracked);
      this.reconcile();
    });
    this.launches.add(tracked);
    return attempt;
  }

  private async startOne(): Promise<SnakepitError | undefined> {
    const workerId = `${this.name}-${++this.workerSeq}`;
    const startedAt = Date.now();
    this.starting++;
    let worker: PoolWorker;
    try {
      worker = await this.launcher.launch(workerId, (w, exit, expected) => this.onExit(w, exit, expected));
    } catch (thrown) {
      this.starting--;
      return this.startFailed(workerId, toSnakepitError(thrown));
    }
    this.starting--;
    if (this.closing) {
      await worker.stop(this.config.cancelGraceMs);
      return new SnakepitError('SHUTTING_DOWN', `Pool ${this.name} is shutting down`);
    }
    // It may have died between answering and now, and its exit went unheard.
    if (worker.state !== 'ready') return this.startFailed(workerId, new SnakepitError('WORKER_CRASHED', `Worker ${workerId} exited right after it started`));
    this.workers.set(workerId, worker);
    if (this.looping) {
      this.looping = false;
      this.failureTimes = [];
      this.logger.log({ msg: 'pool recovered from its crash loop', pool: this.name, worker_id: workerId });
      this.telemetry.emit('pool.crash_loop_cleared', { pool: this.name });
    }
    this.telemetry.emit('worker.ready', { pool: this.name, workerId, pid: worker.pid, startMs: Date.now() - startedAt });
    this.logger.debug?.({ msg: 'worker ready', pool: this.name, worker_id: workerId, pid: worker.pid, start_ms: Date.now() - startedAt });
    this.events.workerReady(worker);
    return undefined;
  }

  private startFailed(workerId: string, error: SnakepitError): SnakepitError {
    this.telemetry.emit('worker.start_failed', { pool: this.name, workerId, reason: error.message });
    if (!this.closing) {
      this.logger.error({
        msg: 'worker failed to start; retrying after a backoff',
        pool: this.name,
        worker_id: workerId,
        error: error.message,
        details: error.details,
      });
      this.recordFailure();
    }
    return error;
  }

  /** A worker served a call: the pool is healthy, so the next restart needs no backoff. */
  noteServed(): void {
    this.consecutiveFailures = 0;
  }

  private onExit(worker: PoolWorker, exit: ProcessExit, expected: boolean): void {
    if (!this.workers.delete(worker.id)) return;
    const wasRetiring = this.retiring.delete(worker.id);
    this.events.workerGone(worker);
    if (this.closing) return;
    if (!expected) {
      const uptimeMs = Date.now() - worker.startedAt;
      const healthy = uptimeMs >= STABLE_UPTIME_MS || worker.requestsServed > 0;
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
        msg: healthy ? 'worker died; replacing it' : 'worker died soon after it started; replacing it after a backoff',
        pool: this.name,
        worker_id: worker.id,
        pid: worker.pid,
        reason,
        exit_code: exit.code,
        signal: exit.signal,
        uptime_ms: uptimeMs,
        requests_served: worker.requestsServed,
        recycling: wasRetiring || undefined,
      });
      if (healthy) this.consecutiveFailures = 0;
      else this.recordFailure();
    }
    this.reconcile();
  }

  /** Counts a failed start or early death; enough of them within the window make the pool crash-looping. */
  private recordFailure(): void {
    const now = Date.now();
    this.consecutiveFailures++;
    this.lastFailureAt = now;
    this.failureTimes = this.failureTimes.filter((time) => now - time < this.config.crashLoopWindowMs);
    this.failureTimes.push(now);
    if (!this.looping && this.failureTimes.length >= this.config.crashLoopThreshold) {
      this.looping = true;
      this.logger.error({
        msg: 'pool is crash-looping: restarts slow to one per cooldown',
        pool: this.name,
        failures: this.failureTimes.length,
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
}

import type { Logger } from '@nestjs/common';
import { MAX_TIMER_MS, type ResolvedPoolOptions } from '../options/resolve-options';
import type { WorkerRecycleReason } from '../telemetry/telemetry-events';
import type { TelemetryService } from '../telemetry/telemetry.service';
import type { PoolWorker } from './pool-worker';
import type { Supervisor } from './supervisor';

/** Resident memory of each pid's process group, in bytes (sampled by the lifecycle check). */
export type RssSampler = (pids: number[]) => Map<number, number>;

interface Retiree {
  worker: PoolWorker;
  reason: WorkerRecycleReason;
  /** Resolves when a replacement is ready (true) or the retiree died first (false). */
  replaced: (ready: boolean) => void;
}

/**
 * Replaces workers on purpose without failing a call: TTL, request count,
 * memory, on demand and rolling restarts. A recycled worker leaves the
 * supervisor's count, so the supervisor starts its replacement (with its own
 * backoff if that fails); the old worker serves until the replacement is
 * ready, then drains and stops. A worker over its request or memory limit
 * stops taking calls at once instead.
 */
export class Recycler {
  private readonly awaiting: Retiree[] = [];
  private lifecycleTimer?: NodeJS.Timeout;
  private closing = false;

  constructor(
    private readonly config: ResolvedPoolOptions,
    private readonly supervisor: Supervisor,
    private readonly telemetry: TelemetryService,
    private readonly logger: Logger,
    private readonly sampleRss: RssSampler,
    private readonly stopGraceMs: number,
  ) {}

  private get name(): string {
    return this.config.name;
  }

  /** Samples TTL and memory on an interval. */
  start(): void {
    this.lifecycleTimer = setInterval(() => this.checkLifecycle(), this.config.lifecycleCheckIntervalMs);
    this.lifecycleTimer.unref();
  }

  stop(): void {
    this.closing = true;
    clearInterval(this.lifecycleTimer);
    for (const retiree of this.awaiting.splice(0)) retiree.replaced(false);
  }

  /**
   * Replaces `worker`; resolves true once it is gone, false when it could not
   * be recycled now (not ready, already being recycled, pool closing).
   */
  async recycle(worker: PoolWorker, reason: WorkerRecycleReason): Promise<boolean> {
    if (this.closing || worker.state !== 'ready' || this.supervisor.isRetiring(worker)) return false;
    const overLimit = reason === 'max_requests' || reason === 'memory';
    if (overLimit) worker.drain();
    const replaced = new Promise<boolean>((resolve) => this.awaiting.push({ worker, reason, replaced: resolve }));
    this.supervisor.retire(worker);
    if (!(await replaced)) return !this.supervisor.byId(worker.id);
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
    const drainMs = Math.min(this.config.maxTimeoutMs + this.config.cancelGraceMs, MAX_TIMER_MS);
    let drainTimer: NodeJS.Timeout | undefined;
    await Promise.race([worker.whenIdle(), new Promise((resolve) => (drainTimer = setTimeout(resolve, drainMs)))]);
    clearTimeout(drainTimer);
    this.telemetry.emit('worker.stop', { pool: this.name, workerId: worker.id, pid: worker.pid, reason: `recycled: ${reason}` });
    await worker.stop(this.stopGraceMs);
    return true;
  }

  /** A worker became ready: it replaces the longest-waiting retiree. */
  workerReady(): void {
    this.awaiting.shift()?.replaced(true);
  }

  /** A retiree that died before its replacement came needs no more waiting. */
  workerGone(worker: PoolWorker): void {
    const index = this.awaiting.findIndex((retiree) => retiree.worker === worker);
    if (index >= 0) this.awaiting.splice(index, 1)[0].replaced(false);
  }

  /** Request-count recycling, checked as each call ends. */
  checkedIn(worker: PoolWorker): void {
    const { maxRequestsPerWorker } = this.config;
    if (maxRequestsPerWorker > 0 && worker.requestsServed >= maxRequestsPerWorker) void this.recycle(worker, 'max_requests');
  }

  /** Recycles every ready worker at once (a recycle storm is safe: each old worker drains first). */
  async recycleAll(): Promise<number> {
    const results = await Promise.all(this.supervisor.active().map((worker) => this.recycle(worker, 'manual')));
    return results.filter(Boolean).length;
  }

  /** Replaces every worker one by one, each only after its replacement serves (code upgrades). */
  async rollingRestart(): Promise<number> {
    let replaced = 0;
    for (const worker of this.supervisor.active()) {
      if (await this.recycle(worker, 'rolling_restart')) replaced++;
    }
    return replaced;
  }

  private checkLifecycle(): void {
    if (this.closing) return;
    const workers = this.supervisor.active();
    const { workerTtlMs, memoryThresholdMb } = this.config;
    const rss = this.sampleRss(workers.map((worker) => worker.pid));
    for (const worker of workers) {
      const rssBytes = rss.get(worker.pid);
      if (rssBytes !== undefined) this.telemetry.emit('worker.memory', { pool: this.name, workerId: worker.id, pid: worker.pid, rssBytes });
      if (workerTtlMs > 0 && Date.now() - worker.startedAt >= workerTtlMs) {
        void this.recycle(worker, 'ttl');
      } else if (memoryThresholdMb > 0 && rssBytes !== undefined && rssBytes > memoryThresholdMb * 1024 * 1024) {
        this.logger.warn({
          msg: 'worker above its memory threshold; recycling it',
          pool: this.name,
          worker_id: worker.id,
          pid: worker.pid,
          rss_bytes: rssBytes,
        });
        void this.recycle(worker, 'memory');
      }
    }
  }
}

import type { Logger } from '@nestjs/common';
import { SnakepitError } from '../errors/snakepit-error';
import type { ResolvedPoolOptions } from '../options/resolve-options';
import type { TelemetryService } from '../telemetry/telemetry.service';
import { CallQueue } from './call-queue';
import { CallRun, type CallRunHost } from './call-run';
import type { PoolCall, PoolCallOutcome } from './pool.interfaces';
import type { PoolWorker } from './pool-worker';

/** The workers a scheduler may hand calls to, and who hears that a call ended. */
export interface SchedulerWorkers {
  /** Workers that are ready and connected, in no particular order. */
  serving(): Iterable<PoolWorker>;
  byId(workerId: string): PoolWorker | undefined;
  /** A call ended on `worker` (request-count recycling looks here). */
  checkedIn(worker: PoolWorker): void;
}

/**
 * Admission and queueing: a call goes to a free slot at once, or waits in a
 * bounded FIFO (lanes) until one frees. Handing out slots is never
 * re-entrant: a slot freed while slots are being handed out is picked up by
 * the same loop, so no callback chain (free → dispatch → broken → free) can
 * grow the stack.
 */
export class Scheduler implements CallRunHost {
  private readonly queue: CallQueue<CallRun>;
  private pumping = false;
  private pumpAgain = false;
  private closed = false;

  constructor(
    readonly config: ResolvedPoolOptions,
    readonly telemetry: TelemetryService,
    readonly logger: Logger,
    private readonly workers: SchedulerWorkers,
  ) {
    this.queue = new CallQueue(config.maxQueueSize);
  }

  get queueDepth(): number {
    return this.queue.size;
  }

  /** Runs `call` on a free slot now, or after waiting in the queue; settles exactly once. */
  submit(call: PoolCall): Promise<PoolCallOutcome> {
    return new Promise((resolve, reject) => {
      if (call.signal?.aborted) {
        reject(new SnakepitError('CANCELLED', `The caller cancelled ${call.tool}`, { details: { pool: this.config.name, tool: call.tool } }));
        return;
      }
      const run = new CallRun(call, this, resolve, reject);
      // FIFO fairness: while anyone waits, slots go to the queue first.
      const worker = this.queue.size === 0 ? this.pick(call.preferWorkerId) : undefined;
      if (worker && run.runOn(worker)) return;
      this.enqueue(run);
    });
  }

  /** Hands freed slots to waiting calls, oldest first. */
  pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        while (this.queue.size > 0) {
          const worker = this.pick();
          if (!worker) break;
          const run = this.queue.shift()!;
          this.emitLeave(run, 'dispatched');
          if (!run.runOn(worker)) {
            // The worker lost its stream between the check and the send; the next pump retries.
            this.returnToQueue(run);
            break;
          }
        }
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }

  /** Fails every waiting call; later calls are refused by the pool. */
  close(reason: string): void {
    this.closed = true;
    for (const run of this.queue.drain()) {
      this.emitLeave(run, 'cancelled');
      run.fail(new SnakepitError('SHUTTING_DOWN', reason, { details: { pool: this.config.name } }));
    }
  }

  leaveQueue(run: CallRun, outcome: 'timeout' | 'cancelled'): void {
    if (this.queue.remove(run.ticket)) this.emitLeave(run, outcome);
  }

  /** A call whose worker's stream broke before it left the host goes back to the head of the line. */
  returnToQueue(run: CallRun): void {
    if (this.closed) {
      run.fail(new SnakepitError('SHUTTING_DOWN', `Pool ${this.config.name} stopped before the call could run`, { details: { pool: this.config.name } }));
      return;
    }
    run.waitInQueue(this.queue.push(run, 'returned')!);
    this.telemetry.emit('pool.queue_enter', { pool: this.config.name, depth: this.queue.size });
  }

  slotFreed(worker: PoolWorker): void {
    this.workers.checkedIn(worker);
    this.pump();
  }

  private enqueue(run: CallRun): void {
    const ticket = this.queue.push(run);
    if (ticket === undefined) {
      this.telemetry.emit('pool.queue_full', { pool: this.config.name, depth: this.queue.size });
      run.fail(
        new SnakepitError('QUEUE_FULL', `Pool ${this.config.name}: every worker is busy and ${this.queue.size} calls already wait`, {
          details: { pool: this.config.name, maxQueueSize: this.config.maxQueueSize },
        }),
      );
      return;
    }
    run.waitInQueue(ticket);
    this.telemetry.emit('pool.queue_enter', { pool: this.config.name, depth: this.queue.size });
  }

  private emitLeave(run: CallRun, outcome: 'dispatched' | 'timeout' | 'cancelled'): void {
    this.telemetry.emit('pool.queue_leave', { pool: this.config.name, depth: this.queue.size, waitMs: Date.now() - run.queuedAt, outcome });
  }

  /**
   * The worker for the next call: the session's worker if it has a free slot,
   * else the least busy one with a free slot. With `pipelineDepth`, once every
   * slot is taken a call may still go to the least busy worker, to wait in that
   * worker's own queue: calls then share gRPC messages instead of crossing one
   * at a time, at the price of waiting behind that worker's current call.
   */
  private pick(preferWorkerId?: string): PoolWorker | undefined {
    if (preferWorkerId) {
      const preferred = this.workers.byId(preferWorkerId);
      if (preferred?.isServing && preferred.busy < preferred.capacity) return preferred;
    }
    let best: PoolWorker | undefined;
    for (const worker of this.workers.serving()) {
      if (!best || worker.busy < best.busy) best = worker;
    }
    if (!best) return undefined;
    return best.busy < best.capacity + this.config.pipelineDepth ? best : undefined;
  }
}

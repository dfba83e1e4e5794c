import type { Logger } from '@nestjs/common';
import type { WorkerMessage__Output } from '../bridge/generated/snakepit/bridge/v1/WorkerMessage';
import { errorFromWorker } from '../bridge/error-info';
import { decodePayload } from '../bridge/payload';
import type { CallListener } from '../bridge/worker-channel';
import { SnakepitError, toSnakepitError } from '../errors/snakepit-error';
import type { ResolvedPoolOptions } from '../options/resolve-options';
import type { TelemetryService } from '../telemetry/telemetry.service';
import type { PoolCall, PoolCallOutcome } from './pool.interfaces';
import type { PoolWorker } from './pool-worker';

/** What a call needs from its pool: the options, telemetry, and where to go when its place changes. */
export interface CallRunHost {
  readonly config: ResolvedPoolOptions;
  readonly telemetry: TelemetryService;
  readonly logger: Logger;
  /** The call gives up its place in the queue (timeout, cancel). */
  leaveQueue(run: CallRun, outcome: 'timeout' | 'cancelled'): void;
  /** The call was handed to a worker whose stream broke before the call left the host: it queues again, first in line. */
  returnToQueue(run: CallRun): void;
  /** The worker confirmed the call ended (or its stream broke): the slot is free. */
  slotFreed(worker: PoolWorker): void;
}

/**
 * Where a call is: waiting for a slot, holding one on a worker, or done.
 * `settled` (the caller has its answer) is separate: a call abandoned by its
 * caller (timeout, cancel) keeps its slot until the worker confirms it stopped.
 */
export type CallPhase = 'queued' | 'running' | 'done';

/**
 * One call's state machine: queued → running → done, with exactly one
 * settlement. It alone owns the call's timer (queue wait, then the deadline),
 * its abort listener, its slot and the cancel-confirmation grace, so no
 * outcome can be reported twice and no result can follow a timeout or cancel.
 */
export class CallRun {
  phase: CallPhase = 'queued';
  /** The queue's ticket while queued. */
  ticket = 0;
  readonly deadline: number;
  /** When it last entered the queue. */
  queuedAt: number;
  private settled = false;
  private timer?: NodeJS.Timeout;
  private graceTimer?: NodeJS.Timeout;
  private worker?: PoolWorker;
  private requestId = 0;
  /** Error details and logs of this call; the worker's identity joins once it runs. */
  private readonly context: Record<string, unknown>;

  constructor(
    readonly call: PoolCall,
    private readonly host: CallRunHost,
    private readonly resolve: (outcome: PoolCallOutcome) => void,
    private readonly reject: (error: SnakepitError) => void,
  ) {
    this.queuedAt = Date.now();
    this.deadline = this.queuedAt + call.timeoutMs;
    this.context = { pool: host.config.name, tool: call.tool, sessionId: call.sessionId };
    call.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  private get budgetMs(): number {
    return this.call.budgetMs ?? this.call.timeoutMs;
  }

  get isSettled(): boolean {
    return this.settled;
  }

  /** Called once it holds its queue ticket: the wait is bounded by the queue timeout and the budget. */
  waitInQueue(ticket: number): void {
    this.phase = 'queued';
    this.ticket = ticket;
    this.queuedAt = Date.now();
    const budget = this.deadline - this.queuedAt;
    const { queueTimeoutMs } = this.host.config;
    this.arm(Math.min(queueTimeoutMs, budget), () => this.queueTimedOut(queueTimeoutMs < budget));
  }

  /** Sends the call to `worker`; false when the worker could take no call (the call stays where it was). */
  runOn(worker: PoolWorker): boolean {
    const requestId = worker.dispatch(
      {
        tool: this.call.tool,
        args: this.call.args,
        timeoutMs: Math.max(1, this.deadline - Date.now()),
        sessionId: this.call.sessionId ?? '',
        session: this.call.session,
        metadata: this.call.metadata ?? {},
        stream: this.call.stream,
        hostCallDepth: this.call.hostCallDepth,
      },
      this.listenerFor(worker),
    );
    if (requestId === undefined) return false;
    this.phase = 'running';
    this.worker = worker;
    this.requestId = requestId;
    Object.assign(this.context, { workerId: worker.id, pid: worker.pid, requestId });
    this.host.telemetry.emit('pool.checkout', { pool: this.host.config.name, workerId: worker.id, tool: this.call.tool, busy: worker.busy });
    this.arm(this.deadline - Date.now(), () =>
      this.abandon(
        new SnakepitError('TIMEOUT', `Call to ${this.call.tool} timed out after ${this.budgetMs} ms`, {
          details: { ...this.context, timeoutMs: this.budgetMs, phase: 'execute' },
        }),
      ),
    );
    return true;
  }

  /** Fails a call that has not reached a worker (shutdown, admission). */
  fail(error: SnakepitError): void {
    this.phase = 'done';
    this.settle(error);
  }

  private listenerFor(worker: PoolWorker): CallListener {
    return {
      chunk: (message) => {
        if (this.settled || !message.chunk) return;
        let taken: void | Promise<void>;
        try {
          taken = this.call.onChunk?.(decodePayload(message.chunk.value), message.chunk.seq ?? 0);
        } catch (error) {
          this.abandon(toSnakepitError(error).withDetails(this.context));
          return;
        }
        // The chunk's credit goes back once the consumer took it: a slow consumer pauses the generator.
        if (!(taken instanceof Promise)) worker.credit(this.requestId, 1);
        else
          taken.then(
            () => worker.credit(this.requestId, 1),
            (error: unknown) => this.abandon(toSnakepitError(error).withDetails(this.context)),
          );
      },
      end: (message) => {
        this.released(worker);
        if (!this.settled) this.settleFromMessage(message, worker);
        this.host.slotFreed(worker);
      },
      broken: (error, delivered) => {
        this.released(worker);
        if (!this.settled) {
          // A call that never left the host keeps its place in line, and its budget.
          if (!delivered && this.deadline > Date.now()) this.host.returnToQueue(this);
          else this.settle(error.withDetails(this.context));
        }
        this.host.slotFreed(worker);
      },
    };
  }

  private released(worker: PoolWorker): void {
    this.phase = 'done';
    clearTimeout(this.graceTimer);
    this.host.telemetry.emit('pool.checkin', { pool: this.host.config.name, workerId: worker.id, tool: this.call.tool, busy: worker.busy });
  }

  private readonly onAbort = (): void => {
    const error = new SnakepitError('CANCELLED', `The caller cancelled ${this.call.tool}`, { details: { ...this.context } });
    if (this.phase === 'queued') {
      this.host.leaveQueue(this, 'cancelled');
      this.fail(error);
    } else if (this.phase === 'running') {
      this.abandon(error);
    }
  };

  private queueTimedOut(queueTimeoutFirst: boolean): void {
    this.host.leaveQueue(this, 'timeout');
    const waitedMs = Date.now() - this.queuedAt;
    const { name, queueTimeoutMs } = this.host.config;
    this.fail(
      queueTimeoutFirst
        ? new SnakepitError('QUEUE_TIMEOUT', `Pool ${name}: no worker became free within ${queueTimeoutMs} ms`, {
            details: { pool: name, queueTimeoutMs, waitedMs },
          })
        : new SnakepitError('TIMEOUT', `Call to ${this.call.tool} timed out after ${waitedMs} ms while waiting for a worker`, {
            details: { pool: name, tool: this.call.tool, timeoutMs: this.budgetMs, phase: 'queue' },
          }),
    );
  }

  /** The caller stops waiting now; the slot stays taken until the worker confirms, or the worker is killed. */
  private abandon(error: SnakepitError): void {
    if (this.settled || this.phase !== 'running') return;
    this.settle(error);
    const worker = this.worker!;
    worker.cancel(this.requestId, error.code);
    const { cancelGraceMs, name } = this.host.config;
    this.graceTimer = setTimeout(() => {
      if (this.phase !== 'running') return;
      this.host.telemetry.emit('worker.cancel_unconfirmed', { pool: name, workerId: worker.id, pid: worker.pid, graceMs: cancelGraceMs });
      this.host.logger.warn({
        msg: 'worker did not confirm a cancelled call; replacing it',
        pool: name,
        tool: this.call.tool,
        worker_id: worker.id,
        pid: worker.pid,
        session_id: this.call.sessionId,
        request_id: this.requestId,
        grace_ms: cancelGraceMs,
      });
      worker.kill('cancel_unconfirmed');
    }, cancelGraceMs);
  }

  private settleFromMessage(message: WorkerMessage__Output, worker: PoolWorker): void {
    switch (message.kind) {
      case 'result': {
        let value: unknown;
        try {
          value = decodePayload(message.result?.value);
        } catch (error) {
          // A malformed blob already says where and why; anything else is JSON that does not parse.
          this.settle(
            error instanceof SnakepitError
              ? error.withDetails(this.context)
              : new SnakepitError('SERIALIZATION_ERROR', `The result of ${this.call.tool} is not valid JSON`, { details: this.context, cause: error }),
          );
          return;
        }
        this.settle(undefined, { value, delta: message.result?.session ?? undefined, workerId: worker.id, pid: worker.pid, requestId: this.requestId });
        return;
      }
      case 'error': {
        const error = errorFromWorker(message.error?.error).withDetails(this.context);
        this.host.telemetry.emit('call.exception', {
          pool: this.host.config.name,
          tool: this.call.tool,
          workerId: worker.id,
          code: error.code,
          pythonType: error.python?.type,
        });
        this.settle(error);
        return;
      }
      default:
        this.settle(
          new SnakepitError('CANCELLED', `The worker cancelled ${this.call.tool}: ${message.cancelled?.reason || 'no reason given'}`, {
            details: this.context,
          }),
        );
    }
  }

  /** The one place a call is answered. */
  private settle(error: SnakepitError | undefined, outcome?: PoolCallOutcome): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.call.signal?.removeEventListener('abort', this.onAbort);
    if (error) this.reject(error);
    else this.resolve(outcome!);
  }

  private arm(delayMs: number, onFire: () => void): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(onFire, Math.max(0, delayMs));
  }
}

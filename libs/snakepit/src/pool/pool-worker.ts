import type { CallRequest } from '../bridge/generated/snakepit/bridge/v1/CallRequest';
import type { ToolSpec__Output } from '../bridge/generated/snakepit/bridge/v1/ToolSpec';
import type { CallListener } from '../bridge/worker-channel';
import type { WorkerCrashReason } from '../telemetry/telemetry-events';
import type { WorkerInfo, WorkerState } from '../worker/worker';
import type { ProcessExit } from '../worker/worker-process';

/**
 * The seam between the pool core and a worker: everything the scheduler,
 * supervisor and recycler need, and nothing about processes or gRPC. `Worker`
 * implements it for real Python processes; the simulation suite implements it
 * on a virtual clock to drive the core through thousands of interleavings.
 */
export interface PoolWorker {
  readonly id: string;
  readonly pid: number;
  readonly state: WorkerState;
  readonly startedAt: number;
  readonly capacity: number;
  /** Slots in use, including calls cancelled but not yet confirmed stopped. */
  readonly busy: number;
  readonly requestsServed: number;
  readonly tools: ToolSpec__Output[];
  readonly toolNames: ReadonlySet<string>;
  /** Why the host killed it, when it did (reported with its crash). */
  readonly crashReason?: WorkerCrashReason;
  /** Ready and connected: it may be given a call. */
  readonly isServing: boolean;
  /**
   * Takes a slot and sends the call; returns its request id, or undefined when
   * the worker can take no call (its stream broke): the call then never left.
   * Never calls `listener` synchronously.
   */
  dispatch(request: CallRequest, listener: CallListener): number | undefined;
  cancel(requestId: number, reason: string): void;
  /** Returns stream credit for `chunks` chunks of call `requestId` its consumer took. */
  credit(requestId: number, chunks: number): void;
  /** Takes no new calls from now on; the running ones finish. */
  drain(): void;
  kill(reason: WorkerCrashReason): void;
  stop(graceMs: number): Promise<void>;
  whenIdle(): Promise<void>;
  checkHealth(timeoutMs: number): Promise<string>;
  info(): WorkerInfo;
}

/** How a worker's end reaches its supervisor: once, with `expected` false for a crash. */
export type WorkerExitListener = (worker: PoolWorker, exit: ProcessExit, expected: boolean) => void;

/** Starts workers: resolves once the worker answered its first round trip, rejects with nothing left running. */
export interface WorkerLauncher {
  launch(workerId: string, onExit: WorkerExitListener): Promise<PoolWorker>;
}

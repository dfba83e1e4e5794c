import type { Logger } from '@nestjs/common';
import type { CallListener } from '../bridge/worker-channel';
import { WorkerChannel } from '../bridge/worker-channel';
import type { CallRequest } from '../bridge/generated/snakepit/bridge/v1/CallRequest';
import type { ToolSpec__Output } from '../bridge/generated/snakepit/bridge/v1/ToolSpec';
import { SnakepitError } from '../errors/snakepit-error';
import { WorkerProcess, type ProcessExit, type WorkerOutputLine, type WorkerProcessSpec } from './worker-process';

export type WorkerState = 'starting' | 'ready' | 'stopping' | 'stopped' | 'crashed';

export interface WorkerInfo {
  id: string;
  pid: number;
  state: WorkerState;
  busy: number;
  capacity: number;
  requestsServed: number;
  uptimeMs: number;
}

export interface WorkerStartOptions extends WorkerProcessSpec {
  pool: string;
  token: string;
  logger: Logger;
  /** Called once when the process exits; `expected` is false for a crash. */
  onExit: (worker: Worker, exit: ProcessExit, expected: boolean) => void;
}

const RECENT_OUTPUT_LINES = 20;
const PYTHON_LEVELS: Record<string, 'debug' | 'log' | 'warn' | 'error'> = {
  debug: 'debug',
  info: 'log',
  warning: 'warn',
  warn: 'warn',
  error: 'error',
  critical: 'error',
};

/**
 * One ready Python worker: its process, its data channel, the calls it is
 * running and its counters. The pool owns scheduling; a Worker only knows
 * whether it has a free slot.
 */
export class Worker {
  state: WorkerState = 'starting';
  readonly startedAt = Date.now();
  requestsServed = 0;
  /** Slots in use, including calls cancelled but not yet confirmed stopped. */
  busy = 0;
  capacity = 1;
  tools: ToolSpec__Output[] = [];
  private readonly recentOutput: string[] = [];
  private channel?: WorkerChannel;

  private constructor(
    readonly id: string,
    readonly pool: string,
    readonly process: WorkerProcess,
    private readonly logger: Logger,
  ) {}

  get pid(): number {
    return this.process.pid;
  }

  get hasFreeSlot(): boolean {
    return this.state === 'ready' && this.busy < this.capacity;
  }

  /** Spawns a worker and resolves once it answered a round trip; on failure nothing is left running. */
  static async start(options: WorkerStartOptions): Promise<Worker> {
    let worker: Worker | undefined;
    const proc = WorkerProcess.spawn(options, (line) => worker?.relayOutput(line));
    worker = new Worker(options.workerId, options.pool, proc, options.logger);
    const self = worker;
    void proc.exited.then((exit) => {
      const expected = self.state === 'stopping' || self.state === 'stopped';
      if (self.state !== 'stopped') self.state = expected ? 'stopped' : 'crashed';
      self.channel?.close(`worker ${self.id} exited (code ${exit.code}, signal ${exit.signal})`);
      options.onExit(self, exit, expected);
    });
    try {
      const address = await proc.waitReady(() => [...self.recentOutput]);
      const channel = new WorkerChannel(toGrpcTarget(address), options.token, options.maxMessageBytes);
      self.channel = channel;
      const description = await channel.describe(options.startTimeoutMs);
      self.tools = description.tools;
      self.capacity = Math.max(1, description.capacity || options.capacity);
      channel.open((error) => {
        if (self.state === 'ready') {
          options.logger.warn({ msg: 'worker stream broke', pool: self.pool, worker_id: self.id, pid: self.pid, reason: error.message });
          // The process is useless without its stream: replace it.
          self.process.signal('SIGKILL');
        }
      });
      if (self.process.exitStatus) throw new Error('exited during start');
      self.state = 'ready';
      return self;
    } catch (error) {
      self.state = 'stopping';
      await proc.stop(1000);
      if (error instanceof SnakepitError) throw error;
      throw new SnakepitError('WORKER_UNAVAILABLE', `Worker ${self.id} failed its first round trip: ${(error as Error).message}`, {
        details: { workerId: self.id, output: [...self.recentOutput] },
        cause: error,
      });
    }
  }

  /**
   * Runs a call on this worker. The slot is taken now, synchronously, and held
   * until the worker confirms the call ended (result, error or Cancelled) or
   * the stream breaks, so a cancelled call never overlaps the next one.
   */
  dispatch(request: CallRequest, listener: CallListener): number {
    if (!this.channel) throw new SnakepitError('WORKER_UNAVAILABLE', `Worker ${this.id} is not connected`);
    this.busy++;
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        this.busy--;
        this.requestsServed++;
      }
    };
    return this.channel.call(request, {
      chunk: (message) => listener.chunk(message),
      end: (message) => {
        release();
        listener.end(message);
      },
      broken: (error) => {
        release();
        listener.broken(error.withDetails({ workerId: this.id, pid: this.pid }));
      },
    });
  }

  cancel(requestId: number, reason: string): void {
    this.channel?.cancel(requestId, reason);
  }

  /** Stops the worker gracefully (SIGTERM, then SIGKILL after `graceMs`). */
  async stop(graceMs: number): Promise<void> {
    if (this.state === 'stopped' || this.state === 'crashed') return;
    this.state = 'stopping';
    this.channel?.close(`worker ${this.id} is stopping`);
    await this.process.stop(graceMs);
  }

  /** Kills the worker's process group at once; its exit is reported as a crash. */
  kill(): void {
    this.process.signal('SIGKILL');
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
    };
  }

  private relayOutput({ stream, line }: WorkerOutputLine): void {
    this.recentOutput.push(line);
    if (this.recentOutput.length > RECENT_OUTPUT_LINES) this.recentOutput.shift();
    const context = { pool: this.pool, worker_id: this.id, pid: this.pid };
    if (stream === 'stdout') {
      this.logger.log({ msg: line, stream, ...context });
      return;
    }
    const parsed = parseJsonLine(line);
    if (!parsed) {
      this.logger.warn({ msg: line, stream, ...context });
      return;
    }
    // The host stamps its own time; the worker's would shadow it.
    const { level, msg, time: _workerTime, ...fields } = parsed;
    const method = PYTHON_LEVELS[String(level).toLowerCase()] ?? 'log';
    this.logger[method]({ ...fields, msg: String(msg ?? ''), stream, ...context, python_level: level });
  }
}

function parseJsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** grpc-js wants `unix:///abs/path` or `host:port`; the worker reports what it bound. */
function toGrpcTarget(address: string): string {
  return address.startsWith('unix:') ? address : address.replace(/^tcp:\/\//, '');
}

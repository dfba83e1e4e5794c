import type { Logger } from '@nestjs/common';
import type { CallListener } from '../bridge/worker-channel';
import { WorkerChannel } from '../bridge/worker-channel';
import type { CallRequest } from '../bridge/generated/snakepit/bridge/v1/CallRequest';
import type { HostCall__Output } from '../bridge/generated/snakepit/bridge/v1/HostCall';
import { errorInfoOf } from '../bridge/error-info';
import { payloadLimitBytes } from '../bridge/frame-size';
import { decodePayload, encodeValue } from '../bridge/payload';
import type { HostToolRegistry } from '../host-tools/host-tool.registry';
import type { ToolSpec__Output } from '../bridge/generated/snakepit/bridge/v1/ToolSpec';
import { SnakepitError, toSnakepitError } from '../errors/snakepit-error';
import type { PoolWorker } from '../pool/pool-worker';
import type { SharedMemorySettings } from '../shared-memory/shared-memory.interfaces';
import { WorkerRegions } from '../shared-memory/worker-regions';
import type { WorkerCrashReason } from '../telemetry/telemetry-events';
import { OutputThrottle, WorkerProcess, type ProcessExit, type WorkerOutputLine, type WorkerProcessSpec } from './worker-process';

/** `draining`: being recycled — takes no new calls, finishes the ones it has. */
export type WorkerState = 'starting' | 'ready' | 'draining' | 'stopping' | 'stopped' | 'crashed';

export interface WorkerInfo {
  id: string;
  pid: number;
  state: WorkerState;
  busy: number;
  capacity: number;
  requestsServed: number;
  uptimeMs: number;
  /** Bytes of the worker's shared-memory region held by its calls in flight (0 without shared memory). */
  sharedMemoryBytes: number;
}

export interface HeartbeatOptions {
  intervalMs: number;
  timeoutMs: number;
  maxMissed: number;
  /** Called for every missed beat; at `maxMissed` the worker is killed as frozen. */
  onMissed: (worker: Worker, missed: number) => void;
}

export interface WorkerStartOptions extends WorkerProcessSpec {
  pool: string;
  token: string;
  logger: Logger;
  heartbeat: HeartbeatOptions;
  /** The host tools this worker's Python tools may call. */
  hostTools: HostToolRegistry;
  /** Budget of a host call whose Python caller set none (the call's own remaining time is sent when it has one). */
  hostCallTimeoutMs: number;
  /** Where pids are recorded so that no worker can outlive the host. */
  registry: { track(pid: number, workerId: string): void; untrack(pid: number): void };
  /** Called once when the process exits; `expected` is false for a crash. */
  onExit: (worker: Worker, exit: ProcessExit, expected: boolean) => void;
  /** The pool's shared-memory settings; absent when blobs travel only inside gRPC messages. */
  sharedMemory?: SharedMemorySettings;
}

const RECENT_OUTPUT_LINES = 20;
const STREAM_LOSS_GRACE_MS = 1_000;
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
 * whether it can take a call.
 */
export class Worker implements PoolWorker {
  state: WorkerState = 'starting';
  readonly startedAt = Date.now();
  /** Calls the worker answered (a call lost with its stream is not counted). */
  requestsServed = 0;
  /** Slots in use, including calls cancelled but not yet confirmed stopped. */
  busy = 0;
  capacity = 1;
  tools: ToolSpec__Output[] = [];
  /** The tools' names, for the per-call check. */
  toolNames = new Set<string>();
  /** Why the worker was killed, when the host killed it (reported with its crash). */
  crashReason?: WorkerCrashReason;
  private readonly recentOutput: string[] = [];
  private channel?: WorkerChannel;
  private regions?: WorkerRegions;
  private heartbeatTimer?: NodeJS.Timeout;
  /** False once the data stream broke: the worker takes no call while it dies. */
  private connected = true;
  private idleWaiters: Array<() => void> = [];
  /** Host calls in progress, by the id of the Python call that made them (aborted when it ends). */
  private readonly hostCalls = new Map<number, Set<AbortController>>();

  private constructor(
    readonly id: string,
    readonly pool: string,
    readonly process: WorkerProcess,
    private readonly logger: Logger,
  ) {}

  get pid(): number {
    return this.process.pid;
  }

  /** Ready and still connected: it can take calls (a worker whose stream broke is on its way out). */
  get isServing(): boolean {
    return this.state === 'ready' && this.connected;
  }

  /** Spawns a worker and resolves once it answered a round trip; on failure nothing is left running. */
  static async start(options: WorkerStartOptions): Promise<Worker> {
    let worker: Worker | undefined;
    // Made before the process, so its flags can name them; removed when it exits.
    const regions = options.sharedMemory ? new WorkerRegions(options.sharedMemory.dir, options.workerId, options.sharedMemory) : undefined;
    let proc: WorkerProcess;
    try {
      proc = WorkerProcess.spawn({ ...options, sharedMemoryArgs: regions?.workerArgs() }, (line) => worker?.relayOutput(line));
    } catch (error) {
      regions?.close();
      throw error;
    }
    worker = new Worker(options.workerId, options.pool, proc, options.logger);
    worker.regions = regions;
    const self = worker;
    // The exit handler comes first: whatever fails below, a dying process is still reported.
    void proc.exited.then((exit) => {
      try {
        options.registry.untrack(proc.pid);
      } catch (error) {
        options.logger.warn({ msg: 'could not untrack a worker', pool: self.pool, worker_id: self.id, pid: proc.pid, reason: (error as Error).message });
      }
      clearInterval(self.heartbeatTimer);
      self.notifyIdle();
      const expected = self.state === 'stopping' || self.state === 'stopped';
      if (self.state !== 'stopped') self.state = expected ? 'stopped' : 'crashed';
      self.channel?.close(`worker ${self.id} exited (code ${exit.code}, signal ${exit.signal})`, expected ? 'WORKER_UNAVAILABLE' : 'WORKER_CRASHED');
      regions?.close();
      options.onExit(self, exit, expected);
    });
    try {
      // Inside the try: a process that cannot be tracked is stopped, never left running unknown to the pool.
      options.registry.track(proc.pid, self.id);
      const address = await proc.waitReady(() => [...self.recentOutput]);
      const channel = new WorkerChannel(toGrpcTarget(address), options.token, options.maxMessageBytes, regions);
      self.channel = channel;
      const description = await channel.describe(options.startTimeoutMs);
      self.tools = description.tools;
      self.toolNames = new Set(description.tools.map((spec) => spec.name));
      self.capacity = Math.max(1, description.capacity || options.capacity);
      const hostToolSpecs = options.hostTools.specs();
      if (hostToolSpecs.length > 0) channel.announceHostTools(hostToolSpecs);
      channel.open(
        (error) => {
          self.connected = false;
          if (self.state !== 'ready' && self.state !== 'draining') return;
          // Usually the process is dying and its exit follows at once; if it lingers
          // without its stream it is useless, so it is killed and replaced.
          setTimeout(() => {
            if (self.process.exitStatus) return;
            options.logger.warn({ msg: 'worker stream broke; killing it', pool: self.pool, worker_id: self.id, pid: self.pid, reason: error.message });
            self.kill('stream_broken');
          }, STREAM_LOSS_GRACE_MS).unref();
        },
        (parentId, call) => self.runHostCall(parentId, call, options),
      );
      if (self.process.exitStatus) throw new Error('exited during start');
      self.state = 'ready';
      self.startHeartbeat(options.heartbeat);
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
   * Returns undefined, taking nothing, when the worker cannot take a call.
   */
  dispatch(request: CallRequest, listener: CallListener): number | undefined {
    if (!this.channel || !this.isServing) return undefined;
    let released = false;
    let requestId = 0;
    // Only a call the worker answered counts as served: one lost with the stream proves nothing about its health.
    const release = (answered: boolean) => {
      if (!released) {
        released = true;
        this.busy--;
        if (answered) this.requestsServed++;
        this.abortHostCalls(requestId);
        if (this.busy === 0) this.notifyIdle();
      }
    };
    const sent = this.channel.call(request, {
      chunk: (message) => listener.chunk(message),
      end: (message) => {
        release(true);
        listener.end(message);
      },
      broken: (error, delivered) => {
        release(false);
        listener.broken(error.withDetails({ workerId: this.id, pid: this.pid }), delivered);
      },
    });
    if (sent === undefined) return undefined;
    this.busy++;
    requestId = sent;
    return requestId;
  }

  /** Runs a host tool for the Python call `parentId` and sends the answer back on the stream. */
  private runHostCall(parentId: number, call: HostCall__Output, options: WorkerStartOptions): void {
    const aborter = new AbortController();
    let pending = this.hostCalls.get(parentId);
    if (!pending) this.hostCalls.set(parentId, (pending = new Set()));
    pending.add(aborter);
    const reply = (outcome: Parameters<WorkerChannel['replyHostCall']>[2]) => {
      pending.delete(aborter);
      if (pending.size === 0) this.hostCalls.delete(parentId);
      this.channel?.replyHostCall(parentId, call.callId, outcome);
    };
    Promise.resolve()
      .then(() =>
        options.hostTools.invoke({
          tool: call.tool,
          args: (decodePayload(call.args) ?? {}) as Record<string, unknown>,
          timeoutMs: call.timeoutMs || options.hostCallTimeoutMs,
          context: { pool: this.pool, workerId: this.id, sessionId: call.sessionId || undefined, depth: call.depth },
          signal: aborter.signal,
        }),
      )
      .then((value) => reply({ value: encodeValue(value, payloadLimitBytes(options.maxMessageBytes)) }))
      .catch((error: unknown) => {
        reply({ error: errorInfoOf(toSnakepitError(error)) });
      });
  }

  private abortHostCalls(parentId: number): void {
    const pending = this.hostCalls.get(parentId);
    if (!pending) return;
    this.hostCalls.delete(parentId);
    for (const aborter of pending) aborter.abort(new Error('the Python call that asked has ended'));
  }

  cancel(requestId: number, reason: string): void {
    this.channel?.cancel(requestId, reason);
  }

  credit(requestId: number, chunks: number): void {
    this.channel?.credit(requestId, chunks);
  }

  /** Stops the worker gracefully (SIGTERM, then SIGKILL after `graceMs`). */
  async stop(graceMs: number): Promise<void> {
    if (this.state === 'stopped' || this.state === 'crashed') return;
    this.state = 'stopping';
    clearInterval(this.heartbeatTimer);
    this.channel?.close(`worker ${this.id} is stopping`);
    await this.process.stop(graceMs);
  }

  /** One grpc.health.v1 check over the worker's own channel (with the run's token). */
  checkHealth(timeoutMs: number): Promise<string> {
    if (!this.channel) return Promise.reject(new Error(`worker ${this.id} is not connected`));
    return this.channel.checkHealth(timeoutMs);
  }

  /** Resolves once no call runs on this worker (at once if none does). */
  whenIdle(): Promise<void> {
    if (this.busy === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Takes no new calls from now on; the ones running finish (recycling). */
  drain(): void {
    if (this.state === 'ready') this.state = 'draining';
  }

  /** Kills the worker's process group at once; its exit is reported as a crash with `reason`. */
  kill(reason: WorkerCrashReason): void {
    this.crashReason ??= reason;
    this.process.signal('SIGKILL');
  }

  /**
   * Checks the worker over grpc.health.v1 on an interval. Health is answered on
   * the worker's event loop while tools run on threads, so a busy worker still
   * answers; a frozen one (SIGSTOP, a blocked loop, a deadlock) does not.
   */
  private startHeartbeat(options: HeartbeatOptions): void {
    let missed = 0;
    let inFlight = false;
    this.heartbeatTimer = setInterval(() => {
      if (inFlight || !this.channel || (this.state !== 'ready' && this.state !== 'draining')) return;
      inFlight = true;
      this.checkHealth(options.timeoutMs).then(
        (status) => {
          inFlight = false;
          if (status === 'SERVING') missed = 0;
          else onMiss();
        },
        () => {
          inFlight = false;
          onMiss();
        },
      );
    }, options.intervalMs);
    this.heartbeatTimer.unref();
    const onMiss = () => {
      if (this.state !== 'ready' && this.state !== 'draining') return;
      missed++;
      options.onMissed(this, missed);
      if (missed >= options.maxMissed) this.kill('frozen');
    };
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
      sharedMemoryBytes: this.regions?.inUse ?? 0,
    };
  }

  /** Lines are capped in length by WorkerProcess; here, in number (per second, see OUTPUT_LIMITS). */
  private readonly outputThrottle = new OutputThrottle((dropped) =>
    this.logger.warn({ msg: 'worker output over the log rate limit; lines dropped', dropped, pool: this.pool, worker_id: this.id, pid: this.pid }),
  );

  private relayOutput({ stream, line }: WorkerOutputLine): void {
    // The recent lines (for start errors) are kept even when the log drops them.
    this.recentOutput.push(line);
    if (this.recentOutput.length > RECENT_OUTPUT_LINES) this.recentOutput.shift();
    if (!this.outputThrottle.admit()) return;
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
    // Python's logging sends a string; anything else shows as JSON rather than "[object Object]".
    const text = msg === undefined || msg === null ? '' : typeof msg === 'string' ? msg : safeJson(msg);
    this.logger[method]({ ...fields, msg: text, stream, ...context, python_level: level });
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch {
    return '{}';
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

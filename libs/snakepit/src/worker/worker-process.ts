import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { SnakepitError } from '../errors/snakepit-error';

export interface WorkerProcessSpec {
  workerId: string;
  python: string;
  adapter: string;
  /** `unix:///path.sock` or `127.0.0.1:0`. */
  address: string;
  capacity: number;
  logLevel: string;
  env: Record<string, string>;
  maxMessageBytes: number;
  startTimeoutMs: number;
  /** How long the worker may take to finish calls after SIGTERM before it exits anyway. */
  shutdownGraceMs: number;
  /** RLIMIT_AS in MiB set before the adapter loads; 0 = none. */
  memoryLimitMb: number;
  /** The worker's shared-memory flags (WorkerRegions.workerArgs), when its pool uses shared memory. */
  sharedMemoryArgs?: readonly string[];
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A line the worker wrote on stderr (structured JSON) or stdout (the user's print()). */
export interface WorkerOutputLine {
  stream: 'stdout' | 'stderr';
  line: string;
}

/** The fd on which the worker reports `READY <address>` or `ERROR <json>`; stdout stays free for user prints. */
const READY_FD = 3;

/** What a worker's output may cost the host: memory per line, and log lines per second. */
export const OUTPUT_LIMITS = {
  /** Longest stdout/stderr line relayed; the rest of a longer line is dropped, and a marker says how much. */
  maxLineBytes: 16 * 1024,
  /** The ready fd's one ERROR line carries a traceback: room for a long one, still bounded. */
  maxReadyLineBytes: 1024 * 1024,
  /** Lines a worker may log at once before the rate limit applies... */
  burstLines: 200,
  /** ...and per second after that; dropped lines are counted in one summary line. */
  linesPerSecond: 50,
  summaryDelayMs: 1_000,
} as const;

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits a byte stream into lines as readline does (\n, \r\n or a lone \r ends
 * one; a last line without newline counts), but holds at most `maxBytes` of a
 * line: the rest is counted, not kept, up to its end, and the line is emitted
 * cut (on a UTF-8 character boundary) with a marker saying how many bytes went.
 * readline, and split2 (whose maxLength errors out or drops the whole line),
 * buffer or lose too much, hence this.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private held = 0;
  private dropped = 0;
  /** The last chunk ended in \r: a \n opening the next one belongs to it. */
  private pendingLf = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onLine: (line: string) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    if (this.pendingLf && chunk.length > 0) {
      this.pendingLf = false;
      if (chunk[0] === LF) start = 1;
    }
    // Each newline kind is searched for once per position passed (memchr), never per byte in JS.
    let lf = chunk.indexOf(LF, start);
    let cr = chunk.indexOf(CR, start);
    while (lf !== -1 || cr !== -1) {
      const end = lf === -1 ? cr : cr === -1 ? lf : Math.min(lf, cr);
      this.append(chunk, start, end);
      this.emit();
      start = end + 1;
      if (chunk[end] === CR) {
        if (start === chunk.length) this.pendingLf = true;
        else if (chunk[start] === LF) start++;
      }
      if (lf !== -1 && lf < start) lf = chunk.indexOf(LF, start);
      if (cr !== -1 && cr < start) cr = chunk.indexOf(CR, start);
    }
    this.append(chunk, start, chunk.length);
  }

  /** The stream ended: a last line without newline is emitted too. */
  end(): void {
    if (this.held > 0 || this.dropped > 0) this.emit();
  }

  private append(chunk: Buffer, start: number, end: number): void {
    const kept = Math.min(end - start, this.maxBytes - this.held);
    if (kept > 0) {
      // A copy: a reference would keep the whole chunk alive.
      this.parts.push(Buffer.from(chunk.subarray(start, start + kept)));
      this.held += kept;
    }
    this.dropped += end - start - kept;
  }

  private emit(): void {
    let line = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.held);
    let dropped = this.dropped;
    if (dropped > 0) {
      const whole = utf8Boundary(line);
      dropped += line.length - whole;
      line = line.subarray(0, whole);
    }
    this.parts = [];
    this.held = 0;
    this.dropped = 0;
    const text = line.toString('utf8');
    this.onLine(dropped > 0 ? `${text} …[snakepit: ${dropped} more bytes of this line dropped]` : text);
  }
}

/** The length of `bytes` without a UTF-8 character cut off at its end. */
function utf8Boundary(bytes: Buffer): number {
  let lead = bytes.length - 1;
  // At most 3 continuation bytes (10xxxxxx) precede the end of a cut character.
  while (lead >= 0 && bytes.length - lead <= 3 && (bytes[lead] & 0xc0) === 0x80) lead--;
  if (lead < 0) return bytes.length;
  const byte = bytes[lead];
  const size = byte < 0x80 ? 1 : byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
  return lead + size > bytes.length ? lead : bytes.length;
}

/** Feeds `input` to a LineSplitter; returns what stops it. */
function readLines(input: Readable, maxBytes: number, onLine: (line: string) => void): () => void {
  const splitter = new LineSplitter(maxBytes, onLine);
  const onData = (chunk: Buffer) => splitter.push(chunk);
  const onEnd = () => splitter.end();
  input.on('data', onData);
  input.on('end', onEnd);
  return () => {
    input.off('data', onData);
    input.off('end', onEnd);
  };
}

/**
 * A per-worker limit on relayed log lines: a token bucket of `burstLines`
 * filled at `linesPerSecond`. A line over the limit is counted, and the count
 * reported once `summaryDelayMs` after the first drop, so a print loop costs
 * the host a bounded number of log lines. (A dozen lines: no dependency for it.)
 */
export class OutputThrottle {
  private tokens: number;
  private refilledAt: number;
  private dropped = 0;
  private summaryTimer?: NodeJS.Timeout;

  constructor(
    private readonly onDropped: (count: number) => void,
    private readonly limits: { burstLines: number; linesPerSecond: number; summaryDelayMs: number } = OUTPUT_LIMITS,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = limits.burstLines;
    this.refilledAt = now();
  }

  /** Whether a line may be logged now; if not, it is counted for the summary. */
  admit(): boolean {
    const now = this.now();
    this.tokens = Math.min(this.limits.burstLines, this.tokens + ((now - this.refilledAt) / 1000) * this.limits.linesPerSecond);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens--;
      return true;
    }
    this.dropped++;
    if (!this.summaryTimer) {
      this.summaryTimer = setTimeout(() => {
        this.summaryTimer = undefined;
        const count = this.dropped;
        this.dropped = 0;
        this.onDropped(count);
      }, this.limits.summaryDelayMs);
      this.summaryTimer.unref();
    }
    return false;
  }
}

/**
 * One Python worker process: spawned in its own process group (so the whole
 * group can be signalled, grandchildren included), with stdin kept open as a
 * lifeline (the worker exits when it reads EOF, i.e. when the host is gone).
 */
export class WorkerProcess {
  readonly pid: number;
  readonly exited: Promise<ProcessExit>;
  private exitInfo?: ProcessExit;

  private constructor(
    private readonly child: ChildProcess,
    readonly spec: WorkerProcessSpec,
  ) {
    this.pid = child.pid ?? -1;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        // A worker killed outright cannot remove its own socket file.
        if (spec.address.startsWith('unix://')) rmSync(spec.address.slice('unix://'.length), { force: true });
        resolve(this.exitInfo);
      });
    });
  }

  static spawn(spec: WorkerProcessSpec, onOutput: (line: WorkerOutputLine) => void): WorkerProcess {
    const args = [
      '-m',
      'snakepit_bridge.worker',
      '--adapter',
      spec.adapter,
      '--address',
      spec.address,
      '--worker-id',
      spec.workerId,
      '--capacity',
      String(spec.capacity),
      '--ready-fd',
      String(READY_FD),
      '--log-level',
      spec.logLevel,
      '--max-message-bytes',
      String(spec.maxMessageBytes),
      '--shutdown-grace-ms',
      String(spec.shutdownGraceMs),
      ...(spec.memoryLimitMb > 0 ? ['--memory-limit-mb', String(spec.memoryLimitMb)] : []),
      ...(spec.sharedMemoryArgs ?? []),
    ];
    const child = spawn(spec.python, args, {
      detached: true,
      env: spec.env,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    if (child.pid === undefined) {
      // spawn failures (ENOENT, EACCES) surface as an 'error' event right after.
      child.once('error', () => undefined);
      throw new SnakepitError('WORKER_UNAVAILABLE', `Cannot start ${spec.python} for worker ${spec.workerId}`, {
        details: { workerId: spec.workerId, python: spec.python },
      });
    }
    child.on('error', () => undefined); // reported through 'exit'
    child.stdin?.on('error', () => undefined); // EPIPE once the worker is gone
    const worker = new WorkerProcess(child, spec);
    for (const stream of ['stdout', 'stderr'] as const) {
      const readable = child[stream];
      if (readable) readLines(readable, OUTPUT_LIMITS.maxLineBytes, (line) => onOutput({ stream, line }));
    }
    return worker;
  }

  get exitStatus(): ProcessExit | undefined {
    return this.exitInfo;
  }

  /**
   * Resolves with the address the worker serves on once it wrote READY, or
   * rejects with what it reported (adapter import error...), its exit, or a timeout.
   */
  waitReady(recentOutput: () => string[]): Promise<string> {
    const readyStream = this.child.stdio[READY_FD] as Readable | null;
    const { workerId, startTimeoutMs } = this.spec;
    return new Promise((resolve, reject) => {
      const fail = (message: string, details: Record<string, unknown>) => {
        cleanup();
        reject(new SnakepitError('WORKER_UNAVAILABLE', message, { details: { workerId, ...details, output: recentOutput() } }));
      };
      const timer = setTimeout(() => fail(`Worker ${workerId} did not become ready within ${startTimeoutMs} ms`, { startTimeoutMs }), startTimeoutMs);
      const onLine = (line: string) => {
        if (line.startsWith('READY ')) {
          cleanup();
          resolve(line.slice('READY '.length).trim());
        } else if (line.startsWith('ERROR ')) {
          // The bridge's own report (snakepit_bridge.worker writes it), or a line it could not encode.
          let reported: { type?: string; message?: string; traceback?: string };
          try {
            reported = JSON.parse(line.slice('ERROR '.length)) as typeof reported;
          } catch {
            reported = { message: line.slice('ERROR '.length) };
          }
          fail(`Worker ${workerId} failed to start: ${reported.type ? `${reported.type}: ` : ''}${reported.message ?? 'unknown error'}`, {
            pythonType: reported.type,
            traceback: reported.traceback,
          });
        }
      };
      const onExit = ({ code, signal }: ProcessExit) =>
        fail(`Worker ${workerId} exited before it was ready (code ${code}, signal ${signal})`, { exitCode: code, signal });
      const stopReading = readyStream ? readLines(readyStream, OUTPUT_LIMITS.maxReadyLineBytes, onLine) : undefined;
      void this.exited.then(onExit);
      const cleanup = () => {
        clearTimeout(timer);
        stopReading?.();
        readyStream?.destroy();
      };
    });
  }

  /** Signals the worker's whole process group. */
  signal(signal: NodeJS.Signals): void {
    if (this.exitInfo || this.pid <= 0) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      try {
        process.kill(this.pid, signal);
      } catch {
        // already gone
      }
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  async stop(graceMs: number): Promise<ProcessExit> {
    if (this.exitInfo) return this.exitInfo;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    const exit = await this.exited;
    clearTimeout(timer);
    // Grandchildren that ignored SIGTERM must not outlive the worker.
    this.signalGroupRemnants();
    return exit;
  }

  private signalGroupRemnants(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // the group is empty
    }
  }
}

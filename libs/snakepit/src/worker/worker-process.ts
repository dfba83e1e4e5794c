import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
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
      if (readable) createInterface({ input: readable, crlfDelay: Infinity }).on('line', (line) => onOutput({ stream, line }));
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
      const timer = setTimeout(
        () => fail(`Worker ${workerId} did not become ready within ${startTimeoutMs} ms`, { startTimeoutMs }),
        startTimeoutMs,
      );
      const lines = readyStream ? createInterface({ input: readyStream, crlfDelay: Infinity }) : undefined;
      const onLine = (line: string) => {
        if (line.startsWith('READY ')) {
          cleanup();
          resolve(line.slice('READY '.length).trim());
        } else if (line.startsWith('ERROR ')) {
          let reported: { type?: string; message?: string; traceback?: string } = {};
          try {
            reported = JSON.parse(line.slice('ERROR '.length));
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
      lines?.on('line', onLine);
      void this.exited.then(onExit);
      const cleanup = () => {
        clearTimeout(timer);
        lines?.off('line', onLine);
        lines?.close();
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


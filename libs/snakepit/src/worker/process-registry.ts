import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';

/** One recorded process: a pid is only trusted together with its start time. */
export interface RegisteredProcess {
  pid: number;
  /** Start time in clock ticks since boot (/proc/<pid>/stat field 22): a recycled pid has another. */
  startTime: number;
  workerId?: string;
}

export interface RegistryContents {
  runId: string;
  host: RegisteredProcess;
  workers: RegisteredProcess[];
  /** The run's private socket directory, removed with the run's leftovers. */
  socketDir?: string;
}

/** The start time of a live process, or undefined when it is gone (zombies count as gone). */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') return undefined;
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** Whether `entry` still names the very process that was recorded. */
export function isSameProcess(entry: RegisteredProcess): boolean {
  return entry.pid > 0 && processStartTime(entry.pid) === entry.startTime;
}

/** Kills the process group led by `entry` (workers lead their own group), only if it is still that process. */
function killRecordedGroup(entry: RegisteredProcess): boolean {
  if (!isSameProcess(entry)) return false;
  try {
    process.kill(-entry.pid, 'SIGKILL');
  } catch {
    try {
      process.kill(entry.pid, 'SIGKILL');
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * Kills what a dead run left (its recorded process groups) and removes its
 * socket directory: what its host would have cleaned up had it stopped normally.
 */
export function cleanUpRun(contents: RegistryContents): RegisteredProcess[] {
  const killed = contents.workers.filter((entry) => killRecordedGroup(entry));
  // Only a directory Snakepit made (mkdtemp 'snakepit-XXXXXX') is ever removed.
  if (contents.socketDir && basename(contents.socketDir).startsWith('snakepit-')) {
    rmSync(contents.socketDir, { recursive: true, force: true });
  }
  return killed;
}

export function readRegistry(path: string): RegistryContents | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as RegistryContents;
    return parsed && typeof parsed.runId === 'string' && Array.isArray(parsed.workers) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The file through which a host instance finds what its earlier runs left
 * behind. Only pids recorded here, with matching start times, are ever killed —
 * never processes found by matching command lines.
 */
export class ProcessRegistry {
  private readonly workers = new Map<number, RegisteredProcess>();
  private readonly host: RegisteredProcess;

  constructor(
    readonly path: string,
    private readonly runId: string,
    private readonly socketDir?: string,
  ) {
    this.host = { pid: process.pid, startTime: processStartTime(process.pid) ?? 0 };
  }

  /**
   * Kills the leftovers of earlier runs of this instance and takes the file over.
   * Throws if another live host of the same instance owns it.
   */
  claim(): { killed: RegisteredProcess[] } {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const previous = readRegistry(this.path);
    const killed: RegisteredProcess[] = [];
    if (previous) {
      // A live owner, even this very process (a second Snakepit module in one app), is never cleaned up after.
      if (previous.runId !== this.runId && isSameProcess(previous.host)) {
        throw new Error(
          `Another live Snakepit host (pid ${previous.host.pid}, run ${previous.runId}) owns ${this.path}; give each its own instanceName`,
        );
      }
      killed.push(...cleanUpRun(previous));
    }
    this.flush();
    return { killed };
  }

  add(pid: number, workerId: string): void {
    const startTime = processStartTime(pid);
    if (startTime === undefined) return;
    this.workers.set(pid, { pid, startTime, workerId });
    this.flush();
  }

  remove(pid: number): void {
    if (this.workers.delete(pid)) this.flush();
  }

  /** Removes the file at a clean shutdown: nothing is left to clean. */
  release(): void {
    const current = readRegistry(this.path);
    if (!current || current.runId === this.runId) rmSync(this.path, { force: true });
  }

  private flush(): void {
    const contents: RegistryContents = { runId: this.runId, host: this.host, workers: [...this.workers.values()], socketDir: this.socketDir };
    // Write then rename: a watchdog reading at the moment of a crash never sees half a file.
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(contents), { mode: 0o600 });
    renameSync(tmp, this.path);
  }
}

import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { SnakepitConfigError } from '../options/resolve-options';

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
  /** The run's private shared-memory directory, removed likewise. */
  sharedDir?: string;
}

/** Where registry problems are reported (Nest's Logger fits). */
export interface RegistryLogger {
  warn(message: Record<string, unknown>): void;
  log(message: Record<string, unknown>): void;
}

/** A registry bigger than this was not written by Snakepit. */
const MAX_REGISTRY_BYTES = 1024 * 1024;
/** Each kind of write problem is reported at most this often (each flush would otherwise log). */
const WARNING_INTERVAL_MS = 60_000;

const effectiveUid = (): number | undefined => process.geteuid?.();

interface ProcStat {
  state: string;
  processGroup: number;
  startTime: number;
}

function readProcStat(pid: number): ProcStat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], processGroup: Number(fields[2]), startTime: Number(fields[19]) };
  } catch {
    return undefined;
  }
}

/** The start time of a live process, or undefined when it is gone (zombies count as gone). */
export function processStartTime(pid: number): number | undefined {
  const stat = readProcStat(pid);
  return stat && stat.state !== 'Z' ? stat.startTime : undefined;
}

/** Whether `entry` still names the very process that was recorded. */
export function isSameProcess(entry: RegisteredProcess): boolean {
  return Number.isSafeInteger(entry.pid) && entry.pid > 0 && processStartTime(entry.pid) === entry.startTime;
}

/**
 * Whether `entry` is still the worker that run `runId` started: same pid and
 * start time, owned by this user, and started with that run's SNAKEPIT_RUN_ID
 * (/proc/<pid>/environ is the environment it was started with; Python cannot
 * rewrite it). A registry naming any other process, forged or stale, kills nothing.
 */
function isWorkerOfRun(entry: RegisteredProcess, runId: string): boolean {
  if (!isSameProcess(entry)) return false;
  try {
    const uid = effectiveUid();
    if (uid !== undefined && statSync(`/proc/${entry.pid}`).uid !== uid) return false;
    return readFileSync(`/proc/${entry.pid}/environ`, 'latin1').split('\0').includes(`SNAKEPIT_RUN_ID=${runId}`);
  } catch {
    return false;
  }
}

/** Kills the process group led by `entry` (workers lead their own group), only if it is still that run's worker. */
function killRecordedWorker(entry: RegisteredProcess, runId: string): boolean {
  if (!isWorkerOfRun(entry, runId)) return false;
  // Only a group the worker itself leads is signalled as a group.
  const target = readProcStat(entry.pid)?.processGroup === entry.pid ? -entry.pid : entry.pid;
  try {
    process.kill(target, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether a recorded run directory (sockets, shared memory) may be removed:
 * one Snakepit made (mkdtemp 'snakepit-XXXXXX') directly under the base this
 * host was configured with, a real directory (not a symlink) owned by this user.
 */
function isOwnRunDir(runDir: unknown, base: string | undefined): runDir is string {
  if (typeof runDir !== 'string' || !base) return false;
  const dir = resolve(runDir);
  if (dirname(dir) !== resolve(base) || !basename(dir).startsWith('snakepit-')) return false;
  try {
    const stats = lstatSync(dir);
    const uid = effectiveUid();
    return stats.isDirectory() && (uid === undefined || stats.uid === uid);
  } catch {
    return false;
  }
}

/** The directories run directories are made in, as this host is configured (never as a registry file says). */
export interface RunDirBases {
  socketBase?: string;
  sharedBase?: string;
}

/**
 * Kills what a dead run left (its recorded process groups) and removes its
 * socket and shared-memory directories: what its host would have cleaned up
 * had it stopped normally. The file's content is trusted only within bounds:
 * see isWorkerOfRun and isOwnRunDir. A directory without its base (tcp
 * transport, shared memory off) is never removed.
 */
export function cleanUpRun(contents: RegistryContents, bases: RunDirBases): RegisteredProcess[] {
  const killed = contents.workers.filter((entry) => killRecordedWorker(entry, contents.runId));
  if (isOwnRunDir(contents.socketDir, bases.socketBase)) rmSync(contents.socketDir, { recursive: true, force: true });
  if (isOwnRunDir(contents.sharedDir, bases.sharedBase)) rmSync(contents.sharedDir, { recursive: true, force: true });
  return killed;
}

function isRegisteredProcess(value: unknown): value is RegisteredProcess {
  const entry = value as RegisteredProcess;
  return typeof entry === 'object' && entry !== null && Number.isSafeInteger(entry.pid) && typeof entry.startTime === 'number';
}

/** The registry at `path`, or undefined when it is absent, a symlink, too big or not a registry. */
export function readRegistry(path: string): RegistryContents | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    if (fstatSync(fd).size > MAX_REGISTRY_BYTES) return undefined;
    const parsed = JSON.parse(readFileSync(fd, 'utf8')) as RegistryContents;
    const valid =
      typeof parsed === 'object' &&
      parsed !== null &&
      typeof parsed.runId === 'string' &&
      isRegisteredProcess(parsed.host) &&
      Array.isArray(parsed.workers) &&
      parsed.workers.every(isRegisteredProcess);
    return valid ? parsed : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Creates the state directory if it is missing (mode 0700) and checks that it
 * is private: a real directory (not a symlink), owned by this user, mode 0700.
 * Any other user able to write there could make this host kill processes or
 * delete directories. Returns whether it had to be created.
 */
export function ensureStateDir(dir: string): boolean {
  const created = mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined;
  const stats = lstatSync(dir);
  const uid = effectiveUid();
  const problem = stats.isSymbolicLink()
    ? 'is a symbolic link'
    : !stats.isDirectory()
      ? 'is not a directory'
      : uid !== undefined && stats.uid !== uid
        ? `is owned by uid ${stats.uid}, not by this process (uid ${uid})`
        : (stats.mode & 0o777) !== 0o700
          ? `has mode ${(stats.mode & 0o777).toString(8).padStart(4, '0')}, not 0700`
          : undefined;
  if (problem) {
    throw new SnakepitConfigError([
      `stateDir ${dir} ${problem}; Snakepit keeps its process registry only in a private directory: remove it so that Snakepit creates it (\`rm -rf ${dir}\`, once no Snakepit host of yours runs), fix it yourself (\`chmod 700 ${dir}\` on a real directory you own), or set the module option \`stateDir\` to a directory only you can access`,
    ]);
  }
  return created;
}

/** Writes `data` to `path` atomically, never through a symlink: a new private temp file, then rename. */
function writeFileAtomically(path: string, data: string): void {
  // O_EXCL | O_NOFOLLOW: a file or symlink planted at the temp name makes the write fail; it is never followed.
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    try {
      writeSync(fd, data);
    } finally {
      closeSync(fd);
    }
    // rename replaces a symlink at `path` itself, never its target.
    renameSync(tmp, path);
  } catch (error) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw error;
  }
}

export interface ProcessRegistryOptions extends RunDirBases {
  /** The run's private socket directory, recorded for the watchdog and the next run. */
  socketDir?: string;
  /** The run's private shared-memory directory, recorded likewise. */
  sharedDir?: string;
}

/**
 * The file through which a host instance finds what its earlier runs left
 * behind. Only pids recorded here, with matching start times, are ever killed —
 * never processes found by matching command lines.
 *
 * Writes after claim() are best-effort: the registry only serves cleanup after
 * a crash (workers also exit on their own when the host's pipe closes), so a
 * state directory deleted by a /tmp cleaner, or a full disk, must never take
 * the host down. Each write re-creates and re-checks the directory; a
 * re-creation and a failed write are each logged at most once a minute.
 */
export class ProcessRegistry {
  private readonly workers = new Map<number, RegisteredProcess>();
  private readonly host: RegisteredProcess;
  private logger?: RegistryLogger;
  private failedWrites = 0;
  /** When each kind of warning was last logged. */
  private readonly warnedAt = new Map<string, number>();

  constructor(
    readonly path: string,
    private readonly runId: string,
    private readonly options: ProcessRegistryOptions = {},
  ) {
    this.host = { pid: process.pid, startTime: processStartTime(process.pid) ?? 0 };
  }

  /**
   * Kills the leftovers of earlier runs of this instance and takes the file over.
   * Throws SnakepitConfigError if the state directory is not private, and an
   * Error if another live host of the same instance owns the file.
   */
  claim(logger?: RegistryLogger): { killed: RegisteredProcess[] } {
    this.logger = logger;
    ensureStateDir(dirname(this.path));
    const previous = readRegistry(this.path);
    const killed: RegisteredProcess[] = [];
    if (previous) {
      // A live owner, even this very process (a second Snakepit module in one app), is never cleaned up after.
      if (previous.runId !== this.runId && isSameProcess(previous.host)) {
        throw new Error(`Another live Snakepit host (pid ${previous.host.pid}, run ${previous.runId}) owns ${this.path}; give each its own instanceName`);
      }
      killed.push(...cleanUpRun(previous, this.options));
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
    if (current && current.runId !== this.runId) return;
    try {
      rmSync(this.path, { force: true });
    } catch (error) {
      this.logger?.warn({ msg: 'could not remove the process registry', path: this.path, reason: (error as Error).message });
    }
  }

  private flush(): void {
    const contents: RegistryContents = {
      runId: this.runId,
      host: this.host,
      workers: [...this.workers.values()],
      socketDir: this.options.socketDir,
      sharedDir: this.options.sharedDir,
    };
    const dir = dirname(this.path);
    try {
      if (ensureStateDir(dir)) this.warn('recreated', { msg: 'the state directory had disappeared (a /tmp cleaner?); re-created it', stateDir: dir });
      // Write then rename: a watchdog reading at the moment of a crash never sees half a file.
      writeFileAtomically(this.path, JSON.stringify(contents));
    } catch (error) {
      this.failedWrites++;
      this.warn('write_failed', {
        msg: 'could not write the process registry; leftover cleanup after a crash may miss workers',
        path: this.path,
        reason: (error as Error).message,
        failed_writes: this.failedWrites,
      });
      return;
    }
    if (this.failedWrites > 0) {
      this.logger?.log({ msg: 'the process registry is written again', path: this.path, failed_writes: this.failedWrites });
      this.failedWrites = 0;
    }
  }

  private warn(kind: 'recreated' | 'write_failed', message: Record<string, unknown>): void {
    const now = Date.now();
    if (now - (this.warnedAt.get(kind) ?? -Infinity) < WARNING_INTERVAL_MS) return;
    this.warnedAt.set(kind, now);
    this.logger?.warn(message);
  }
}

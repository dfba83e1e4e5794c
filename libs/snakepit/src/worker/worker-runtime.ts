import type { Logger } from '@nestjs/common';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { SnakepitConfigError, type ResolvedOptions, type ResolvedPoolOptions } from '../options/resolve-options';
import type { SharedMemorySettings } from '../shared-memory/shared-memory.interfaces';
import { ProcessRegistry, type RegisteredProcess } from './process-registry';

const WATCHDOG_SCRIPT = join(__dirname, 'watchdog.js');

/** Unix socket paths must fit in sockaddr_un (108 bytes on Linux, 104 on macOS). */
export const MAX_SOCKET_PATH = 100;

/**
 * What all workers of one host run share: a run id, the secret every worker
 * RPC must carry, a private (0700) directory for their sockets, the registry
 * of their pids, and the watchdog that kills them if this host dies.
 */
export class WorkerRuntime {
  readonly runId = randomBytes(6).toString('hex');
  readonly token = randomBytes(32).toString('hex');
  /** Made by start(), not before: a module that is built but never started (a compile-only test) leaves nothing on disk. */
  socketDir?: string;
  /** The run's private (0700) directory of shared-memory regions; made by start() when a pool uses them and the file system allows. */
  sharedDir?: string;
  /** Where the socket directory is made: a recorded socket directory anywhere else is never removed. */
  private readonly socketBase?: string;
  private registry?: ProcessRegistry;
  private watchdog?: ChildProcess;

  constructor(private readonly options: ResolvedOptions) {
    if (options.transport === 'unix') this.socketBase = options.socketDir ?? tmpdir();
  }

  /**
   * Before the first worker starts: kill what a crashed earlier run of this
   * instance left behind (only pids it recorded, checked by start time and run id) and
   * start the watchdog. Throws SnakepitConfigError when the state directory
   * is not private to this user.
   */
  start(logger: Logger): void {
    // mkdtemp creates the directory with mode 0700: only this user can reach the sockets.
    if (this.socketBase) this.socketDir = mkdtempSync(join(this.socketBase, 'snakepit-'));
    this.sharedDir = this.makeSharedDir(logger);
    const registry = new ProcessRegistry(join(this.options.stateDir, `${this.options.instanceName}.json`), this.runId, {
      socketDir: this.socketDir,
      socketBase: this.socketBase,
      sharedDir: this.sharedDir,
      sharedBase: this.sharedDir ? this.options.sharedMemoryDir.path : undefined,
    });
    this.registry = registry;
    let killed: RegisteredProcess[];
    try {
      ({ killed } = registry.claim(logger));
    } catch (error) {
      // No worker will start: the directories made for them go now.
      this.removeDirs();
      throw error;
    }
    if (killed.length > 0) {
      logger.warn({ msg: 'killed workers left behind by an earlier run', instance: this.options.instanceName, pids: killed.map((p) => p.pid) });
    }
    if (!this.options.watchdog) return;
    if (!existsSync(WATCHDOG_SCRIPT)) {
      throw new Error(`Snakepit watchdog script missing at ${WATCHDOG_SCRIPT}; build the library or set watchdog: false`);
    }
    // Detached and in its own session, so signals aimed at the host's group do not reach it.
    const args = [WATCHDOG_SCRIPT, registry.path, this.runId, this.socketBase ?? '', this.sharedDir ? this.options.sharedMemoryDir.path : ''];
    this.watchdog = spawn(process.execPath, args, {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    this.watchdog.stdin?.on('error', () => undefined);
    // Neither the process nor its pipe may keep the host's event loop alive.
    this.watchdog.unref();
    (this.watchdog.stdin as Socket | null)?.unref();
  }

  /**
   * The run's shared-memory directory, when a pool uses shared memory: under
   * the default /dev/shm only if it is a writable directory (else pools use
   * gRPC messages, logged once); a directory the user named must work.
   */
  private makeSharedDir(logger: Logger): string | undefined {
    if (!this.options.pools.some((pool) => pool.sharedMemory)) return undefined;
    const { path, explicit } = this.options.sharedMemoryDir;
    try {
      if (!statSync(path).isDirectory()) throw new Error('not a directory');
      accessSync(path, constants.W_OK | constants.X_OK);
      // Mode 0700, like the socket directory: only this user can open the regions (each file is 0600 too).
      return mkdtempSync(join(path, 'snakepit-'));
    } catch (error) {
      if (explicit) {
        this.removeDirs();
        throw new SnakepitConfigError([`sharedMemoryDir ${path} cannot hold the run's shared memory: ${(error as Error).message}`]);
      }
      logger.warn({
        msg: 'shared memory is off: its directory is not usable; arrays and bytes travel in gRPC messages',
        dir: path,
        reason: (error as Error).message,
      });
      return undefined;
    }
  }

  private removeDirs(): void {
    for (const dir of [this.socketDir, this.sharedDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  }

  /** The shared-memory settings of a pool's workers, or undefined when they use gRPC messages only. */
  sharedMemoryFor(pool: ResolvedPoolOptions): SharedMemorySettings | undefined {
    if (!this.sharedDir || !pool.sharedMemory) return undefined;
    return { dir: this.sharedDir, ...pool.sharedMemory };
  }

  /** Records a worker's pid so that a later run, or the watchdog, can find it (best-effort: never throws for the file). */
  track(pid: number, workerId: string): void {
    this.startedRegistry().add(pid, workerId);
  }

  untrack(pid: number): void {
    this.startedRegistry().remove(pid);
  }

  private startedRegistry(): ProcessRegistry {
    if (!this.registry) throw new Error('WorkerRuntime.start() must run before workers are tracked');
    return this.registry;
  }

  /** The address a new worker should bind. */
  addressFor(workerId: string): string {
    if (!this.socketDir) return '127.0.0.1:0';
    const path = join(this.socketDir, `${workerId}.sock`);
    if (path.length > MAX_SOCKET_PATH) {
      throw new Error(`Socket path too long (${path.length} > ${MAX_SOCKET_PATH}): ${path}; set a shorter socketDir`);
    }
    return `unix://${path}`;
  }

  /**
   * The worker's environment: the allow-listed host variables, the module's and
   * the pool's own, and Snakepit's. Nothing else of the host crosses over.
   */
  envFor(pool: ResolvedPoolOptions, workerId: string): Record<string, string> {
    const env: Record<string, string> = {};
    for (const name of this.options.inheritEnv) {
      const value = process.env[name];
      if (value !== undefined) env[name] = value;
    }
    return {
      ...env,
      PYTHONUNBUFFERED: '1',
      ...this.options.env,
      ...pool.env,
      SNAKEPIT_AUTH_TOKEN: this.token,
      SNAKEPIT_RUN_ID: this.runId,
      SNAKEPIT_POOL: pool.name,
      SNAKEPIT_WORKER_ID: workerId,
    };
  }

  /** After every worker stopped: removes the socket directory and the registry, and lets the watchdog go. */
  dispose(): void {
    this.removeDirs();
    this.registry?.release();
    // Closing the pipe tells the watchdog to sweep: the registry is gone, so it just exits.
    this.watchdog?.stdin?.end();
    this.watchdog = undefined;
  }
}

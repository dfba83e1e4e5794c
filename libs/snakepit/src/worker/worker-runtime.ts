import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ResolvedOptions, ResolvedPoolOptions } from '../options/resolve-options';

/** Unix socket paths must fit in sockaddr_un (108 bytes on Linux, 104 on macOS). */
const MAX_SOCKET_PATH = 100;

/**
 * What all workers of one host run share: a run id, the secret every worker
 * RPC must carry, and a private (0700) directory for their sockets.
 */
export class WorkerRuntime {
  readonly runId = randomBytes(6).toString('hex');
  readonly token = randomBytes(32).toString('hex');
  readonly socketDir?: string;

  constructor(private readonly options: ResolvedOptions) {
    if (options.transport === 'unix') {
      // mkdtemp creates the directory with mode 0700: only this user can reach the sockets.
      this.socketDir = mkdtempSync(join(options.socketDir ?? tmpdir(), 'snakepit-'));
    }
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

  /** Removes the socket directory; workers must be stopped first. */
  dispose(): void {
    if (this.socketDir) rmSync(this.socketDir, { recursive: true, force: true });
  }
}

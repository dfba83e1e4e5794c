import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, freePort } from '../helpers/sample-app';

const MISSING = 'redis-server is not on PATH: the cluster tests run a real Redis. Install it (Debian/Ubuntu: apt-get install -y redis-server); .ci/run does.';

/**
 * A throw-away redis-server on a free loopback port, persisting to an AOF in
 * its own temp directory so a stop and a start keep the data (like a real
 * Redis restart). Every process it starts is killed by stop()/dispose().
 */
export class RedisServer {
  private child?: ChildProcess;
  private readonly dir = mkdtempSync(join(tmpdir(), 'snakepit-redis-'));

  private constructor(readonly port: number) {}

  static async start(): Promise<RedisServer> {
    if (spawnSync('redis-server', ['--version']).error) throw new Error(MISSING);
    const server = new RedisServer(await freePort());
    await server.resume();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the server on the same port and data directory; resolves when it answers PING. */
  async resume(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'],
      { stdio: 'ignore' },
    );
    this.child = child;
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
        return (await ping(this.port)) || undefined;
      },
      10_000,
      50,
    );
  }

  /** Stops the server (SIGKILL: Redis vanishes the way a crashed host does); data written so far stays in the AOF. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One PING over a raw socket: true when Redis answers PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
    socket.write('PING\r\n');
  });
}

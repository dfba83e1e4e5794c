import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { eventually, freePort } from '../helpers/sample-app';
import type { Issued, TestPki } from '../helpers/test-pki';

/**
 * TLS and ACL mode: the server listens on TLS only (`--port 0`), with the
 * certificate `pki` issued for it, and requires clients to present one `pki`
 * signed (`--tls-auth-clients yes`); with `user`, the default user is off and
 * only that ACL user (password, all keys, channels and commands) gets in.
 */
export interface RedisSecurity {
  pki: TestPki;
  user?: { name: string; password: string };
}

const MISSING = 'redis-server is not on PATH: the cluster tests run a real Redis. Install it (Debian/Ubuntu: apt-get install -y redis-server); .ci/run does.';

/**
 * A throw-away redis-server on a free loopback port, persisting to an AOF in
 * its own temp directory so a stop and a start keep the data (like a real
 * Redis restart). Every process it starts is killed by stop()/dispose().
 */
export class RedisServer {
  private child?: ChildProcess;
  private readonly dir = mkdtempSync(join(tmpdir(), 'snakepit-redis-'));

  /** The certificate this server presents, and the one tests use as its client (TLS mode). */
  private readonly issued?: { server: Issued; client: Issued };

  private constructor(
    readonly port: number,
    private readonly security?: RedisSecurity,
  ) {
    if (security) this.issued = { server: security.pki.issue('redis'), client: security.pki.issue('redis-client') };
  }

  static async start(security?: RedisSecurity): Promise<RedisServer> {
    if (spawnSync('redis-server', ['--version']).error) throw new Error(MISSING);
    const server = new RedisServer(await freePort(), security);
    await server.resume();
    return server;
  }

  /** `redis://127.0.0.1:<port>`; in TLS mode `rediss://`, with the ACL user's name and password (or `auth`, e.g. a wrong one). */
  get url(): string {
    return this.urlWith(this.security?.user);
  }

  urlWith(auth?: { name: string; password: string }): string {
    if (!this.security) return `redis://127.0.0.1:${this.port}`;
    const credentials = auth ? `${encodeURIComponent(auth.name)}:${encodeURIComponent(auth.password)}@` : '';
    return `rediss://${credentials}127.0.0.1:${this.port}`;
  }

  /** TLS mode: the client certificate and key issued for the tests (file paths). */
  get clientCertificate(): Issued | undefined {
    return this.issued?.client;
  }

  /** (Re)starts the server on the same port and data directory; resolves when it answers PING. */
  async resume(): Promise<void> {
    const child = spawn(
      'redis-server',
      [...this.listenArgs(), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', ...this.aclArgs()],
      { stdio: 'ignore' },
    );
    this.child = child;
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
        return (await ping(() => this.socket())) || undefined;
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

  private listenArgs(): string[] {
    if (!this.security || !this.issued) return ['--port', String(this.port)];
    const { server } = this.issued;
    return [
      '--port',
      '0',
      '--tls-port',
      String(this.port),
      '--tls-cert-file',
      server.cert,
      '--tls-key-file',
      server.key,
      '--tls-ca-cert-file',
      this.security.pki.ca,
      '--tls-auth-clients',
      'yes',
    ];
  }

  private aclArgs(): string[] {
    const user = this.security?.user;
    return user ? ['--user', 'default', 'off', '--user', user.name, 'on', `>${user.password}`, '~*', '&*', '+@all'] : [];
  }

  private socket(): Socket {
    if (!this.security || !this.issued) return createConnection({ host: '127.0.0.1', port: this.port });
    const { client } = this.issued;
    return tlsConnect({
      host: '127.0.0.1',
      port: this.port,
      ca: readFileSync(this.security.pki.ca),
      cert: readFileSync(client.cert),
      key: readFileSync(client.key),
    });
  }
}

/**
 * One PING: true when Redis answers, PONG or, with ACLs and no AUTH, NOAUTH
 * (it serves; the tests' nodes authenticate with their URL).
 */
function ping(open: () => Socket): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = open();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (data) => done(/^(\+PONG|-NOAUTH)/.test(data.toString())));
    socket.write('PING\r\n');
  });
}

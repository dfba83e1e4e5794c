import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import type { ExecuteResult, PoolInfo, PoolTools, SnakepitErrorBody, WorkerInfo } from '@snakepit/nestjs';

export const REPO_ROOT = resolve(__dirname, '..', '..');
const MAIN = join(REPO_ROOT, 'dist', 'apps', 'sample', 'main.js');

/** A port the OS just handed out on loopback (released again for the app to take). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` every `intervalMs` until it returns a value, or fails after
 * `timeoutMs` — or as soon as `giveUp()` says waiting is pointless.
 */
export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 15_000,
  intervalMs = 100,
  giveUp: () => boolean = () => false,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline && !giveUp()) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    await sleep(intervalMs);
  }
  const reason = lastError instanceof Error ? String(lastError) : JSON.stringify(lastError);
  throw new Error(`condition not met within ${timeoutMs} ms${lastError ? `: ${reason}` : ''}`);
}

export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3 is the state; a zombie has exited already.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Pids whose parent is `pid` (the host's Python workers). */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return children;
}

/** The host's Python workers among its children (the watchdog is a child too). */
export function workerPids(hostPid: number): number[] {
  return childPids(hostPid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('snakepit_bridge.worker');
    } catch {
      return false;
    }
  });
}

/** The sample app's answers, as its controllers type them; a failed call answers SnakepitErrorBody instead. */
export interface PoolList {
  pools: PoolInfo[];
}
export interface ToolList {
  pools: PoolTools[];
}
/** GET /health/{live,ready}: Terminus's body; each indicator adds its own fields (the pools one: pools, failing). */
export interface HealthBody {
  status: 'ok' | 'error' | 'shutting_down';
  info?: Record<string, IndicatorEntry>;
  error?: Record<string, IndicatorEntry>;
}
export interface IndicatorEntry {
  status: 'up' | 'down';
  message?: string;
  pools?: Record<string, unknown>;
  failing?: Record<string, string[]>;
}
/** A call a test lets succeed or fail: the fields of either answer, each there or not. */
export type ExecuteOutcome = Partial<ExecuteResult> & Partial<SnakepitErrorBody>;

export interface JsonResponse<T = unknown> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

export class SampleApp {
  readonly logs: string[] = [];
  private readonly exited: Promise<number | null>;

  constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly grpcPort: number,
  ) {
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get grpcAddress(): string {
    return `127.0.0.1:${this.grpcPort}`;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** A JSON route; `T` is the body the test expects (SnakepitErrorBody for a call meant to fail). */
  async request<T = unknown>(method: string, path: string, body?: unknown, init: RequestInit = {}): Promise<JsonResponse<T>> {
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      ...init,
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: response.status, body: parsed as T, text, headers: response.headers };
  }

  execute<T = ExecuteResult>(tool: string, args: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<JsonResponse<T>> {
    return this.request<T>('POST', '/api/execute', { tool, args, ...extra });
  }

  async workers(pool = 'default'): Promise<WorkerInfo[]> {
    return (await this.pools()).find((p) => p.name === pool)!.workers;
  }

  async pools(): Promise<PoolInfo[]> {
    return (await this.request<PoolList>('GET', '/api/pools')).body.pools;
  }

  /** Sends `signal` and waits for the app to exit; SIGKILL after `timeoutMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 20_000): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/** Starts the built sample app (dist/) with real Python workers and waits until it serves. */
export async function startSampleApp(env: Record<string, string> = {}): Promise<SampleApp> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run the README's test command (it builds first)`);
  const [port, grpcPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [MAIN], {
    cwd: REPO_ROOT,
    env: { ...process.env, PORT: String(port), GRPC_PORT: String(grpcPort), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const app = new SampleApp(child, port, grpcPort);
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream.on('data', (data: Buffer) => {
      const lines = (partial + data.toString()).split('\n');
      partial = lines.pop() ?? '';
      app.logs.push(...lines);
    });
  }
  try {
    const exited = () => child.exitCode !== null || child.signalCode !== null;
    await eventually(async () => (await app.request('GET', '/api/pools')).status === 200 || undefined, 60_000, 100, exited);
    if (exited()) throw new Error(`the app exited with ${child.exitCode ?? child.signalCode} before serving`);
  } catch (error) {
    await app.stop('SIGKILL');
    throw new Error(`sample app did not start: ${(error as Error).message}\n${app.logs.slice(-30).join('\n')}`, { cause: error });
  }
  return app;
}

/** Parses a text/event-stream body into its events. */
export function parseSse(text: string): Array<{ event: string; data: unknown; id?: string }> {
  return text
    .split('\n\n')
    .filter((block) => block.trim().length > 0)
    .map((block) => {
      const fields: Record<string, string> = {};
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart();
      }
      return { event: fields.event ?? 'message', data: fields.data ? (JSON.parse(fields.data) as unknown) : undefined, id: fields.id };
    });
}

// @ts-check
// HTTP cases: a keep-alive JSON client, the built sample app, and the two floors
// (the bare gateway and the minimal Nest app, both in bench/gateway.mjs).
import http from 'node:http';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { BENCH_DIR, REPO_ROOT, rawPool } from './raw-grpc.mjs';
import { spawnTracked, stopChild, waitForLine } from './procs.mjs';

export const SAMPLE_MAIN = path.join(REPO_ROOT, 'dist', 'apps', 'sample', 'main.js');

/** A loopback port the OS just handed out (released for the child to take). */
export function freePort() {
  return /** @type {Promise<number>} */ (
    new Promise((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const a = s.address();
        const port = typeof a === 'object' && a ? a.port : 0;
        s.close(() => resolve(port));
      });
    })
  );
}

/**
 * POSTs JSON to 127.0.0.1:port over keep-alive connections (at most `sockets`).
 * @param {number} port
 * @param {number} sockets
 */
export function jsonClient(port, sockets) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  return {
    agent,
    /** @param {string} method @param {string} urlPath @param {unknown} [body] @returns {Promise<{ status: number, body: any }>} */
    request(method, urlPath, body) {
      return new Promise((resolve, reject) => {
        const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            method,
            path: urlPath,
            agent,
            timeout: 30_000,
            headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
          },
          (res) => {
            /** @type {Buffer[]} */
            const parts = [];
            res.on('data', (d) => parts.push(d));
            res.on('end', () => {
              const text = Buffer.concat(parts).toString('utf8');
              try {
                resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
              } catch {
                reject(new Error(`bad JSON from ${urlPath} (${res.statusCode}): ${text.slice(0, 200)}`));
              }
            });
            res.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(new Error('HTTP timeout')));
        req.on('error', reject);
        req.end(payload);
      });
    },
    close() {
      agent.destroy();
    },
  };
}

/**
 * Starts the built sample app (`node dist/apps/sample/main.js`) with a pool of `size`
 * in the `thread` profile, `threadsPerWorker` calls at once per worker: like the raw
 * workers behind the floors, which run every call of the stream concurrently.
 * @param {{ size: number, threadsPerWorker: number, sockets: number, socketDir: string }} o
 */
export async function startSampleApp({ size, threadsPerWorker, sockets, socketDir }) {
  if (!existsSync(SAMPLE_MAIN)) throw new Error(`${SAMPLE_MAIN} is missing: run \`npm run build\` first`);
  const [port, grpcPort] = [await freePort(), await freePort()];
  const child = spawnTracked(process.execPath, [SAMPLE_MAIN], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      GRPC_HOST: '127.0.0.1',
      PORT: String(port),
      GRPC_PORT: String(grpcPort),
      SNAKEPIT_POOL_SIZE: String(size),
      SNAKEPIT_PROFILE: 'thread',
      SNAKEPIT_THREADS_PER_WORKER: String(threadsPerWorker),
      // its own instance, registry and sockets: never mistaken for (or mistaking) another host's workers
      SNAKEPIT_INSTANCE: `bench-${process.pid}-app${size}`,
      SNAKEPIT_STATE_DIR: socketDir,
      SNAKEPIT_SOCKET_DIR: socketDir,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  /** @type {string[]} */
  const logs = [];
  for (const s of [child.stdout, child.stderr]) s?.on('data', (d) => logs.length < 200 && logs.push(String(d)));
  const client = jsonClient(port, sockets);
  const deadline = Date.now() + 60_000;
  /** @type {number[]} */
  let workerPids = [];
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sample app exited (${child.exitCode}): ${logs.join('').slice(-1500)}`);
    try {
      const { status, body } = await client.request('GET', '/api/pools');
      const pool = body?.pools?.find((/** @type {any} */ p) => p.name === 'default');
      if (status === 200 && pool && pool.ready === size) {
        workerPids = pool.workers.map((/** @type {any} */ w) => w.pid);
        break;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (workerPids.length !== size) {
    await stopChild(child, 5000);
    throw new Error(`sample app did not get ready: ${logs.join('').slice(-1500)}`);
  }
  return {
    hostPid: /** @type {number} */ (child.pid),
    workerPids,
    call: executeOver(client),
    async close() {
      client.close();
      // SIGTERM: the app drains and stops its workers itself
      await stopChild(child, 15_000);
    },
  };
}

/**
 * `call(tool, args)` through POST /api/execute (the sample app and the gateway share the contract).
 * @param {ReturnType<typeof jsonClient>} client
 */
function executeOver(client) {
  /** @param {string} tool @param {object} args */
  return async (tool, args) => {
    const { status, body } = await client.request('POST', '/api/execute', { tool, args });
    if (status !== 200) throw new Error(`HTTP ${status}: ${JSON.stringify(body).slice(0, 200)}`);
    return body.result;
  };
}

/**
 * Starts `size` raw workers and a floor in front of them: the bare gateway, or with
 * `nest` the minimal Nest app.
 * @param {{ size: number, sockets: number, socketDir: string, nest?: boolean }} o
 */
export async function startGateway({ size, sockets, socketDir, nest = false }) {
  const workers = await rawPool({ n: size, kind: 'bidi', socketDir, tag: `${nest ? 'nest' : 'gw'}${size}` });
  // the gateway makes its own connections; ours are not needed
  for (const c of workers.conns) c.close();
  const args = [path.join(BENCH_DIR, 'gateway.mjs'), ...(nest ? ['--nest'] : []), workers.workers.map((w) => w.address).join(',')];
  const child = spawnTracked(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_ENV: 'production' },
  });
  const port = Number(await waitForLine(child, /^READY (\d+)/, 20_000, 'gateway'));
  const client = jsonClient(port, sockets);
  return {
    hostPid: /** @type {number} */ (child.pid),
    workerPids: workers.pids,
    call: executeOver(client),
    async close() {
      client.close();
      await stopChild(child);
      await workers.close();
    },
  };
}

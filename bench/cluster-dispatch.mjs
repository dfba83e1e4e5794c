#!/usr/bin/env node
// @ts-check
// Remote vs local dispatch in cluster mode (issue 7): calls/s of PoolService.execute
// for a pool this process runs ("local") and for a pool only another node runs
// ("remote": one extra hop over the internal ClusterNode gRPC service).
//
//   npm run build && node bench/cluster-dispatch.mjs [--c 1,8,32] [--rounds 3] [--duration-ms 2000]
//
// Both nodes are the same bare Nest context (SnakepitModule only, no HTTP, no
// metrics), each with one pool of `--size` workers of the showcase adapter; the
// tool is `add` (no Python work), so the numbers are dispatch overhead. This
// process is the calling node; the remote node is this script run with --node.
// Everything binds 127.0.0.1, every run is bounded, and every process started is
// stopped by pid (bench/lib/procs.mjs). Results: stdout and bench/results/cluster-dispatch.json.
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { PoolService, SnakepitModule } from '@snakepit/nestjs';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from './lib/http.mjs';
import { closedLoop, median } from './lib/loadgen.mjs';
import { killAllSync, registerCleanup, spawnTracked, stopAll, waitForLine } from './lib/procs.mjs';
import { BENCH_DIR, PYTHON } from './lib/raw-grpc.mjs';
import { SHOWCASE } from './lib/snakepit.mjs';

const { values: opt } = parseArgs({
  options: {
    c: { type: 'string', default: '1,8,32' },
    rounds: { type: 'string', default: '3' },
    'duration-ms': { type: 'string', default: '2000' },
    'warmup-ms': { type: 'string', default: '300' },
    size: { type: 'string', default: '2' },
    // internal: run as the remote node (pool `remote`) on this Redis and state directory
    node: { type: 'string' },
    dir: { type: 'string' },
  },
});
const SIZE = Number(opt.size);
const SECRET = 'bench-cluster-secret-0123456789';

/**
 * A node: a Nest context with one pool and cluster mode on.
 * @param {{ redis: string, dir: string, nodeId: string, pool: string }} o
 */
async function startNode({ redis, dir, nodeId, pool }) {
  const app = await NestFactory.createApplicationContext(
    SnakepitModule.forRoot({
      python: PYTHON,
      pools: [{ name: pool, size: SIZE, adapter: SHOWCASE }],
      socketDir: dir,
      stateDir: dir,
      instanceName: `bench-cluster-${nodeId}-${process.pid}`,
      cluster: { redis, secret: SECRET, nodeId },
    }),
    { logger: ['error', 'warn'], abortOnError: false },
  );
  app.enableShutdownHooks();
  return app;
}

/** The remote node: serves until SIGTERM (or until its parent's stdin pipe closes). */
async function serveRemoteNode() {
  await startNode({ redis: /** @type {string} */ (opt.node), dir: /** @type {string} */ (opt.dir), nodeId: 'bench-remote', pool: 'remote' });
  process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM')).resume();
  console.log('NODE READY');
}

async function measure() {
  const concurrencies = opt.c.split(',').map(Number);
  const rounds = Number(opt.rounds);
  const durationMs = Number(opt['duration-ms']);
  const warmupMs = Number(opt['warmup-ms']);
  process.on('exit', killAllSync);
  for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
    process.on(signal, () => void stopAll().finally(() => process.exit(130)));
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'snakepit-cluster-bench-'));
  registerCleanup(async () => rmSync(dir, { recursive: true, force: true }));

  const redisPort = await freePort();
  const redisServer = spawnTracked('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { cwd: dir });
  await waitForLine(redisServer, /(Ready to accept connections)/, 10_000, 'redis-server');
  const redis = `redis://127.0.0.1:${redisPort}`;

  const remoteNode = spawnTracked(process.execPath, [fileURLToPath(import.meta.url), '--node', redis, '--dir', dir, '--size', String(SIZE)]);
  await waitForLine(remoteNode, /(NODE READY)/, 60_000, 'remote node');
  const app = await startNode({ redis, dir, nodeId: 'bench-caller', pool: 'local' });
  registerCleanup(() => app.close());
  const pools = app.get(PoolService);
  const deadline = Date.now() + 30_000;
  while (!pools.listTools().some((entry) => entry.pool === 'remote')) {
    if (Date.now() > deadline) throw new Error('the remote node did not join the cluster');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const check = async (/** @type {string} */ pool) => {
    const out = await pools.execute('add', { a: 1, b: 2 }, { pool });
    if (out.result !== 3) throw new Error(`wrong answer from ${pool}: ${JSON.stringify(out.result)}`);
  };

  /** @type {Array<{ case: string, concurrency: number, rps: number, p50_ms: number, p99_ms: number, caller_cpu_us: number, remote_node_cpu_us: number, errors: number }>} */
  const rows = [];
  for (const concurrency of concurrencies) {
    /** @type {Record<string, import('./lib/loadgen.mjs').LoadResult[]>} */
    const runs = { local: [], remote: [] };
    for (let round = 0; round < rounds; round++) {
      // Alternate the order so neither case always runs on a warmer machine.
      for (const pool of round % 2 === 0 ? ['local', 'remote'] : ['remote', 'local']) {
        runs[pool].push(await closedLoop(() => check(pool), { concurrency, warmupMs, durationMs, hostPids: [/** @type {number} */ (remoteNode.pid)] }));
      }
    }
    for (const [name, results] of Object.entries(runs)) {
      rows.push({
        case: name,
        concurrency,
        rps: median(results.map((r) => r.rps)),
        p50_ms: median(results.map((r) => r.p50_ms)),
        p99_ms: median(results.map((r) => r.p99_ms)),
        caller_cpu_us: median(results.map((r) => r.cpu_client_us)),
        remote_node_cpu_us: median(results.map((r) => r.cpu_host_us)),
        errors: results.reduce((sum, r) => sum + r.errors, 0),
      });
    }
  }

  const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, load average ${os.loadavg()[0].toFixed(1)}`;
  console.log(`cluster dispatch: add on pools of ${SIZE} workers, ${rounds} rounds x ${durationMs} ms, median; ${machine}`);
  // CPU per call in µs, Python excluded: this process (the calling node) and the remote node's process.
  console.log('case    c    calls/s   p50 ms   p99 ms  caller µs  remote µs  errors');
  for (const row of rows) {
    const cells = [row.rps.toFixed(0), row.p50_ms.toFixed(2), row.p99_ms.toFixed(2), row.caller_cpu_us.toFixed(0), row.remote_node_cpu_us.toFixed(0)];
    console.log(
      `${row.case.padEnd(7)} ${String(row.concurrency).padStart(2)} ${cells.map((cell, i) => cell.padStart([10, 8, 8, 10, 10][i])).join(' ')} ${String(row.errors).padStart(7)}`,
    );
  }
  const out = path.join(BENCH_DIR, 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'cluster-dispatch.json'), JSON.stringify({ machine, size: SIZE, rounds, durationMs, rows }, null, 2));
}

(opt.node ? serveRemoteNode() : measure().finally(() => stopAll())).catch((error) => {
  console.error(error);
  process.exitCode = 1;
});

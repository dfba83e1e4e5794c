#!/usr/bin/env node
// @ts-check
// Remote vs local dispatch in cluster mode (issues 7 and 15): calls/s of
// PoolService.execute for a pool this process runs ("local"), for a pool only
// another node runs ("remote": one extra hop over the internal ClusterNode gRPC
// service, plaintext) and the same over mutual TLS ("remote-tls"), in one run,
// rounds interleaved, with the ratios printed at the end.
//
//   npm run build && node bench/cluster-dispatch.mjs [--c 1,8,32] [--rounds 3] [--duration-ms 2000]
//
// Every node is the same bare Nest context (SnakepitModule only, no HTTP, no
// metrics), each with one pool of `--size` workers of the showcase adapter; the
// tool is `add` (no Python work), so the numbers are dispatch overhead. TLS is
// set per cluster, so there are two: this process is the calling node of both
// (one context each, on one Redis under two key prefixes), and each remote node
// is this script run with --node. The TLS cluster's CA and node certificates are
// made for this run in its temp directory (test/helpers/test-pki.ts, openssl).
// Everything binds 127.0.0.1, every run is bounded, and every process started is
// stopped by pid (bench/lib/procs.mjs). Results: stdout and bench/results/cluster-dispatch.json.
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { PoolService, SnakepitModule } from '@snakepit/nestjs';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from './lib/http.mjs';
import { closedLoop, median } from './lib/loadgen.mjs';
import { killAllSync, registerCleanup, spawnTracked, stopAll, waitForLine } from './lib/procs.mjs';
import { BENCH_DIR, PYTHON, REPO_ROOT } from './lib/raw-grpc.mjs';
import { SHOWCASE } from './lib/snakepit.mjs';

const { values: opt } = parseArgs({
  options: {
    c: { type: 'string', default: '1,8,32' },
    rounds: { type: 'string', default: '3' },
    'duration-ms': { type: 'string', default: '2000' },
    'warmup-ms': { type: 'string', default: '300' },
    size: { type: 'string', default: '2' },
    // internal: run as a remote node (pool --pool, key prefix --prefix, TLS files --tls as JSON) on this Redis and state directory
    node: { type: 'string' },
    dir: { type: 'string' },
    pool: { type: 'string' },
    prefix: { type: 'string' },
    tls: { type: 'string' },
  },
});
const SIZE = Number(opt.size);
const SECRET = 'bench-cluster-secret-0123456789';

/** @typedef {{ ca: string, cert: string, key: string }} TlsFiles */

/**
 * A node: a Nest context with one pool and cluster mode on.
 * @param {{ redis: string, dir: string, nodeId: string, pool: string, keyPrefix: string, tls?: TlsFiles }} o
 */
async function startNode({ redis, dir, nodeId, pool, keyPrefix, tls }) {
  const app = await NestFactory.createApplicationContext(
    SnakepitModule.forRoot({
      python: PYTHON,
      pools: [{ name: pool, size: SIZE, adapter: SHOWCASE }],
      socketDir: dir,
      stateDir: dir,
      instanceName: `bench-cluster-${nodeId}-${process.pid}`,
      cluster: { redis, secret: SECRET, nodeId, keyPrefix, tls },
    }),
    { logger: ['error', 'warn'], abortOnError: false },
  );
  app.enableShutdownHooks();
  return app;
}

/** A remote node: serves until SIGTERM (or until its parent's stdin pipe closes). */
async function serveRemoteNode() {
  const pool = /** @type {string} */ (opt.pool);
  const tls = opt.tls ? /** @type {TlsFiles} */ (JSON.parse(opt.tls)) : undefined;
  await startNode({
    redis: /** @type {string} */ (opt.node),
    dir: /** @type {string} */ (opt.dir),
    nodeId: `bench-${pool}`,
    pool,
    keyPrefix: /** @type {string} */ (opt.prefix),
    tls,
  });
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
  // At exit, after every process was stopped: a node still running re-creates its state directory in here.
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

  const redisPort = await freePort();
  const redisServer = spawnTracked('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { cwd: dir });
  await waitForLine(redisServer, /(Ready to accept connections)/, 10_000, 'redis-server');
  const redis = `redis://127.0.0.1:${redisPort}`;

  const TestPki = loadTestPki(dir);
  const pki = TestPki.create('snakepit-bench-ca');
  registerCleanup(async () => pki.dispose());
  /** @type {(name: string) => TlsFiles} */
  const tlsFor = (name) => ({ ca: pki.ca, ...pki.issue(name) });

  // Two clusters on one Redis: plaintext (the caller's own pool `local`, the remote node's `remote`) and mutual TLS
  // (pool `remote-tls`; the caller's pool there, `idle`, is never called).
  const clusters = [
    { prefix: 'bench-plain:', pool: 'remote', local: 'local', tls: undefined },
    { prefix: 'bench-tls:', pool: 'remote-tls', local: 'idle', tls: tlsFor('bench-remote-tls') },
  ];
  /** @type {Record<string, { pools: PoolService, remotePid: number | undefined }>} */
  const cases = {};
  for (const cluster of clusters) {
    const args = ['--node', redis, '--dir', dir, '--size', String(SIZE), '--pool', cluster.pool, '--prefix', cluster.prefix];
    const remoteNode = spawnTracked(process.execPath, [
      fileURLToPath(import.meta.url),
      ...args,
      ...(cluster.tls ? ['--tls', JSON.stringify(cluster.tls)] : []),
    ]);
    await waitForLine(remoteNode, /(NODE READY)/, 60_000, `remote node ${cluster.pool}`);
    const tls = cluster.tls && tlsFor(`bench-caller-${cluster.local}`);
    const app = await startNode({ redis, dir, nodeId: `bench-caller-${cluster.local}`, pool: cluster.local, keyPrefix: cluster.prefix, tls });
    registerCleanup(() => app.close());
    const pools = app.get(PoolService);
    const deadline = Date.now() + 30_000;
    while (!pools.listTools().some((entry) => entry.pool === cluster.pool)) {
      if (Date.now() > deadline) throw new Error(`the remote node did not join the cluster ${cluster.prefix}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    cases[cluster.pool] = { pools, remotePid: remoteNode.pid };
    if (cluster.local === 'local') cases.local = { pools, remotePid: remoteNode.pid };
  }
  const check = async (/** @type {string} */ pool) => {
    const out = await cases[pool].pools.execute('add', { a: 1, b: 2 }, { pool });
    if (out.result !== 3) throw new Error(`wrong answer from ${pool}: ${JSON.stringify(out.result)}`);
  };
  const names = ['local', 'remote', 'remote-tls'];

  /** @type {Array<{ case: string, concurrency: number, rps: number, p50_ms: number, p99_ms: number, caller_cpu_us: number, remote_node_cpu_us: number, errors: number }>} */
  const rows = [];
  for (const concurrency of concurrencies) {
    /** @type {Record<string, import('./lib/loadgen.mjs').LoadResult[]>} */
    const runs = { local: [], remote: [], 'remote-tls': [] };
    for (let round = 0; round < rounds; round++) {
      // Rotate the order so no case always runs first, on a cooler machine, or last.
      for (const pool of names.map((_, i) => names[(i + round) % names.length])) {
        const hostPids = [/** @type {number} */ (cases[pool].remotePid)];
        runs[pool].push(await closedLoop(() => check(pool), { concurrency, warmupMs, durationMs, hostPids }));
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
  // ("local" runs no remote node: its remote µs is the idle plaintext remote node's, about 0.)
  console.log('case        c    calls/s   p50 ms   p99 ms  caller µs  remote µs  errors');
  for (const row of rows) {
    const cells = [row.rps.toFixed(0), row.p50_ms.toFixed(2), row.p99_ms.toFixed(2), row.caller_cpu_us.toFixed(0), row.remote_node_cpu_us.toFixed(0)];
    console.log(
      `${row.case.padEnd(11)} ${String(row.concurrency).padStart(2)} ${cells.map((cell, i) => cell.padStart([10, 8, 8, 10, 10][i])).join(' ')} ${String(row.errors).padStart(7)}`,
    );
  }
  const ratios = concurrencies.map((concurrency) => {
    const [local, plain, tls] = names.map((name) => rows.find((row) => row.case === name && row.concurrency === concurrency));
    if (!local || !plain || !tls) throw new Error(`a case is missing at concurrency ${concurrency}`);
    return {
      concurrency,
      remote_vs_local_rps: plain.rps / local.rps,
      tls_vs_local_rps: tls.rps / local.rps,
      tls_vs_remote_rps: tls.rps / plain.rps,
      tls_vs_remote_p50: tls.p50_ms / plain.p50_ms,
      tls_vs_remote_cpu: (tls.caller_cpu_us + tls.remote_node_cpu_us) / (plain.caller_cpu_us + plain.remote_node_cpu_us),
    };
  });
  console.log('ratios      c  remote/local  tls/local  tls/remote calls/s  tls/remote p50  tls/remote CPU');
  for (const r of ratios) {
    const cells = [r.remote_vs_local_rps, r.tls_vs_local_rps, r.tls_vs_remote_rps, r.tls_vs_remote_p50, r.tls_vs_remote_cpu].map((x) => x.toFixed(2));
    console.log(`${''.padEnd(11)} ${String(r.concurrency).padStart(2)} ${cells.map((cell, i) => cell.padStart([13, 10, 19, 15, 15][i])).join(' ')}`);
  }
  const out = path.join(BENCH_DIR, 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'cluster-dispatch.json'), JSON.stringify({ machine, size: SIZE, rounds, durationMs, rows, ratios }, null, 2));
}

/**
 * The tests' throw-away CA (test/helpers/test-pki.ts: the openssl CLI, P-256, one day), transpiled here with the
 * TypeScript compiler the repository already has: this script runs as plain JavaScript, and one PKI helper serves both.
 * @param {string} dir where the transpiled module is written
 * @returns {typeof import('../test/helpers/test-pki').TestPki}
 */
function loadTestPki(dir) {
  const require = createRequire(import.meta.url);
  const ts = require('typescript');
  const source = readFileSync(path.join(REPO_ROOT, 'test', 'helpers', 'test-pki.ts'), 'utf8');
  const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } });
  const file = path.join(dir, 'test-pki.cjs');
  writeFileSync(file, outputText);
  return require(file).TestPki;
}

(opt.node ? serveRemoteNode() : measure().finally(() => stopAll())).catch((error) => {
  console.error(error);
  process.exitCode = 1;
});

#!/usr/bin/env node
// @ts-check
// Snakepit benchmark suite (issue 6). `npm run bench` (full, ~4 min on 2 cores)
// or `npm run bench:smoke` (every case for a moment, to prove the suite runs).
// See bench/README.md for the cases and docs/performance.md for the results.
//
// Safety: every server binds 127.0.0.1 or a Unix socket in a private temp dir;
// every measurement is bounded in time and call count; a watchdog ends the run
// after --max-seconds; every process started is stopped by pid at the end, on
// errors and on SIGINT/SIGTERM/SIGHUP (and SIGKILLed if the harness exits).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { closedLoop, median } from './lib/loadgen.mjs';
import { killAllSync, liveChildren, pidRssBytes, pidsCpuSeconds, registerCleanup, selfCpuSeconds, stopAll, waitForLine } from './lib/procs.mjs';
import { BENCH_DIR, PYTHON, REPO_ROOT, UnaryConn, countStream, generateStubs, rawPool, spawnRawWorker } from './lib/raw-grpc.mjs';
import { pyshellPool } from './lib/pyshell.mjs';
import { startSnakepit } from './lib/snakepit.mjs';
import { startGateway, startSampleApp } from './lib/http.mjs';
import { f0, f2, f3, fk, loadTable, pairwise, summarize, targetsTable } from './lib/report.mjs';
import { payloadChecks, payloadMarkdown, sectionPayload, thresholdMarkdown } from './payload.mjs';

// ------------------------------------------------------------------ options
const { values: opt } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    'duration-ms': { type: 'string' },
    'warmup-ms': { type: 'string' },
    n: { type: 'string', default: '1,2' },
    c: { type: 'string', default: '1,8,64' },
    'cpu-ms': { type: 'string', default: '2' },
    sections: { type: 'string', default: 'throughput,http,cold,scale,memory,stream,payload' },
    'payload-mib': { type: 'string' },
    only: { type: 'string', default: '' },
    skip: { type: 'string', default: '' },
    'cold-k': { type: 'string', default: '1,4,16' },
    'scale-size': { type: 'string' },
    capacity: { type: 'string', default: '64' },
    'pool-options': { type: 'string', default: '' },
    'worker-env': { type: 'string', default: '' },
    'max-seconds': { type: 'string' },
    out: { type: 'string', default: path.join(BENCH_DIR, 'results') },
    strict: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  console.log(readFileSync(path.join(BENCH_DIR, 'README.md'), 'utf8'));
  process.exit(0);
}
const SMOKE = opt.smoke;
const ints = (/** @type {string} */ s) => s.split(',').filter(Boolean).map(Number);
const ROUNDS = Number(opt.rounds ?? (SMOKE ? 1 : 5));
const DURATION = Number(opt['duration-ms'] ?? (SMOKE ? 120 : 250));
const WARMUP = Number(opt['warmup-ms'] ?? (SMOKE ? 40 : 100));
const NS = ints(opt.n);
const CS = ints(opt.c);
const CMAX = Math.max(...CS);
const CPU_MS = Number(opt['cpu-ms']);
const SECTIONS = new Set(opt.sections.split(','));
const COLD_K = ints(opt['cold-k']);
const SCALE = Number(opt['scale-size'] ?? (SMOKE ? 4 : 32));
const CAPACITY = Number(opt.capacity);
const PAYLOAD_MIB = ints(opt['payload-mib'] ?? (SMOKE ? '1' : '1,8,64,256'));
const MAX_SECONDS = Number(opt['max-seconds'] ?? (SMOKE ? 180 : 480));
/** Extra pool options / worker environment for every in-process Snakepit pool (A/B experiments). */
const SP_EXTRA = {
  ...(opt['pool-options'] ? { poolOptions: JSON.parse(opt['pool-options']) } : {}),
  ...(opt['worker-env'] ? { env: JSON.parse(opt['worker-env']) } : {}),
};
const ONLY = opt.only ? new RegExp(opt.only) : null;
const SKIP = opt.skip ? new RegExp(opt.skip) : null;
const wanted = (/** @type {string} */ name) => (!ONLY || ONLY.test(name)) && (!SKIP || !SKIP.test(name));
const started = performance.now();
const log = (/** @type {unknown[]} */ ...a) => console.error(`[bench +${((performance.now() - started) / 1000).toFixed(1)}s]`, ...a);

// ------------------------------------------------------------------ safety nets
const watchdog = setTimeout(() => {
  console.error(`[bench] watchdog: over --max-seconds=${MAX_SECONDS}; killing every child and exiting`);
  killAllSync();
  process.exit(3);
}, MAX_SECONDS * 1000);
watchdog.unref();
process.on('exit', killAllSync);
let interrupted = false;
for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
  process.on(sig, async () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`[bench] ${sig}: stopping everything`);
    await stopAll();
    process.exit(130);
  });
}
const fatal = async (/** @type {unknown} */ e) => {
  console.error('[bench] fatal:', e);
  await stopAll();
  process.exit(1);
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

// ------------------------------------------------------------------ calls
/** The argument/answer of each tool (every answer is checked). */
const TOOLS = {
  add: {
    args: (/** @type {number} */ i) => ({ a: i % 1000, b: 7 }),
    check: (/** @type {number} */ i, /** @type {unknown} */ v) => v === (i % 1000) + 7,
  },
  cpu: {
    args: () => ({ ms: CPU_MS }),
    check: (/** @type {number} */ _i, /** @type {unknown} */ v) => Number.isInteger(v) && /** @type {number} */ (v) > 0,
  },
};

/**
 * A call function for closedLoop from a backend's `call(tool, args)` (value or ExecuteResult).
 * @param {(tool: string, args: object) => Promise<unknown>} callFn
 * @param {'add'|'cpu'} tool
 * @param {boolean} [wrapped] the backend answers an ExecuteResult ({ result })
 */
function toolCall(callFn, tool, wrapped = false) {
  const t = TOOLS[tool];
  return async (/** @type {number} */ i) => {
    const out = await callFn(tool, t.args(i));
    const v = wrapped ? /** @type {any} */ (out).result : out;
    if (!t.check(i, v)) throw new Error(`${tool}: wrong answer ${JSON.stringify(out)} for call ${i}`);
  };
}

/**
 * Session-bound calls: each virtual client owns a session and alternates
 * session_put(k, i) / session_get(k), checking it reads back what it wrote.
 * Counts how often a call ran on the worker that served the session last.
 * @param {Awaited<ReturnType<typeof startSnakepit>>} sp
 */
function sessionCall(sp) {
  /** @type {{ id: string, n: number, last: number, worker: string }[]} */
  const clients = [];
  const stats = { calls: 0, sameWorker: 0 };
  const fn = async (/** @type {number} */ i, /** @type {number} */ k) => {
    let s = clients[k];
    if (!s) {
      const created = await sp.sessions.create({ ttlSeconds: 600 });
      s = clients[k] = { id: created.sessionId, n: 0, last: -1, worker: '' };
    }
    const put = s.n++ % 2 === 0;
    const r = put
      ? await sp.pools.execute('session_put', { key: 'v', value: i }, { sessionId: s.id })
      : await sp.pools.execute('session_get', { key: 'v' }, { sessionId: s.id });
    if (put) s.last = i;
    else if (r.result !== s.last) throw new Error(`session read ${JSON.stringify(r.result)}, wrote ${s.last}`);
    stats.calls++;
    if (r.workerId === s.worker) stats.sameWorker++;
    s.worker = r.workerId;
  };
  return { fn, stats };
}

// ------------------------------------------------------------------ measurement loop
/** @typedef {import('./lib/report.mjs').Cell} Cell */
/** @type {Cell[]} */
const cells = [];

/**
 * @typedef {object} Case
 * @property {string} kase
 * @property {(i: number, k: number) => Promise<unknown>} fn
 * @property {number[]} [hostPids]
 * @property {number[]} workerPids
 * @property {() => Record<string, number>} [extra]
 * @property {number} [durationMs]
 * @property {boolean} [little] report calls/s as c ÷ mean latency (bursty completions, see README)
 */

/**
 * Runs `groups` (each a list of cases measured back to back at one concurrency)
 * for ROUNDS rounds, alternating the order of groups and of cases every round.
 * @param {string} section
 * @param {{ tool: string, n: number, c: number, cases: Case[] }[]} groups
 */
async function measureRounds(section, groups) {
  /** @type {Map<Case, Cell>} */
  const cellOf = new Map();
  for (const g of groups) {
    for (const cs of g.cases) {
      const cell = { section, tool: g.tool, kase: cs.kase, n: g.n, c: g.c, rounds: [] };
      cells.push(cell);
      cellOf.set(cs, cell);
    }
  }
  for (let r = 0; r < ROUNDS; r++) {
    const forward = r % 2 === 0;
    const gs = forward ? groups : [...groups].reverse();
    log(`${section} round ${r + 1}/${ROUNDS}: ${gs.reduce((s, g) => s + g.cases.length, 0)} cells`);
    for (const g of gs) {
      const order = forward ? g.cases : [...g.cases].reverse();
      for (const cs of order) {
        const res = await closedLoop(cs.fn, {
          concurrency: g.c,
          warmupMs: WARMUP,
          durationMs: cs.durationMs ?? DURATION,
          maxCalls: 2_000_000,
          hostPids: cs.hostPids,
          workerPids: cs.workerPids,
        });
        const cell = /** @type {Cell} */ (cellOf.get(cs));
        if (cs.little) res.rps = res.rps_little;
        cell.rounds[r] = res;
        if (res.errors || res.drainTimedOut)
          log(`  ${section} ${g.tool} ${cs.kase} N=${g.n} c=${g.c}: errors=${res.errors} drainTimedOut=${res.drainTimedOut} ${res.firstError ?? ''}`);
      }
    }
  }
  for (const g of groups) for (const cs of g.cases) if (cs.extra) /** @type {Cell} */ (cellOf.get(cs)).extra = cs.extra();
}

/** Runs `fn` a few times so JITs, channels and Python imports are warm before measuring. */
async function warm(/** @type {(i: number, k: number) => Promise<unknown>} */ fn, calls = 200) {
  for (let i = 0; i < calls; i += 8) await Promise.all(Array.from({ length: 8 }, (_, k) => fn(i + k, k)));
}

// ------------------------------------------------------------------ sections
/** @type {string[]} */
const startErrors = [];
const socketDir = mkdtempSync(path.join(os.tmpdir(), 'spbench-'));
registerCleanup(async () => rmSync(socketDir, { recursive: true, force: true }));

async function sectionThroughput() {
  for (const n of NS) {
    log(`throughput N=${n}: starting backends`);
    /** @type {{ close: () => Promise<unknown> }[]} */
    const open = [];
    const start = async (/** @type {string} */ name, /** @type {() => Promise<any>} */ make) => {
      if (!wanted(name)) return null;
      try {
        const b = await make();
        open.push(b);
        return b;
      } catch (e) {
        startErrors.push(`${name} N=${n}: ${/** @type {Error} */ (e).message}`);
        log(`could not start ${name} N=${n}:`, /** @type {Error} */ (e).message);
        return null;
      }
    };
    try {
      const bidi = await start('raw-bidi', () => rawPool({ n, kind: 'bidi', socketDir, tag: `b${n}` }));
      const bidiThreads = await start('raw-bidi-threads', () => rawPool({ n, kind: 'bidi', dispatch: 'threads', socketDir, tag: `t${n}` }));
      const unary = await start('raw-unary', () => rawPool({ n, kind: 'unary', socketDir, tag: `u${n}` }));
      const shell = await start('pyshell', () => pyshellPool(n));
      const sp = await start('snakepit', () => startSnakepit({ size: n, threadsPerWorker: CAPACITY, ...SP_EXTRA }));
      const sp1 = await start('snakepit-process', () => startSnakepit({ size: n, ...SP_EXTRA }));
      // The default process profile with calls pipelined to busy workers, so they share gRPC messages.
      const spPipe = await start('snakepit-pipelined', () =>
        startSnakepit({ size: n, ...SP_EXTRA, poolOptions: { pipelineDepth: CAPACITY, ...SP_EXTRA.poolOptions } }),
      );
      /** @type {{ tool: string, n: number, c: number, cases: Case[] }[]} */
      const groups = [];
      /** @type {ReturnType<typeof sessionCall> | null} */
      let ses = null;
      for (const tool of /** @type {const} */ (['add', 'cpu'])) {
        /** @type {Case[]} */
        const base = [];
        const raw = (/** @type {string} */ kase, /** @type {any} */ b) => b && base.push({ kase, fn: toolCall(b.call, tool), workerPids: b.pids });
        raw('raw-bidi', bidi);
        raw('raw-bidi-threads', bidiThreads);
        raw('raw-unary', unary);
        raw('pyshell', shell);
        if (sp) base.push({ kase: 'snakepit', fn: toolCall(sp.call, tool, true), workerPids: sp.pids });
        if (sp1) base.push({ kase: 'snakepit-process', fn: toolCall(sp1.call, tool, true), workerPids: sp1.pids });
        if (spPipe) base.push({ kase: 'snakepit-pipelined', fn: toolCall(spPipe.call, tool, true), workerPids: spPipe.pids });
        // A 2 ms tool completes in bursts at c=64 (64 x 2 ms = 128 ms per round trip of the
        // closed loop on one worker): a longer window keeps the count from being a few bursts.
        if (tool === 'cpu') {
          for (const cs of base) {
            cs.durationMs = Math.max(2 * DURATION, 250);
            cs.little = true;
          }
        }
        if (tool === 'add' && sp && wanted('snakepit-session')) {
          ses = sessionCall(sp);
          const stats = ses.stats;
          base.push({ kase: 'snakepit-session', fn: ses.fn, workerPids: sp.pids, extra: () => ({ affinity: stats.sameWorker / Math.max(1, stats.calls) }) });
        }
        for (const cs of base) await warm(cs.fn, tool === 'cpu' ? 16 : 200);
        for (const c of CS) {
          // one Case object per concurrency so every cell keeps its own rounds
          groups.push({ tool, n, c, cases: base.map((b) => ({ ...b })) });
        }
      }
      await measureRounds('throughput', groups);
    } finally {
      await Promise.all(open.map((b) => b.close().catch((/** @type {Error} */ e) => log('close failed:', e.message))));
    }
  }
}

async function sectionHttp() {
  for (const n of NS) {
    log(`http N=${n}: starting the sample app, the minimal Nest app and the bare gateway`);
    /** @type {{ close: () => Promise<unknown> }[]} */
    const open = [];
    try {
      /** @type {Case[]} */
      const base = [];
      for (const [kase, make] of /** @type {const} */ ([
        ['http-gateway', () => startGateway({ size: n, sockets: CMAX, socketDir })],
        ['http-nest-floor', () => startGateway({ size: n, sockets: CMAX, socketDir, nest: true })],
        ['http-sample-app', () => startSampleApp({ size: n, threadsPerWorker: CAPACITY, sockets: CMAX, socketDir })],
      ])) {
        if (!wanted(kase)) continue;
        try {
          const b = await make();
          open.push(b);
          base.push({ kase, fn: toolCall(b.call, 'add'), hostPids: [b.hostPid], workerPids: b.workerPids });
        } catch (e) {
          startErrors.push(`${kase} N=${n}: ${/** @type {Error} */ (e).message}`);
          log(`could not start ${kase} N=${n}:`, /** @type {Error} */ (e).message);
        }
      }
      for (const cs of base) await warm(cs.fn, 400);
      await measureRounds(
        'http',
        CS.map((c) => ({ tool: 'add', n, c, cases: base.map((b) => ({ ...b })) })),
      );
    } finally {
      await Promise.all(open.map((b) => b.close().catch(() => undefined)));
    }
  }
}

/** @type {{ kind: string, k: number, ms: number[] }[]} */
const cold = [];
async function sectionCold() {
  const reps = SMOKE ? 1 : 3;
  /** @type {Record<string, (k: number) => Promise<number>>} */
  const kinds = {
    snakepit: async (k) => {
      const t0 = performance.now();
      const sp = await startSnakepit({ size: k, ...SP_EXTRA });
      try {
        const r = await sp.call('add', { a: 1, b: 2 });
        if (r.result !== 3) throw new Error('bad cold-start answer');
        return performance.now() - t0;
      } finally {
        await sp.close();
      }
    },
    'bare-grpcio': async (k) => {
      const t0 = performance.now();
      const tag = `cold${Date.now().toString(36)}`;
      const started = await Promise.allSettled(
        Array.from({ length: k }, async (_, i) => {
          const w = await spawnRawWorker({ address: `unix://${path.join(socketDir, `${tag}-${i}.sock`)}` });
          const conn = new UnaryConn(w.address);
          return { w, conn, answer: await conn.call('add', { a: 1, b: 2 }) };
        }),
      );
      const ms = performance.now() - t0;
      for (const s of started) {
        if (s.status === 'fulfilled') {
          s.value.conn.close();
          await s.value.w.stop();
        }
      }
      const failed = started.find((s) => s.status === 'rejected');
      if (failed) throw /** @type {PromiseRejectedResult} */ (failed).reason;
      if (started.some((s) => s.status === 'fulfilled' && s.value.answer !== 3)) throw new Error('bad cold-start answer');
      return ms;
    },
  };
  const max = Math.max(...COLD_K);
  // informational: the same pool started with every worker at once (default startConcurrency is 4)
  kinds[`snakepit-startConcurrency${max}`] = async (k) => {
    const t0 = performance.now();
    const sp = await startSnakepit({ size: k, startConcurrency: k, ...SP_EXTRA });
    try {
      await sp.call('add', { a: 1, b: 2 });
      return performance.now() - t0;
    } finally {
      await sp.close();
    }
  };
  const results = new Map();
  for (let rep = 0; rep < reps; rep++) {
    for (const k of COLD_K) {
      const names = Object.keys(kinds).filter((kind) => wanted(`cold-${kind}`) && (!kind.includes('startConcurrency') || k === max));
      for (const kind of rep % 2 === 0 ? names : names.reverse()) {
        const key = `${kind}\u0000${k}`;
        if (!results.has(key)) results.set(key, { kind, k, ms: /** @type {number[]} */ ([]) });
        try {
          const ms = await kinds[kind](k);
          results.get(key).ms.push(ms);
          log(`cold ${kind} K=${k}: ${ms.toFixed(0)} ms`);
        } catch (e) {
          startErrors.push(`cold ${kind} K=${k}: ${/** @type {Error} */ (e).message}`);
          log(`cold ${kind} K=${k} failed:`, /** @type {Error} */ (e).message);
        }
      }
    }
  }
  cold.push(...results.values());
}

/** @type {Record<string, any>} */
const scale = {};
async function sectionScale() {
  if (!wanted('scale')) return;
  log(`scale: starting a pool of ${SCALE} and a pool of 2 (process profile, tool cpu(${CPU_MS} ms))`);
  const big = await startSnakepit({ size: SCALE, startConcurrency: 8, ...SP_EXTRA });
  const small = await startSnakepit({ size: 2, ...SP_EXTRA });
  try {
    const rssWorkers = big.pids.map(pidRssBytes);
    scale.python_rss_per_worker_mib = median(rssWorkers) / 2 ** 20;
    const c = Math.max(64, 2 * SCALE);
    /** @type {Case[]} */
    const base = [
      { kase: `snakepit-pool${SCALE}`, fn: toolCall(big.call, 'cpu', true), workerPids: big.pids, durationMs: DURATION * 2, little: true },
      { kase: 'snakepit-pool2', fn: toolCall(small.call, 'cpu', true), workerPids: small.pids, durationMs: DURATION * 2, little: true },
    ];
    for (const cs of base) await warm(cs.fn, SCALE * 2);
    await measureRounds('scale', [{ tool: 'cpu', n: 0, c, cases: base }]);
    scale.c = c;
  } finally {
    await big.close();
    await small.close();
  }
}

/** @type {Record<string, any>} */
const memory = {};
async function sectionMemory() {
  if (!wanted('memory')) return;
  const sizes = [1, SCALE];
  const reps = SMOKE ? 1 : 2;
  /** @type {Record<number, number[]>} */
  const deltas = { [sizes[0]]: [], [sizes[1]]: [] };
  /** @type {any[]} */
  const raw = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const size of rep % 2 === 0 ? sizes : [...sizes].reverse()) {
      const child = spawn(process.execPath, ['--expose-gc', path.join(BENCH_DIR, 'rss-probe.mjs'), String(size)], {
        cwd: REPO_ROOT,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const stop = registerCleanup(async () => child.kill('SIGKILL'));
      try {
        const line = await waitForLine(child, /^RSS (.*)$/, 120_000, `rss-probe ${size}`);
        const m = JSON.parse(line);
        raw.push(m);
        deltas[size].push(m.rss_after - m.rss_before);
        log(
          `memory: pool of ${size}: host RSS +${((m.rss_after - m.rss_before) / 2 ** 20).toFixed(1)} MiB (heap +${((m.heap_after - m.heap_before) / 2 ** 20).toFixed(1)} MiB)`,
        );
      } finally {
        await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
        stop();
      }
    }
  }
  const [a, b] = sizes;
  memory.sizes = sizes;
  memory.delta_mib = { [a]: median(deltas[a]) / 2 ** 20, [b]: median(deltas[b]) / 2 ** 20 };
  memory.per_worker_mib = (median(deltas[b]) - median(deltas[a])) / (b - a) / 2 ** 20;
  memory.raw = raw;
}

/** @type {any[]} */
const streams = [];
async function sectionStream() {
  const reps = SMOKE ? 2 : 8;
  const CHUNKS = 1000;
  log('stream: starting a raw grpcio worker and a Snakepit pool of 1');
  const raw = await spawnRawWorker({ address: `unix://${path.join(socketDir, 'stream.sock')}` });
  const conn = new UnaryConn(raw.address);
  const sp = await startSnakepit({ size: 1, threadsPerWorker: CAPACITY, ...SP_EXTRA });
  try {
    /** @type {Record<string, { run: () => Promise<number>, pids: number[] }>} */
    const kinds = {
      'raw-grpc-server-stream': { run: () => countStream(conn.client, CHUNKS), pids: [raw.pid] },
      'snakepit-executeStream': {
        pids: sp.pids,
        run: () =>
          new Promise((resolve, reject) => {
            let got = 0;
            sp.pools.executeStream('count', { n: CHUNKS }).subscribe({
              next: (chunk) => {
                if (/** @type {any} */ (chunk.data).i !== got) reject(new Error(`chunk ${got} is ${JSON.stringify(chunk.data)}`));
                got++;
              },
              error: reject,
              complete: () => resolve(got),
            });
          }),
      },
    };
    const names = Object.keys(kinds).filter((k) => wanted(k));
    for (const name of names) await kinds[name].run(); // warm
    for (const c of [1, 4]) {
      /** @type {Record<string, { rate: number[], cpuClient: number[], cpuWorkers: number[] }>} */
      const acc = {};
      for (let rep = 0; rep < reps; rep++) {
        for (const name of rep % 2 === 0 ? names : [...names].reverse()) {
          const k = kinds[name];
          const s0 = selfCpuSeconds();
          const w0 = pidsCpuSeconds(k.pids);
          const t0 = performance.now();
          const got = await Promise.all(Array.from({ length: c }, () => k.run()));
          const sec = (performance.now() - t0) / 1000;
          const total = got.reduce((s, x) => s + x, 0);
          if (total !== c * CHUNKS) throw new Error(`${name}: got ${total} chunks, expected ${c * CHUNKS}`);
          acc[name] ??= { rate: [], cpuClient: [], cpuWorkers: [] };
          acc[name].rate.push(total / sec);
          acc[name].cpuClient.push(((selfCpuSeconds() - s0) * 1e6) / total);
          acc[name].cpuWorkers.push(((pidsCpuSeconds(k.pids) - w0) * 1e6) / total);
        }
      }
      const ref = acc['raw-grpc-server-stream'];
      for (const name of names) {
        const a = acc[name];
        const ratios = ref ? a.rate.map((x, i) => x / ref.rate[i]) : [];
        streams.push({
          case: name,
          c,
          chunks_per_s: median(a.rate),
          chunks_per_s_min: Math.min(...a.rate),
          chunks_per_s_max: Math.max(...a.rate),
          cpu_client_us: median(a.cpuClient),
          cpu_workers_us: median(a.cpuWorkers),
          vs_raw: median(ratios),
          reps: a.rate.length,
        });
      }
    }
  } finally {
    conn.close();
    await raw.stop();
    await sp.close();
  }
}

/** @type {import('./payload.mjs').PayloadRow[]} */
let payload = [];
/** @type {import('./payload.mjs').RssProbe | undefined} */
let payloadRss;
/** @type {import('./payload.mjs').ThresholdRow[] | undefined} */
let payloadThreshold;
async function sectionPayloadRun() {
  ({
    rows: payload,
    rss: payloadRss,
    threshold: payloadThreshold,
  } = await sectionPayload({ smoke: SMOKE, sizesMib: PAYLOAD_MIB, socketDir, log, wanted, spExtra: SP_EXTRA }));
}

// ------------------------------------------------------------------ targets and report
function findCell(/** @type {string} */ section, /** @type {string} */ tool, /** @type {string} */ kase, /** @type {number} */ n, /** @type {number} */ c) {
  return cells.find((x) => x.section === section && x.tool === tool && x.kase === kase && x.n === n && x.c === c);
}

function buildRows() {
  return cells.map((cell) => {
    const row = /** @type {any} */ (summarize(cell));
    const ref = (/** @type {string} */ k, /** @type {string} */ tool = cell.tool) => findCell(cell.section, tool, k, cell.n, cell.c);
    const rps = (/** @type {import('./lib/loadgen.mjs').LoadResult} */ r) => r.rps;
    const p50 = (/** @type {import('./lib/loadgen.mjs').LoadResult} */ r) => r.p50_ms;
    if (cell.section === 'throughput') {
      row.vs_raw_bidi = pairwise(cell, ref('raw-bidi'), rps);
      row.vs_raw_unary = pairwise(cell, ref('raw-unary'), rps);
      row.vs_pyshell = pairwise(cell, ref('pyshell'), rps);
      row.p50_minus_raw_bidi_us = pairwise(cell, ref('raw-bidi'), p50, 'diff') * 1000;
      if (cell.kase === 'snakepit-session') row.vs_snakepit = pairwise(cell, ref('snakepit'), rps);
    }
    if (cell.section === 'http') {
      row.vs_gateway = pairwise(cell, ref('http-gateway'), rps);
      row.vs_nest_floor = pairwise(cell, ref('http-nest-floor'), rps);
    }
    if (cell.section === 'scale') row.vs_pool2 = pairwise(cell, ref('snakepit-pool2'), rps);
    return row;
  });
}

/** @param {any[]} rows */
function buildChecks(rows) {
  /** @type {import('./lib/report.mjs').Check[]} */
  const checks = [];
  const get = (/** @type {string} */ section, /** @type {string} */ tool, /** @type {string} */ kase, /** @type {number} */ n, /** @type {number} */ c) =>
    rows.find((r) => r.section === section && r.tool === tool && r.case === kase && r.n === n && r.c === c);
  for (const tool of ['add', 'cpu']) {
    for (const n of NS) {
      for (const c of CS) {
        const r = get('throughput', tool, 'snakepit', n, c);
        if (!r) continue;
        const where = `${tool}, N=${n}, c=${c}`;
        if (c === 1) {
          const d = r.p50_minus_raw_bidi_us;
          checks.push({
            check: 'in-process p50 − raw bidi p50',
            where,
            value: d,
            shown: `${f0(d)} µs`,
            target: '≤ 50 µs',
            ok: Number.isFinite(d) ? d <= 50 : false,
          });
        } else {
          const v = r.vs_raw_bidi;
          checks.push({
            check: 'in-process calls/s ÷ raw bidi',
            where,
            value: v,
            shown: `${f2(v)}×`,
            target: '≥ 0.9×',
            ok: Number.isFinite(v) ? v >= 0.9 : false,
          });
        }
        const u = r.vs_raw_unary;
        // The 2x-unary target is about the bridge's own cost: it applies to the trivial tool
        // (a 2 ms tool is bound by Python work on 2 cores whatever the transport).
        checks.push({
          check: 'in-process calls/s ÷ raw unary',
          where,
          value: u,
          shown: `${f2(u)}×`,
          target: tool === 'add' ? '≥ 2×' : '(info)',
          ok: tool === 'add' ? (Number.isFinite(u) ? u >= 2 : false) : null,
        });
      }
    }
  }
  for (const n of NS) {
    for (const c of CS) {
      const r = get('throughput', 'add', 'snakepit-process', n, c);
      if (r && c > 1)
        checks.push({
          check: 'default process profile (1 call per worker) ÷ raw bidi',
          where: `add, N=${n}, c=${c}`,
          value: r.vs_raw_bidi,
          shown: `${f2(r.vs_raw_bidi)}×`,
          target: '(info)',
          ok: null,
        });
    }
  }
  for (const n of NS) {
    for (const c of CS) {
      const where = `add, N=${n}, c=${c}`;
      const r = get('http', 'add', 'http-sample-app', n, c);
      /** @param {string} check @param {number} v @param {string} target */
      const ratio = (check, v, target) => ({
        check,
        where,
        value: v,
        shown: `${f2(v)}×`,
        target,
        ok: target === '(info)' ? null : Number.isFinite(v) ? v >= 0.8 : false,
      });
      if (r) checks.push(ratio('HTTP sample app ÷ bare gateway', r.vs_gateway, '≥ 0.8×'));
      // The part Snakepit and the sample app own: the same framework without them is the reference.
      if (r) checks.push(ratio('HTTP sample app ÷ minimal Nest app', r.vs_nest_floor, '≥ 0.8×'));
      const floor = get('http', 'add', 'http-nest-floor', n, c);
      if (floor) checks.push(ratio('HTTP minimal Nest app ÷ bare gateway (the framework)', floor.vs_gateway, '(info)'));
    }
  }
  const kmax = Math.max(...COLD_K);
  for (const k of COLD_K) {
    const a = cold.find((x) => x.kind === 'snakepit' && x.k === k);
    const b = cold.find((x) => x.kind === 'bare-grpcio' && x.k === k);
    if (!a || !b) continue;
    const ratio = median(a.ms.map((x, i) => x / b.ms[i]).filter(Number.isFinite));
    checks.push({
      check: 'cold start ÷ bare grpcio spawn',
      where: `K=${k} (${f0(median(a.ms))} vs ${f0(median(b.ms))} ms)`,
      value: ratio,
      shown: `${f2(ratio)}×`,
      target: k === 16 ? '≤ 1.2×' : '(info)',
      ok: k === 16 ? ratio <= 1.2 : null,
    });
  }
  const sc = cold.find((x) => x.kind.startsWith('snakepit-startConcurrency'));
  const bare = cold.find((x) => x.kind === 'bare-grpcio' && x.k === kmax);
  if (sc && bare && sc.ms.length) {
    const ratio = median(sc.ms) / median(bare.ms);
    checks.push({ check: `cold start, startConcurrency=${kmax} ÷ bare`, where: `K=${kmax}`, value: ratio, shown: `${f2(ratio)}×`, target: '(info)', ok: null });
  }
  if (Number.isFinite(memory.per_worker_mib)) {
    checks.push({
      check: 'host RSS per extra worker',
      where: `pool of ${memory.sizes[1]} vs 1`,
      value: memory.per_worker_mib,
      shown: `${f2(memory.per_worker_mib)} MiB`,
      target: '≤ 1 MiB',
      ok: memory.per_worker_mib <= 1,
    });
  }
  const big = rows.find((r) => r.section === 'scale' && r.case === `snakepit-pool${SCALE}`);
  if (big) {
    const ideal = (os.cpus().length * 1000) / CPU_MS;
    checks.push({
      check: `pool of ${SCALE} ÷ pool of 2 (cpu tool)`,
      where: `c=${big.c}`,
      value: big.vs_pool2,
      shown: `${f2(big.vs_pool2)}×`,
      target: '≈ 1 (tracks cores)',
      ok: null,
    });
    checks.push({
      check: `pool of ${SCALE}: calls/s ÷ cores × 1000/${CPU_MS} ms`,
      where: `${os.cpus().length} cores`,
      value: big.rps / ideal,
      shown: `${f2(big.rps / ideal)} (${f0(big.rps)} calls/s)`,
      target: '(info)',
      ok: null,
    });
  }
  for (const s of streams.filter((x) => x.case === 'snakepit-executeStream')) {
    checks.push({
      check: 'stream chunks/s ÷ raw grpcio server stream',
      where: `1,000 chunks, ${s.c} stream(s) at once`,
      value: s.vs_raw,
      shown: `${f2(s.vs_raw)}×`,
      target: '(info)',
      ok: null,
    });
  }
  for (const n of NS) {
    const r = get('throughput', 'add', 'snakepit-session', n, CMAX);
    if (r)
      checks.push({
        check: 'session-bound ÷ plain calls',
        where: `N=${n}, c=${CMAX} (same worker ${f0(100 * r.affinity)}%)`,
        value: r.vs_snakepit,
        shown: `${f2(r.vs_snakepit)}×`,
        target: '(info)',
        ok: null,
      });
  }
  checks.push(...payloadChecks(payload, payloadRss));
  return checks;
}

/**
 * @param {Record<string, any>} meta @param {any[]} rows @param {import('./lib/report.mjs').Check[]} checks
 */
function markdown(meta, rows, checks) {
  const L = [];
  L.push(
    `Run ${meta.date} · ${meta.cpus} × ${meta.cpu_model} · Node ${meta.node} · Python ${meta.python} · grpcio ${meta.grpcio} · @grpc/grpc-js ${meta.grpc_js}`,
  );
  L.push(
    `${meta.mode}: ${meta.rounds} round(s) × ${meta.duration_ms} ms (+${meta.warmup_ms} ms warm-up) per cell, order alternating every round; medians over rounds; ratios paired round by round. Load average at start ${meta.loadavg_start.map((/** @type {number} */ x) => x.toFixed(2)).join(' ')}, at end ${meta.loadavg_end.map((/** @type {number} */ x) => x.toFixed(2)).join(' ')}. Wall ${meta.wall_s.toFixed(0)} s.`,
  );
  L.push('');
  L.push('### Targets');
  L.push('');
  L.push(targetsTable(checks));
  const tp = rows.filter((r) => r.section === 'throughput');
  for (const tool of ['add', 'cpu']) {
    const rs = tp.filter((r) => r.tool === tool);
    if (!rs.length) continue;
    L.push('');
    L.push(tool === 'add' ? '### In-process throughput, trivial tool `add` (closed loop)' : `### In-process throughput, CPU-bound tool \`cpu(ms=${CPU_MS})\``);
    L.push('');
    L.push(
      loadTable(rs, CS, {
        ratios: [
          { label: '÷ raw bidi', key: 'vs_raw_bidi' },
          { label: '÷ raw unary', key: 'vs_raw_unary' },
          { label: '÷ python-shell', key: 'vs_pyshell' },
        ],
      }),
    );
  }
  const http = rows.filter((r) => r.section === 'http');
  if (http.length) {
    L.push('');
    L.push('### HTTP hop, tool `add` (`POST /api/execute`)');
    L.push('');
    L.push(
      `The sample app's pool runs \`profile: 'thread'\`, \`threadsPerWorker: ${CAPACITY}\` (like the in-process \`snakepit\` row), so a worker runs as many calls at once as the raw workers behind the two floors do.`,
    );
    L.push('');
    L.push(
      loadTable(http, CS, {
        hostColumn: true,
        ratios: [
          { label: '÷ bare gateway', key: 'vs_gateway' },
          { label: '÷ minimal Nest app', key: 'vs_nest_floor' },
        ],
      }),
    );
  }
  if (cold.length) {
    L.push('');
    L.push('### Cold start: until every worker is up and the first call answered');
    L.push('');
    L.push('| kind | K | median ms | runs (ms) | per worker ms |');
    L.push('|---|---|---|---|---|');
    for (const c of cold) L.push(`| ${c.kind} | ${c.k} | ${f0(median(c.ms))} | ${c.ms.map(f0).join(', ')} | ${f0(median(c.ms) / c.k)} |`);
  }
  const sc = rows.filter((r) => r.section === 'scale');
  if (sc.length) {
    L.push('');
    L.push(`### Scale: tool \`cpu(ms=${CPU_MS})\`, process profile (1 call per worker), c=${scale.c}`);
    L.push('');
    L.push('| case | calls/s | p50 / p99 ms | CPU µs/call host + workers | ÷ pool of 2 | calls/s min-max | errors |');
    L.push('|---|---|---|---|---|---|---|');
    for (const r of sc) {
      L.push(
        `| ${r.case} | ${fk(r.rps)} | ${f3(r.p50_ms)} / ${f3(r.p99_ms)} | ${f0(r.cpu_client_us + r.cpu_workers_us)} (${f0(r.cpu_client_us)}+${f0(r.cpu_workers_us)}) | ${f2(r.vs_pool2)} | ${fk(r.rps_min)}-${fk(r.rps_max)} | ${r.errors} |`,
      );
    }
    L.push('');
    L.push(
      `Ideal for ${os.cpus().length} cores: ${f0((os.cpus().length * 1000) / CPU_MS)} calls/s. Python worker RSS (median of the pool of ${SCALE}): ${f2(scale.python_rss_per_worker_mib)} MiB each.`,
    );
  }
  if (Number.isFinite(memory.per_worker_mib)) {
    L.push('');
    L.push(`### Host memory`);
    L.push('');
    L.push(
      `Host RSS growth of a fresh Node process from before the Nest context to after warm calls (GC'd): pool of ${memory.sizes[0]}: +${f2(memory.delta_mib[memory.sizes[0]])} MiB, pool of ${memory.sizes[1]}: +${f2(memory.delta_mib[memory.sizes[1]])} MiB → **${f2(memory.per_worker_mib)} MiB per extra worker**.`,
    );
  }
  if (streams.length) {
    L.push('');
    L.push('### Streaming: 1,000-chunk stream (`count`)');
    L.push('');
    L.push('| case | streams at once | chunks/s | min-max | CPU µs/chunk host + workers | ÷ raw |');
    L.push('|---|---|---|---|---|---|');
    for (const s of streams)
      L.push(
        `| ${s.case} | ${s.c} | ${fk(s.chunks_per_s)} | ${fk(s.chunks_per_s_min)}-${fk(s.chunks_per_s_max)} | ${f2(s.cpu_client_us + s.cpu_workers_us)} (${f2(s.cpu_client_us)}+${f2(s.cpu_workers_us)}) | ${f2(s.vs_raw)} |`,
      );
  }
  if (payload.length) {
    L.push('');
    L.push(payloadMarkdown(payload));
  }
  if (payloadThreshold) {
    L.push('');
    L.push(thresholdMarkdown(payloadThreshold));
  }
  if (meta.errors.length) {
    L.push('');
    L.push('### Errors');
    L.push('');
    for (const e of meta.errors) L.push(`- ${e}`);
  }
  return L.join('\n');
}

// ------------------------------------------------------------------ main
async function main() {
  const loadavgStart = os.loadavg();
  const versions = generateStubs();
  const grpcJs = JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', '@grpc', 'grpc-js', 'package.json'), 'utf8')).version;
  log(`Python ${versions.python} (${PYTHON}), grpcio ${versions.grpcio}; sections: ${[...SECTIONS].join(', ')}; ${ROUNDS} rounds × ${DURATION} ms`);
  /** @type {[string, () => Promise<void>][]} */
  const plan = [
    ['throughput', sectionThroughput],
    ['http', sectionHttp],
    ['cold', sectionCold],
    ['scale', sectionScale],
    ['memory', sectionMemory],
    ['stream', sectionStream],
    ['payload', sectionPayloadRun],
  ];
  for (const [name, fn] of plan) {
    if (!SECTIONS.has(name) || interrupted) continue;
    try {
      await fn();
    } catch (e) {
      startErrors.push(`section ${name}: ${/** @type {Error} */ (e).stack ?? e}`);
      log(`section ${name} failed:`, e);
    }
  }
  const rows = buildRows();
  const checks = buildChecks(rows);
  const cellErrors = rows
    .filter((r) => r.errors > 0)
    .map((r) => `${r.section} ${r.tool} ${r.case} N=${r.n} c=${r.c}: ${r.errors} errors, first: ${r.first_error}`);
  const meta = {
    date: new Date().toISOString(),
    mode: SMOKE ? 'smoke' : 'full',
    host: os.hostname(),
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    python: versions.python,
    grpcio: versions.grpcio,
    grpc_js: grpcJs,
    rounds: ROUNDS,
    duration_ms: DURATION,
    warmup_ms: WARMUP,
    capacity: CAPACITY,
    cpu_ms: CPU_MS,
    snakepit_extra: SP_EXTRA,
    loadavg_start: loadavgStart,
    loadavg_end: os.loadavg(),
    wall_s: (performance.now() - started) / 1000,
    command: process.argv.slice(1).join(' '),
    // first line only: a Nest error carries a page of hints
    errors: [...startErrors, ...cellErrors].map((e) => String(e).split('\n')[0].slice(0, 400)),
  };
  const md = markdown(meta, rows, checks);
  mkdirSync(opt.out, { recursive: true });
  const stamp = meta.date.replace(/[:.]/g, '-');
  const base = `${meta.mode}-${stamp}`;
  writeFileSync(
    path.join(opt.out, `${base}.json`),
    JSON.stringify({ meta, checks, rows, cells, cold, scale, memory, streams, payload, payloadRss, payloadThreshold }, null, 2),
  );
  writeFileSync(path.join(opt.out, `${base}.md`), md + '\n');
  writeFileSync(path.join(opt.out, `latest-${meta.mode}.md`), md + '\n');
  await stopAll();
  console.log(md);
  const misses = checks.filter((c) => c.ok === false).length;
  log(
    `done in ${meta.wall_s.toFixed(0)} s: ${checks.filter((c) => c.ok).length} targets met, ${misses} missed, ${meta.errors.length} errors; results in ${path.relative(process.cwd(), opt.out) || '.'}/${base}.{json,md}; live children: ${liveChildren()}`,
  );
  clearTimeout(watchdog);
  process.exit(meta.errors.length ? 1 : opt.strict && misses ? 2 : 0);
}

main().catch(fatal);

// @ts-check
// Section `payload` (issue 14, Performance): float32 arrays through PoolService.execute
// (`array_sum`: the array goes to the worker; `array_fill`: it comes back; `array_scale`:
// both ways), with shared memory on (the default, `snakepit`) and off (`snakepit-grpc`: the
// blobs inside the gRPC messages), the same bytes as a Buffer (`snakepit-bytes`: `bytes_len`,
// `bytes_make`, `reverse_bytes`), against three baselines measured in the same run: the
// same array as a JSON list (`echo`, both ways, <= 8 MiB), raw gRPC bytes in one message
// (bench/py/bytes_server.py, grpc-js <-> grpcio, no Snakepit code) and the copy floor (a
// copy into a tmpfs-backed file and a read back, no RPC; as
// shared/research/large-payload-probe does). Then host and worker RSS over 1,000 large
// calls. One call at a time; every loop bounded in count and time.
import grpc from '@grpc/grpc-js';
import { NdArray } from '@snakepit/nestjs';
import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { median } from './lib/loadgen.mjs';
import { spawnTracked, stopChild, waitForLine } from './lib/procs.mjs';
import { CHANNEL_OPTIONS, PY_DIR, PY_ENV, PYTHON } from './lib/raw-grpc.mjs';
import { f2, f3 } from './lib/report.mjs';
import { startSnakepit } from './lib/snakepit.mjs';

const MIB = 1024 * 1024;
const FACTOR = 2;
/** JSON is slow (a 8 MiB array is ~2 M numbers): only at these sizes. */
const JSON_MAX_MIB = 8;

/**
 * @typedef {object} PayloadRow
 * @property {number} mib         array size
 * @property {'args'|'result'|'both'} dir  which way the array travels
 * @property {string} kase        snakepit | snakepit-grpc | raw-grpc | json | copy-floor
 * @property {number} ms          median latency per round trip
 * @property {number} mibps       array bytes moved (once for args and result, twice for both) ÷ median latency
 * @property {number} reps
 * @property {Record<string, number>} ratios  pairwise medians of this row's MiB/s ÷ a baseline's
 */

/** Round trips per case and size: fewer for big arrays, and each case stops after `budgetMs`. */
function repsFor(/** @type {number} */ mib, /** @type {boolean} */ smoke) {
  if (smoke) return 3;
  return mib >= 256 ? 2 : mib >= 64 ? 3 : mib >= 8 ? 5 : 9;
}

/** Deterministic float32 values with a full mantissa (so the JSON row pays for real digits). */
function makeArray(/** @type {number} */ bytes) {
  const x = new Float32Array(bytes / 4);
  let s = 12345;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = s / 2 ** 32 - 0.5;
  }
  return x;
}

/** Sum as numpy would see it, within float32 rounding (the check is relative). */
function sumOf(/** @type {Float32Array} */ x) {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s;
}

/** Spot checks every 4099th element (and the last): cheap next to the copy itself. */
function checkScaled(/** @type {Float32Array} */ x, /** @type {ArrayLike<number>} */ y, /** @type {string} */ what) {
  if (y.length !== x.length) throw new Error(`${what}: ${y.length} elements back, sent ${x.length}`);
  for (let i = 0; i < x.length; i += 4099)
    if (y[i] !== Math.fround(x[i] * FACTOR)) throw new Error(`${what}: element ${i} is ${y[i]}, expected ${x[i] * FACTOR}`);
  const last = x.length - 1;
  if (y[last] !== Math.fround(x[last] * FACTOR)) throw new Error(`${what}: last element is ${y[last]}`);
}

function checkFilled(/** @type {unknown} */ r, /** @type {number} */ n, /** @type {string} */ what) {
  if (!(r instanceof NdArray) || r.dtype !== 'float32') throw new Error(`${what}: not a float32 NdArray`);
  const y = /** @type {Float32Array} */ (r.data);
  if (y.length !== n) throw new Error(`${what}: ${y.length} elements, asked for ${n}`);
  for (let i = 0; i < n; i += 4099) if (y[i] !== FILL) throw new Error(`${what}: element ${i} is ${y[i]}`);
}

/** The value array_fill writes: exact in float32. */
const FILL = 0.75;

/**
 * RSS over 1,000 large calls both ways through shared memory, sampled every
 * SAMPLE_EVERY calls once the pages are warm (after WARM calls). A heap's RSS
 * swings with its collector, so the peaks of the first and the second half are
 * compared: a leak raises the second; noise does not.
 * @typedef {{ host: number, worker: number, workerShmem: number }} RssSample  MiB
 * @typedef {object} RssProbe
 * @property {number} mib         array size of each call
 * @property {number} calls       calls made (1,000 unless the time bound stopped it)
 * @property {RssSample} warm     peaks over the first half
 * @property {RssSample} end      peaks over the second half
 */
const RSS_CALLS = 1000;
const WARM = 50;
const SAMPLE_EVERY = 25;

/** VmRSS and RssShmem (the mapped region pages) of a process, in MiB. */
function procRss(/** @type {number} */ pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (/** @type {string} */ field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, shmem: kib('RssShmem') / 1024 };
}

function checkSum(/** @type {unknown} */ got, /** @type {number} */ want, /** @type {string} */ what) {
  if (typeof got !== 'number' || Math.abs(got - want) > 1e-3 * Math.max(1, Math.abs(want)) + 1) throw new Error(`${what}: sum ${got}, expected ~${want}`);
}

/** The raw grpcio bytes server and a grpc-js client with identity serializers (one message per call). */
async function startRawBytes(/** @type {string} */ socketDir, /** @type {number} */ maxBytes) {
  const address = `unix://${path.join(socketDir, 'payload-raw.sock')}`;
  const child = spawnTracked(PYTHON, [path.join(PY_DIR, 'bytes_server.py'), '--address', address, '--max-bytes', String(maxBytes)], { env: PY_ENV });
  await waitForLine(child, /^READY (\S+)/, 30_000, 'raw bytes server');
  const id = (/** @type {Buffer} */ b) => b;
  /** @type {grpc.ServiceDefinition} */
  const def = {};
  for (const m of ['Sum', 'Scale', 'Fill'])
    def[m] = {
      path: `/bench.Bytes/${m}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: id,
      requestDeserialize: id,
      responseSerialize: id,
      responseDeserialize: id,
    };
  const Ctor = grpc.makeGenericClientConstructor(def, 'Bytes');
  const client = new Ctor(address, grpc.credentials.createInsecure(), {
    ...CHANNEL_OPTIONS,
    'grpc.max_send_message_length': maxBytes,
    'grpc.max_receive_message_length': maxBytes,
  });
  const call = (/** @type {string} */ m, /** @type {Buffer} */ buf) =>
    /** @type {Promise<Buffer>} */ (
      new Promise((resolve, reject) => {
        /** @type {any} */ (client)[m](buf, { deadline: Date.now() + 60_000 }, (/** @type {Error|null} */ e, /** @type {Buffer} */ r) =>
          e ? reject(e) : resolve(r),
        );
      })
    );
  return {
    pid: /** @type {number} */ (child.pid),
    call,
    close: async () => {
      client.close();
      await stopChild(child);
    },
  };
}

/**
 * @param {{ smoke: boolean, sizesMib: number[], socketDir: string, log: (...a: unknown[]) => void,
 *   wanted: (name: string) => boolean, spExtra: { poolOptions?: Record<string, unknown>, env?: Record<string, string> } }} o
 */
export async function sectionPayload(o) {
  const maxMib = Math.max(...o.sizesMib);
  // Room for the biggest array twice over and its JSON at <= 8 MiB (~20 characters a number).
  const maxPayloadBytes = Math.min(1024 * MIB, Math.max(2 * maxMib * MIB, 6 * JSON_MAX_MIB * MIB));
  const shmDir = existsSync('/dev/shm') ? '/dev/shm' : o.socketDir;
  const region = path.join(shmDir, `spbench-payload-${process.pid}`);
  o.log(
    `payload: sizes ${o.sizesMib.join(', ')} MiB; starting a raw grpcio bytes server and two Snakepit pools of 1, shared memory on and off (maxPayloadBytes ${maxPayloadBytes / MIB} MiB)`,
  );
  const raw = await startRawBytes(o.socketDir, maxPayloadBytes + MIB);
  /** @type {Awaited<ReturnType<typeof startSnakepit>> | undefined} */
  let sp;
  /** @type {Awaited<ReturnType<typeof startSnakepit>> | undefined} */
  let spGrpc;
  /** @type {PayloadRow[]} */
  const rows = [];
  /** @type {RssProbe | undefined} */
  let rss;
  /** @type {ThresholdRow[] | undefined} */
  let threshold;
  const fd = openSync(region, 'w+', 0o600);
  try {
    sp = await startSnakepit({ size: 1, ...o.spExtra, poolOptions: { maxPayloadBytes, ...o.spExtra.poolOptions } });
    spGrpc = await startSnakepit({ size: 1, ...o.spExtra, poolOptions: { maxPayloadBytes, sharedMemory: false, ...o.spExtra.poolOptions } });
    for (const mib of o.sizesMib) {
      const bytes = mib * MIB;
      const x = makeArray(bytes);
      const xBuf = Buffer.from(x.buffer, x.byteOffset, x.byteLength);
      const want = sumOf(x);
      const back = Buffer.allocUnsafeSlow(bytes);
      ftruncateSync(fd, bytes);
      const scaleReq = Buffer.allocUnsafeSlow(8 + bytes);
      scaleReq.writeDoubleLE(FACTOR, 0);
      xBuf.copy(scaleReq, 8);
      /** The array into the region and back out: one transfer without RPC. */
      const copyOnce = () => {
        if (writeSync(fd, xBuf, 0, bytes, 0) !== bytes || readSync(fd, back, 0, bytes, 0) !== bytes) throw new Error('copy floor: short write or read');
      };
      const fillReq = Buffer.alloc(16);
      fillReq.writeBigUInt64LE(BigInt(x.length), 0);
      fillReq.writeDoubleLE(FILL, 8);
      /** The three round trips through one Snakepit pool. */
      const snakepitCases = (/** @type {string} */ kase, /** @type {import('@snakepit/nestjs').PoolService} */ pools) =>
        /** @type {{ kase: string, dir: 'args'|'result'|'both', run: () => Promise<void> }[]} */ ([
          { kase, dir: 'args', run: async () => checkSum((await pools.execute('array_sum', { x: NdArray.from(x) })).result, want, `${kase} array_sum`) },
          {
            kase,
            dir: 'result',
            run: async () => checkFilled((await pools.execute('array_fill', { n: x.length, value: FILL })).result, x.length, `${kase} array_fill`),
          },
          {
            kase,
            dir: 'both',
            run: async () => {
              const r = /** @type {any} */ ((await pools.execute('array_scale', { x: NdArray.from(x), factor: FACTOR })).result);
              if (!(r instanceof NdArray) || r.dtype !== 'float32') throw new Error(`${kase} array_scale: not a float32 NdArray: ${r?.constructor?.name}`);
              checkScaled(x, /** @type {Float32Array} */ (r.data), `${kase} array_scale`);
            },
          },
        ]);
      const pools = /** @type {NonNullable<typeof sp>} */ (sp).pools;
      /** @type {{ kase: string, dir: 'args'|'result'|'both', run: () => Promise<void> }[]} */
      const cases = [
        ...snakepitCases('snakepit', pools),
        ...snakepitCases('snakepit-grpc', /** @type {NonNullable<typeof spGrpc>} */ (spGrpc).pools),
        // The same bytes as a Buffer (Python: bytes, which a tool receives as its own copy) instead of an array.
        {
          kase: 'snakepit-bytes',
          dir: 'args',
          run: async () => {
            const n = (await pools.execute('bytes_len', { data: xBuf })).result;
            if (n !== bytes) throw new Error(`bytes_len: ${n}`);
          },
        },
        {
          kase: 'snakepit-bytes',
          dir: 'result',
          run: async () => {
            const r = /** @type {unknown} */ ((await pools.execute('bytes_make', { n: bytes, fill: 7 })).result);
            if (!Buffer.isBuffer(r) || r.length !== bytes || r[bytes - 1] !== 7) throw new Error('bytes_make: not the bytes asked for');
          },
        },
        {
          kase: 'snakepit-bytes',
          dir: 'both',
          run: async () => {
            const r = /** @type {unknown} */ ((await pools.execute('reverse_bytes', { data: xBuf })).result);
            if (!Buffer.isBuffer(r) || r.length !== bytes || r[0] !== xBuf[bytes - 1]) throw new Error('reverse_bytes: not the bytes reversed');
          },
        },
        { kase: 'raw-grpc', dir: 'args', run: async () => checkSum((await raw.call('Sum', xBuf)).readDoubleLE(0), want, 'raw Sum') },
        {
          kase: 'raw-grpc',
          dir: 'result',
          run: async () => {
            const r = await raw.call('Fill', fillReq);
            if (r.byteLength !== bytes) throw new Error(`raw Fill: ${r.byteLength} bytes back`);
          },
        },
        {
          kase: 'raw-grpc',
          dir: 'both',
          run: async () => {
            const r = await raw.call('Scale', scaleReq);
            // a copy only when grpc-js hands back an unaligned Buffer
            const y = r.byteOffset % 4 === 0 ? new Float32Array(r.buffer, r.byteOffset, r.byteLength / 4) : new Float32Array(new Uint8Array(r).buffer);
            checkScaled(x, y, 'raw Scale');
          },
        },
        { kase: 'copy-floor', dir: 'args', run: async () => copyOnce() },
        { kase: 'copy-floor', dir: 'result', run: async () => copyOnce() },
        {
          kase: 'copy-floor',
          dir: 'both',
          run: async () => {
            copyOnce();
            copyOnce();
          },
        },
      ];
      if (mib <= JSON_MAX_MIB) {
        // The pre-NdArray way: a plain number list, echoed (the showcase's array tools refuse lists).
        const list = Array.from(x);
        cases.push({
          kase: 'json',
          dir: 'both',
          run: async () => {
            const r = (await pools.execute('echo', { value: list })).result;
            if (!Array.isArray(r)) throw new Error('echo: not a list');
            checkScaled(
              x,
              r.map((v) => Math.fround(v * FACTOR)),
              'json echo',
            );
          },
        });
      }
      const active = cases.filter((c) => o.wanted(`payload-${c.kase}`));
      for (const c of active) await c.run(); // warm: channels, imports, the region's pages
      const reps = repsFor(mib, o.smoke);
      /** @type {Map<object, number[]>} */
      const times = new Map(active.map((c) => [c, []]));
      const deadline = performance.now() + (o.smoke ? 8_000 : 60_000);
      for (let rep = 0; rep < reps && performance.now() < deadline; rep++) {
        for (const c of rep % 2 === 0 ? active : [...active].reverse()) {
          const t0 = performance.now();
          await c.run();
          /** @type {number[]} */ (times.get(c)).push(performance.now() - t0);
        }
      }
      /** @type {PayloadRow[]} */
      const here = active.map((c) => {
        const ms = /** @type {number[]} */ (times.get(c));
        const moved = (c.dir === 'both' ? 2 : 1) * mib;
        return { mib, dir: c.dir, kase: c.kase, ms: median(ms), mibps: moved / (median(ms) / 1000), reps: ms.length, ratios: {}, _ms: ms };
      });
      // Ratios of MiB/s pair by pair (rep r of A ÷ rep r of B; the same array moves): median of those.
      for (const r of here) {
        for (const b of here) {
          if (b.dir !== r.dir || b.kase === r.kase) continue;
          const a = /** @type {any} */ (r)._ms;
          const bb = /** @type {any} */ (b)._ms;
          const n = Math.min(a.length, bb.length);
          r.ratios[b.kase] = median(Array.from({ length: n }, (_, i) => bb[i] / a[i]));
        }
      }
      for (const r of here) {
        delete (/** @type {any} */ (r)._ms);
        rows.push(r);
      }
      o.log(`payload ${mib} MiB: ${here.map((r) => `${r.kase}/${r.dir} ${f3(r.ms)} ms`).join(', ')}`);
    }
    if (!o.smoke && o.wanted('payload-threshold')) threshold = await sweepThreshold(/** @type {NonNullable<typeof spGrpc>} */ (spGrpc), o);
    if (!o.smoke && o.wanted('payload-rss')) rss = await probeRss(sp, o.log);
  } finally {
    closeSync(fd);
    rmSync(region, { force: true });
    await raw.close();
    await sp?.close();
    await spGrpc?.close();
  }
  return { rows, rss, threshold };
}

/**
 * Where shared memory starts to pay: array_scale round trips of small arrays with
 * every blob through the regions (thresholdBytes 1) and with none (sharedMemory
 * false), interleaved; the default thresholdBytes is chosen from these rows.
 * @typedef {{ kib: number, sharedMs: number, grpcMs: number, ratio: number, reps: number }} ThresholdRow
 */
const THRESHOLD_KIB = [16, 64, 128, 256, 512, 1024];
const THRESHOLD_REPS = 40;

async function sweepThreshold(
  /** @type {NonNullable<Awaited<ReturnType<typeof startSnakepit>>>} */ spGrpc,
  /** @type {{ spExtra: { poolOptions?: Record<string, unknown>, env?: Record<string, string> }, log: (...a: unknown[]) => void }} */ o,
) {
  const spAll = await startSnakepit({ size: 1, ...o.spExtra, poolOptions: { sharedMemory: { thresholdBytes: 1 }, ...o.spExtra.poolOptions } });
  /** @type {ThresholdRow[]} */
  const rows = [];
  try {
    for (const kib of THRESHOLD_KIB) {
      const x = makeArray(kib * 1024);
      const once = async (/** @type {import('@snakepit/nestjs').PoolService} */ pools) => {
        const t0 = performance.now();
        const r = /** @type {any} */ ((await pools.execute('array_scale', { x: NdArray.from(x), factor: FACTOR })).result);
        const ms = performance.now() - t0;
        checkScaled(x, /** @type {Float32Array} */ (r.data), `threshold ${kib} KiB`);
        return ms;
      };
      await once(spAll.pools);
      await once(spGrpc.pools);
      /** @type {number[]} */ const shared = [];
      /** @type {number[]} */ const grpcOnly = [];
      const deadline = performance.now() + 20_000;
      for (let rep = 0; rep < THRESHOLD_REPS && performance.now() < deadline; rep++) {
        shared.push(await once(spAll.pools));
        grpcOnly.push(await once(spGrpc.pools));
      }
      const row = {
        kib,
        sharedMs: median(shared),
        grpcMs: median(grpcOnly),
        ratio: median(shared.map((ms, i) => grpcOnly[i] / ms)),
        reps: shared.length,
      };
      rows.push(row);
      o.log(`payload threshold ${kib} KiB: shared ${f3(row.sharedMs)} ms, gRPC ${f3(row.grpcMs)} ms (${f2(row.ratio)}×)`);
    }
  } finally {
    await spAll.close();
  }
  return rows;
}

/** @param {ThresholdRow[]} rows */
export function thresholdMarkdown(rows) {
  const L = [
    '### Shared-memory threshold: array_scale, every blob through the regions vs none',
    '',
    '| KiB | ms, shared memory | ms, gRPC messages | speed-up | reps |',
    '|---|---|---|---|---|',
  ];
  for (const r of rows) L.push(`| ${r.kib} | ${f3(r.sharedMs)} | ${f3(r.grpcMs)} | ${f2(r.ratio)}× | ${r.reps} |`);
  return L.join('\n');
}

/** 1,000 calls of array_scale on an 8 MiB array through shared memory, with RSS sampled warm and at the end. */
async function probeRss(/** @type {NonNullable<Awaited<ReturnType<typeof startSnakepit>>>} */ sp, /** @type {(...a: unknown[]) => void} */ log) {
  const mib = 8;
  const x = makeArray(mib * MIB);
  const workerPid = sp.pools.poolInfo()[0].workers[0].pid;
  const sample = () => {
    const worker = procRss(workerPid);
    return { host: process.memoryUsage().rss / MIB, worker: worker.rss, workerShmem: worker.shmem };
  };
  /** @type {RssSample[]} */
  const samples = [];
  const deadline = performance.now() + 180_000;
  let calls = 0;
  for (; calls < RSS_CALLS && performance.now() < deadline; calls++) {
    const r = /** @type {any} */ ((await sp.pools.execute('array_scale', { x: NdArray.from(x), factor: FACTOR })).result);
    if (calls % 97 === 0) checkScaled(x, /** @type {Float32Array} */ (r.data), 'rss array_scale');
    if (calls + 1 >= WARM && (calls + 1) % SAMPLE_EVERY === 0) samples.push(sample());
  }
  const peak = (/** @type {RssSample[]} */ part) => ({
    host: Math.max(...part.map((p) => p.host)),
    worker: Math.max(...part.map((p) => p.worker)),
    workerShmem: Math.max(...part.map((p) => p.workerShmem)),
  });
  const half = Math.ceil(samples.length / 2);
  const warm = peak(samples.slice(0, half));
  const end = peak(samples.slice(half));
  log(`payload rss: ${calls} calls of ${mib} MiB both ways; host ${f2(warm.host)} -> ${f2(end.host)} MiB, worker ${f2(warm.worker)} -> ${f2(end.worker)} MiB`);
  return /** @type {RssProbe} */ ({ mib, calls, warm, end });
}

/**
 * Issue 14's targets, reported (info / MISS), never fatal: a shared machine's noise must not fail a run.
 * @param {PayloadRow[]} rows
 * @param {RssProbe | undefined} rss
 * @returns {import('./lib/report.mjs').Check[]}
 */
export function payloadChecks(rows, rss) {
  /** @type {import('./lib/report.mjs').Check[]} */
  const checks = [];
  const tools = { args: 'to the worker (array_sum)', result: 'back (array_fill)', both: 'both ways (array_scale)' };
  const bytesTools = { args: 'to the worker (bytes_len)', result: 'back (bytes_make)', both: 'both ways (reverse_bytes)' };
  for (const r of rows.filter((x) => x.kase === 'snakepit' || x.kase === 'snakepit-bytes')) {
    const where = r.kase === 'snakepit' ? `${r.mib} MiB, ${tools[r.dir]}` : `${r.mib} MiB of bytes, ${bytesTools[r.dir]}`;
    /** A ratio against a baseline, with the issue's goal for this size (null: reported only). */
    const ratioCheck = (/** @type {string} */ check, /** @type {number | undefined} */ value, /** @type {number | null} */ goal) => {
      if (value === undefined) return;
      checks.push({ check, where, value, shown: `${f2(value)}×`, target: goal ? `≥ ${goal}×` : '(info)', ok: goal ? value >= goal : null });
    };
    ratioCheck('payload MiB/s ÷ raw gRPC bytes', r.ratios['raw-grpc'], r.mib >= 64 ? 5 : r.mib >= 8 ? 2.5 : null);
    ratioCheck('payload MiB/s ÷ copy floor', r.ratios['copy-floor'], r.mib >= 64 ? 0.5 : null);
    if (r.kase === 'snakepit') {
      ratioCheck('payload MiB/s ÷ shared memory off', r.ratios['snakepit-grpc'], null);
      ratioCheck('payload MiB/s ÷ JSON list', r.ratios.json, null);
    }
  }
  if (rss) {
    // Peak growth from the first half to the second; a region holds at most one call's 8 MiB each way here, so 16 MiB is the bound.
    for (const side of /** @type {const} */ (['host', 'worker'])) {
      const grown = rss.end[side] - rss.warm[side];
      checks.push({
        check: `payload RSS growth over ${rss.calls} calls of ${rss.mib} MiB`,
        where: side,
        value: grown,
        shown: `${f2(rss.warm[side])} -> ${f2(rss.end[side])} MiB`,
        target: '≤ +16 MiB',
        ok: grown <= 16,
      });
    }
  }
  return checks;
}

/** @param {PayloadRow[]} rows */
export function payloadMarkdown(rows) {
  const L = [
    '### Large payloads: float32 arrays, one call at a time, pool of 1',
    '',
    'MiB/s counts the array bytes moved per round trip (once for `args`, twice for `both`). Ratios are MiB/s ÷ the baseline’s, paired rep by rep.',
    '',
    '| MiB | direction | case | ms per round trip | MiB/s | ÷ shm off | ÷ raw gRPC | ÷ JSON | ÷ copy floor | reps |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  const ratio = (/** @type {PayloadRow} */ r, /** @type {string} */ baseline) =>
    r.kase.startsWith('snakepit') && r.ratios[baseline] !== undefined ? f2(r.ratios[baseline]) : '-';
  for (const r of rows)
    L.push(
      `| ${r.mib} | ${r.dir} | ${r.kase} | ${f3(r.ms)} | ${f2(r.mibps)} | ${r.kase === 'snakepit' ? ratio(r, 'snakepit-grpc') : '-'} | ${ratio(r, 'raw-grpc')} | ${ratio(r, 'json')} | ${ratio(r, 'copy-floor')} | ${r.reps} |`,
    );
  return L.join('\n');
}

// @ts-check
// The raw gRPC baselines: bench/py/raw_server.py workers and three clients
// written directly on @grpc/grpc-js (no Snakepit code):
//   BidiConn   one Batch stream per worker, calls multiplexed by id, all calls
//              of one tick in one RequestBatch (the transport's limit);
//   UnaryConn  one unary Call per call (what a naive gRPC bridge does);
//   countStream a plain server stream (Count), one message per chunk.
// Channel options are the ones Snakepit uses for its workers, and workers
// listen on Unix sockets like Snakepit's, so the comparison isolates the design.
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnTracked, stopChild, waitForLine } from './procs.mjs';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(BENCH_DIR, '..');
export const PY_DIR = path.join(BENCH_DIR, 'py');
export const GEN_DIR = path.join(BENCH_DIR, '.gen');
export const PROTO = path.join(BENCH_DIR, 'proto', 'bench.proto');
export const PYTHON = process.env.BENCH_PYTHON || path.join(REPO_ROOT, '.venv', 'bin', 'python');
export const PY_ENV = { ...process.env, BENCH_GEN_DIR: GEN_DIR, PYTHONPATH: PY_DIR, PYTHONUNBUFFERED: '1' };

/** Same options as Snakepit's worker channels (libs/snakepit/src/bridge/proto.ts). */
export const CHANNEL_OPTIONS = {
  'grpc.enable_channelz': 0,
  'grpc.enable_retries': 0,
  'grpc.service_config_disable_resolution': 1,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc-node.flow_control_window': 16 * 1024 * 1024,
};
const CALL_TIMEOUT_MS = 10_000;

/** Generates the bench-only Python stubs into bench/.gen (gitignored); returns versions. */
export function generateStubs() {
  mkdirSync(GEN_DIR, { recursive: true });
  execFileSync(PYTHON, ['-m', 'grpc_tools.protoc', `-I${path.dirname(PROTO)}`, `--python_out=${GEN_DIR}`, `--grpc_python_out=${GEN_DIR}`, PROTO], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const [python, grpcio] = execFileSync(PYTHON, ['-c', 'import sys, grpc; print(sys.version.split()[0], grpc.__version__)']).toString().trim().split(' ');
  return { python, grpcio };
}

/** @type {any} */
let RawBench;
function rawBenchCtor() {
  if (!RawBench) {
    const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true, arrays: true });
    RawBench = /** @type {any} */ (grpc.loadPackageDefinition(def)).snakepit.bench.v1.RawBench;
  }
  return RawBench;
}

/**
 * Starts one raw grpc.aio worker on `address` (unix:///... or 127.0.0.1:0).
 * @param {{ address: string, dispatch?: 'task'|'inline'|'threads', threads?: number, timeoutMs?: number }} o
 */
export async function spawnRawWorker({ address, dispatch = 'task', threads = 8, timeoutMs = 30_000 }) {
  const child = spawnTracked(PYTHON, [path.join(PY_DIR, 'raw_server.py'), '--address', address, '--dispatch', dispatch, '--threads', String(threads)], {
    env: PY_ENV,
  });
  const bound = await waitForLine(child, /^READY (\S+)/, timeoutMs, `raw worker (${dispatch})`);
  return { child, pid: /** @type {number} */ (child.pid), address: bound, stop: () => stopChild(child) };
}

/**
 * @typedef {{ resolve: (v: unknown) => void, reject: (e: Error) => void, deadline: number }} Pending
 */

/** One batched, multiplexed bidi stream to one raw worker. */
export class BidiConn {
  /** @param {string} address */
  constructor(address) {
    const Ctor = rawBenchCtor();
    this.client = new Ctor(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    /** @type {Map<number, Pending>} */
    this.pending = new Map();
    this.nextId = 1;
    /** @type {object[]} */
    this.queue = [];
    this.scheduled = false;
    /** @type {Error | null} */
    this.broken = null;
    this.stream = this.client.Batch();
    this.stream.on('data', (/** @type {any} */ batch) => {
      for (const r of batch.replies) {
        const p = this.pending.get(r.id);
        if (!p) continue;
        this.pending.delete(r.id);
        if (r.ok) p.resolve(JSON.parse(r.result_json.toString('utf8')));
        else p.reject(new Error(r.error));
      }
    });
    this.stream.on('error', (/** @type {Error} */ e) => this.fail(e));
    this.stream.on('end', () => this.fail(new Error('the raw stream ended')));
    // One sweep timer per connection for per-call deadlines (no timer per call).
    this.sweep = setInterval(() => {
      const now = Date.now();
      for (const [id, p] of this.pending) {
        if (p.deadline < now) {
          this.pending.delete(id);
          p.reject(new Error('DEADLINE_EXCEEDED'));
        }
      }
    }, 1000);
    this.sweep.unref();
    this.flush = () => {
      this.scheduled = false;
      const requests = this.queue;
      this.queue = [];
      if (!this.broken) this.stream.write({ requests });
    };
  }

  get inflight() {
    return this.pending.size;
  }

  /** @param {string} tool @param {object} args @returns {Promise<unknown>} */
  call(tool, args) {
    return new Promise((resolve, reject) => {
      if (this.broken) return reject(this.broken);
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject, deadline: Date.now() + CALL_TIMEOUT_MS });
      this.queue.push({ id, tool, args_json: Buffer.from(JSON.stringify(args)), timeout_ms: CALL_TIMEOUT_MS });
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(this.flush);
      }
    });
  }

  /** @param {Error} e */
  fail(e) {
    if (this.broken) return;
    this.broken = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  close() {
    clearInterval(this.sweep);
    this.fail(new Error('closed'));
    try {
      this.stream.cancel();
    } catch {
      // the call ended already
    }
    this.client.close();
  }
}

/** Unary calls to one raw worker, one HTTP/2 stream each, with a deadline each. */
export class UnaryConn {
  /** @param {string} address */
  constructor(address) {
    const Ctor = rawBenchCtor();
    this.client = new Ctor(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    this.inflight = 0;
  }

  /** @param {string} tool @param {object} args @returns {Promise<unknown>} */
  call(tool, args) {
    this.inflight++;
    return new Promise((resolve, reject) => {
      this.client.Call(
        { id: 0, tool, args_json: Buffer.from(JSON.stringify(args)), timeout_ms: CALL_TIMEOUT_MS },
        { deadline: Date.now() + CALL_TIMEOUT_MS },
        (/** @type {Error|null} */ err, /** @type {any} */ r) => {
          this.inflight--;
          if (err) reject(err);
          else if (!r.ok) reject(new Error(r.error));
          else resolve(JSON.parse(r.result_json.toString('utf8')));
        },
      );
    });
  }

  close() {
    this.client.close();
  }
}

/**
 * A plain gRPC server stream of `n` chunks; resolves with the number received.
 * @param {any} client a RawBench client (UnaryConn.client)
 * @param {number} n
 * @returns {Promise<number>}
 */
export function countStream(client, n) {
  return new Promise((resolve, reject) => {
    let got = 0;
    let last = -1;
    const call = client.Count({ n }, { deadline: Date.now() + 30_000 });
    call.on('data', (/** @type {any} */ chunk) => {
      const v = JSON.parse(chunk.json.toString('utf8'));
      if (v.i !== last + 1) reject(new Error(`chunk out of order: ${v.i} after ${last}`));
      last = v.i;
      got++;
    });
    call.on('error', reject);
    call.on('end', () => resolve(got));
  });
}

/**
 * Least-outstanding-calls routing over single-worker connections (round-robin on ties).
 * @template {{ inflight: number, call: (tool: string, args: object) => Promise<unknown> }} M
 * @param {M[]} members
 */
export function leastOutstanding(members) {
  let rr = 0;
  return {
    /** @param {string} tool @param {object} args */
    call(tool, args) {
      if (members.length === 1) return members[0].call(tool, args);
      rr = (rr + 1) % members.length;
      let best = rr;
      for (let i = 0; i < members.length; i++) if (members[i].inflight < members[best].inflight) best = i;
      return members[best].call(tool, args);
    },
  };
}

/**
 * N raw workers plus one client connection each.
 * @param {{ n: number, kind: 'bidi'|'unary', dispatch?: 'task'|'inline'|'threads', socketDir: string, tag: string }} o
 */
export async function rawPool({ n, kind, dispatch = 'task', socketDir, tag }) {
  const workers = await Promise.all(
    Array.from({ length: n }, (_, k) => spawnRawWorker({ address: `unix://${path.join(socketDir, `${tag}-${k}.sock`)}`, dispatch })),
  );
  const conns = workers.map((w) => (kind === 'bidi' ? new BidiConn(w.address) : new UnaryConn(w.address)));
  const router = leastOutstanding(conns);
  return {
    pids: workers.map((w) => w.pid),
    workers,
    conns,
    call: router.call,
    async close() {
      for (const c of conns) c.close();
      await Promise.all(workers.map((w) => w.stop()));
    },
  };
}

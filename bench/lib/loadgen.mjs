// @ts-check
// Closed-loop load: `concurrency` virtual clients, each issuing its next call
// as soon as the previous one answered. One continuous run per measurement:
// warm-up, then a measurement window, then a bounded drain. Only calls that
// complete inside the window count, and CPU is sampled exactly at the window's
// edges, so the drain (in-flight calls finishing) never dilutes the numbers.
// Every run is bounded by time and by a call count; a backend that keeps
// failing is abandoned after MAX_ERRORS errors.
import { performance } from 'node:perf_hooks';
import { pidsCpuSeconds, selfCpuSeconds } from './procs.mjs';

const MAX_ERRORS = 200;

/** @param {number[]} sorted @param {number} p */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

/** @param {number[]} xs */
export function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/**
 * Waits for `ms` or for `promise`, whichever comes first; true when the time ran out.
 * @param {number} ms @param {Promise<unknown>} promise
 */
function waitOr(ms, promise) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  return Promise.race([
    promise.then(() => false),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve(true), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * @typedef {object} LoadOptions
 * @property {number} concurrency
 * @property {number} warmupMs
 * @property {number} durationMs
 * @property {number} [maxCalls]   hard cap on calls issued (warm-up included)
 * @property {number} [drainMs]    how long in-flight calls may take to finish after the window
 * @property {number[]} [hostPids] the bridging host when it is another process (HTTP cases)
 * @property {number[]} [workerPids] the Python processes
 */

/**
 * @typedef {object} LoadResult
 * @property {number} calls        completed inside the window
 * @property {number} seconds      window length
 * @property {number} rps          completions inside the window ÷ window length
 * @property {number} rps_little   concurrency ÷ mean latency (Little's law): steadier when calls complete in bursts
 * @property {number} mean_ms
 * @property {number} p50_ms
 * @property {number} p99_ms
 * @property {number} cpu_client_us   this process (load generator, plus the host for in-process cases) per call
 * @property {number} cpu_host_us     the separate host process per call (NaN when in-process)
 * @property {number} cpu_workers_us  Python processes per call
 * @property {number} errors
 * @property {string|null} firstError
 * @property {boolean} drainTimedOut
 */

/**
 * @param {(i: number, k: number) => Promise<unknown>} call  call number i by virtual client k; must throw when the answer is wrong
 * @param {LoadOptions} o
 * @returns {Promise<LoadResult>}
 */
export async function closedLoop(call, o) {
  const { concurrency, warmupMs, durationMs, maxCalls = 1_000_000, drainMs = 5000, hostPids = [], workerPids = [] } = o;
  let phase = /** @type {'warmup'|'window'|'stop'} */ ('warmup');
  let issued = 0;
  let errors = 0;
  /** @type {string|null} */
  let firstError = null;
  let calls = 0;
  let latSum = 0;
  const lat = new Float64Array(Math.min(maxCalls, 2_000_000));

  async function client(/** @type {unknown} */ _, /** @type {number} */ k) {
    while (phase !== 'stop' && issued < maxCalls) {
      const i = issued++;
      const t0 = performance.now();
      try {
        await call(i, k);
        if (phase === 'window') {
          const dt = performance.now() - t0;
          if (calls < lat.length) lat[calls] = dt;
          latSum += dt;
          calls++;
        }
      } catch (e) {
        errors++;
        if (!firstError) firstError = String(/** @type {Error} */ (e)?.message ?? e).slice(0, 300);
        if (errors >= MAX_ERRORS) phase = 'stop';
      }
    }
  }

  const all = Promise.all(Array.from({ length: concurrency }, client));
  await waitOr(warmupMs, all);
  const cpu0 = { self: selfCpuSeconds(), host: pidsCpuSeconds(hostPids), workers: pidsCpuSeconds(workerPids) };
  const t0 = performance.now();
  phase = phase === 'stop' ? 'stop' : 'window';
  await waitOr(durationMs, all);
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = { self: selfCpuSeconds(), host: pidsCpuSeconds(hostPids), workers: pidsCpuSeconds(workerPids) };
  const counted = calls;
  const meanMs = counted > 0 ? latSum / counted : NaN;
  phase = 'stop';
  const drainTimedOut = await waitOr(drainMs, all);

  const sorted = Array.from(lat.subarray(0, Math.min(counted, lat.length))).sort((a, b) => a - b);
  const per = (/** @type {number} */ s) => (counted > 0 ? (s * 1e6) / counted : NaN);
  return {
    calls: counted,
    seconds,
    rps: counted / seconds,
    rps_little: counted > 0 ? concurrency / (meanMs / 1000) : 0,
    mean_ms: meanMs,
    p50_ms: percentile(sorted, 50),
    p99_ms: percentile(sorted, 99),
    cpu_client_us: per(cpu1.self - cpu0.self),
    cpu_host_us: hostPids.length ? per(cpu1.host - cpu0.host) : NaN,
    cpu_workers_us: workerPids.length ? per(cpu1.workers - cpu0.workers) : NaN,
    errors,
    firstError,
    drainTimedOut,
  };
}

// @ts-check
// Summaries (medians over rounds, pair-by-pair ratios), target checks and the markdown report.
import { median } from './loadgen.mjs';

/** @typedef {import('./loadgen.mjs').LoadResult} LoadResult */

/**
 * @typedef {object} Cell  one (section, tool, case, N, c) measured over rounds
 * @property {string} section
 * @property {string} tool
 * @property {string} kase
 * @property {number} n
 * @property {number} c
 * @property {(LoadResult|null)[]} rounds   index = round number (null: not run that round)
 * @property {Record<string, number>} [extra] e.g. session affinity
 */

export const f0 = (/** @type {number} */ x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
export const f2 = (/** @type {number} */ x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
export const f3 = (/** @type {number} */ x) => (Number.isFinite(x) ? (Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(3)) : 'n/a');
export const fk = (/** @type {number} */ x) =>
  !Number.isFinite(x) ? 'n/a' : x >= 10_000 ? `${(x / 1000).toFixed(1)}k` : x >= 1000 ? `${(x / 1000).toFixed(2)}k` : Math.round(x).toString();

/** @param {Cell} cell */
export function summarize(cell) {
  const runs = /** @type {LoadResult[]} */ (cell.rounds.filter(Boolean));
  const pick = (/** @type {keyof LoadResult} */ k) => median(runs.map((r) => /** @type {number} */ (r[k])));
  const rps = runs.map((r) => r.rps);
  return {
    section: cell.section,
    tool: cell.tool,
    case: cell.kase,
    n: cell.n,
    c: cell.c,
    rounds: runs.length,
    rps: pick('rps'),
    rps_min: rps.length ? Math.min(...rps) : NaN,
    rps_max: rps.length ? Math.max(...rps) : NaN,
    p50_ms: pick('p50_ms'),
    p99_ms: pick('p99_ms'),
    cpu_client_us: pick('cpu_client_us'),
    cpu_host_us: pick('cpu_host_us'),
    cpu_workers_us: pick('cpu_workers_us'),
    calls: runs.reduce((s, r) => s + r.calls, 0),
    errors: runs.reduce((s, r) => s + r.errors, 0),
    first_error: runs.find((r) => r.firstError)?.firstError ?? null,
    ...(cell.extra ?? {}),
  };
}

/**
 * Median over rounds of a/b for one metric, pairing round r of `a` with round r of `b`.
 * @param {Cell|undefined} a @param {Cell|undefined} b @param {(r: LoadResult) => number} metric
 * @param {'ratio'|'diff'} mode
 */
export function pairwise(a, b, metric, mode = 'ratio') {
  if (!a || !b) return NaN;
  const xs = [];
  for (let r = 0; r < Math.min(a.rounds.length, b.rounds.length); r++) {
    const x = a.rounds[r];
    const y = b.rounds[r];
    if (!x || !y) continue;
    xs.push(mode === 'ratio' ? metric(x) / metric(y) : metric(x) - metric(y));
  }
  return median(xs);
}

/**
 * @typedef {object} Check
 * @property {string} check
 * @property {string} where
 * @property {number} value
 * @property {string} shown
 * @property {string} target
 * @property {boolean|null} ok  null: informational
 * @property {string} [note]
 */

/** @param {Check[]} checks */
export function targetsTable(checks) {
  const L = ['| check | where | measured | target | result |', '|---|---|---|---|---|'];
  for (const c of checks) {
    const res = c.ok === null ? 'info' : c.ok ? 'PASS' : '**MISS**';
    L.push(`| ${c.check} | ${c.where} | ${c.shown} | ${c.target} | ${res}${c.note ? ` (${c.note})` : ''} |`);
  }
  return L.join('\n');
}

/**
 * One row per (case, N) with every concurrency side by side.
 * @param {ReturnType<typeof summarize>[]} rows  one tool of one section
 * @param {number[]} cs
 * @param {{ ratios?: { label: string, key: string }[], hostColumn?: boolean }} [o]
 */
export function loadTable(rows, cs, o = {}) {
  const ratios = o.ratios ?? [];
  const head = ['case', 'N'];
  for (const c of cs) head.push(`c=${c} calls/s`, `c=${c} p50 / p99 ms`);
  head.push(`CPU µs/call ${o.hostColumn ? 'client + host + workers' : 'host + workers'} (${cs.map((c) => `c=${c}`).join(' / ')})`);
  for (const r of ratios) head.push(`${r.label} (${cs.map((c) => `c=${c}`).join(' / ')})`);
  head.push('calls/s min-max over rounds', 'errors');
  const L = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  /** @type {Map<string, ReturnType<typeof summarize>[]>} */
  const byCase = new Map();
  for (const r of rows) {
    const key = `${r.case}\u0000${r.n}`;
    if (!byCase.has(key)) byCase.set(key, []);
    byCase.get(key)?.push(r);
  }
  for (const group of byCase.values()) {
    const at = (/** @type {number} */ c) => group.find((r) => r.c === c);
    const cells = [group[0].case, String(group[0].n)];
    for (const c of cs) {
      const r = at(c);
      cells.push(r ? fk(r.rps) : '-', r ? `${f3(r.p50_ms)} / ${f3(r.p99_ms)}` : '-');
    }
    cells.push(
      cs
        .map((c) => {
          const r = at(c);
          if (!r) return '-';
          const parts = o.hostColumn ? [r.cpu_client_us, r.cpu_host_us, r.cpu_workers_us] : [r.cpu_client_us, r.cpu_workers_us];
          const total = parts.reduce((s, x) => s + (Number.isFinite(x) ? x : 0), 0);
          return `${f0(total)} (${parts.map(f0).join('+')})`;
        })
        .join(' / '),
    );
    for (const ratio of ratios) cells.push(cs.map((c) => f2(/** @type {any} */ (at(c))?.[ratio.key])).join(' / '));
    cells.push(
      cs
        .map((c) => {
          const r = at(c);
          return r ? `${fk(r.rps_min)}-${fk(r.rps_max)}` : '-';
        })
        .join(' / '),
      String(group.reduce((s, r) => s + r.errors, 0)),
    );
    L.push(`| ${cells.join(' | ')} |`);
  }
  return L.join('\n');
}

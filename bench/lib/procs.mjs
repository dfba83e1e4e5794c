// @ts-check
// Every process the suite starts is registered here and stopped by pid: at the
// end of its section, on errors, on SIGINT/SIGTERM/SIGHUP and (synchronously,
// SIGKILL) when the harness exits. Python children also exit on stdin EOF, so
// even a SIGKILLed harness leaves nothing behind.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** @typedef {import('node:child_process').ChildProcess} ChildProcess */

/** @type {Set<ChildProcess>} */
const children = new Set();
/** Extra pids (e.g. Snakepit's workers, which the library owns) to SIGKILL if we die abruptly. */
const extraPids = new Set();
/** @type {Set<() => Promise<unknown>>} async cleanups (Nest contexts...) run on interrupt */
const cleanups = new Set();

/**
 * @param {string} cmd
 * @param {string[]} args
 * @param {import('node:child_process').SpawnOptions} [options]
 */
export function spawnTracked(cmd, args, options = {}) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.on('error', () => undefined); // surfaced through 'exit' / waitForLine
  child.stdin?.on('error', () => undefined);
  return child;
}

/** @param {number[]} pids */
export function registerPids(pids) {
  for (const pid of pids) extraPids.add(pid);
}

/** @param {number[]} pids */
export function unregisterPids(pids) {
  for (const pid of pids) extraPids.delete(pid);
}

/** @param {() => Promise<unknown>} fn */
export function registerCleanup(fn) {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/**
 * Resolves with the first capture group of the first stdout line matching `re`.
 * @param {ChildProcess} child
 * @param {RegExp} re
 * @param {number} timeoutMs
 * @param {string} label
 * @returns {Promise<string>}
 */
export function waitForLine(child, re, timeoutMs, label) {
  return new Promise((resolve, reject) => {
    let stderr = '';
    const onErr = (/** @type {Buffer} */ d) => {
      if (stderr.length < 4000) stderr += d.toString();
    };
    child.stderr?.on('data', onErr);
    if (!child.stdout) return reject(new Error(`${label}: no stdout`));
    const rl = createInterface({ input: child.stdout });
    const done = () => {
      clearTimeout(timer);
      child.off('exit', onExit);
      child.stderr?.off('data', onErr);
      rl.close();
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${label}: not ready within ${timeoutMs} ms; stderr: ${stderr.slice(-800)}`));
    }, timeoutMs);
    const onExit = (/** @type {number|null} */ code, /** @type {string|null} */ sig) => {
      done();
      reject(new Error(`${label}: exited (${code ?? sig}) before it was ready; stderr: ${stderr.slice(-800)}`));
    };
    child.once('exit', onExit);
    rl.on('line', (line) => {
      const m = re.exec(line);
      if (m) {
        done();
        // keep draining stdout/stderr so a chatty child never blocks on a full pipe
        child.stdout?.resume();
        child.stderr?.resume();
        resolve(m[1] ?? line);
      }
    });
  });
}

/**
 * Close stdin, SIGTERM, SIGKILL after graceMs; resolves when it exited.
 * @param {ChildProcess} child
 * @param {number} [graceMs]
 */
export function stopChild(child, graceMs = 1500) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(undefined);
    const timer = setTimeout(() => {
      try {
        child.kill('SIGKILL');
      } catch {
        // exited meanwhile
      }
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    try {
      child.stdin?.end();
    } catch {
      // stdin closed already
    }
    try {
      child.kill('SIGTERM');
    } catch {
      // exited meanwhile
    }
  });
}

export async function stopAll() {
  for (const fn of [...cleanups].reverse()) {
    cleanups.delete(fn);
    await Promise.race([fn().catch(() => undefined), new Promise((r) => setTimeout(r, 8000))]);
  }
  await Promise.all([...children].map((c) => stopChild(c)));
  killExtraSync();
}

function killExtraSync() {
  for (const pid of extraPids) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // no such process (or group): gone already
      }
    }
  }
  extraPids.clear();
}

/** Last resort from process.on('exit'): synchronous SIGKILL of everything still known. */
export function killAllSync() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  killExtraSync();
}

export function liveChildren() {
  return children.size;
}

const CLK_TCK = 100; // USER_HZ on Linux

/** @param {number} pid @returns {string[] | null} the fields after "(comm) " */
function statFields(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** CPU seconds (user+sys, all threads) a pid used so far; NaN when unreadable. */
export function pidCpuSeconds(/** @type {number} */ pid) {
  const f = statFields(pid);
  return f ? (Number(f[11]) + Number(f[12])) / CLK_TCK : NaN;
}

/** Summed CPU seconds of several pids (NaN if any is unreadable). */
export function pidsCpuSeconds(/** @type {number[]} */ pids) {
  let sum = 0;
  for (const pid of pids) sum += pidCpuSeconds(pid);
  return sum;
}

export function selfCpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Resident set size of a pid in bytes (VmRSS), NaN when unreadable. */
export function pidRssBytes(/** @type {number} */ pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Pids whose parent is `pid`. */
export function childPidsOf(/** @type {number} */ pid) {
  const out = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    if (f && Number(f[1]) === pid) out.push(Number(entry));
  }
  return out;
}

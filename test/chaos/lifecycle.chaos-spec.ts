import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, isAlive, REPO_ROOT, sleep, startSampleApp, workerPids, type SampleApp } from '../helpers/sample-app';

jest.setTimeout(120_000);

/**
 * Black-box chaos against the built sample app with real Python workers:
 * kills, freezes, recycle storms, leaks and host crashes. Every loop is
 * bounded in count and time; every process started here is stopped.
 */

interface Outcome {
  status: number;
  code?: string;
  result?: unknown;
}

/** One HTTP call on a fresh connection (no keep-alive), so the host's fds reflect only its own state. */
function post(app: SampleApp, path: string, body: unknown): Promise<Outcome> {
  const payload = JSON.stringify(body);
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: app.port,
        path,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let parsed: { result?: unknown; error?: { code?: string } } = {};
          try {
            parsed = JSON.parse(text) as typeof parsed;
          } catch {
            // left empty: the assertion on status reports it
          }
          resolve({ status: res.statusCode ?? 0, code: parsed.error?.code, result: parsed.result });
        });
      },
    );
    req.on('error', () => resolve({ status: 0, code: 'CONNECTION_ERROR' }));
    req.end(payload);
  });
}

const execute = (app: SampleApp, tool: string, args: Record<string, unknown> = {}) => post(app, '/api/execute', { tool, args });

/** `lanes` closed loops of `add` calls for `durationMs` (each call checked), with an optional extra load. */
async function sustainedLoad(app: SampleApp, lanes: number, durationMs: number): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const stopAt = Date.now() + durationMs;
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let i = 0; i < 100_000 && Date.now() < stopAt; i++) {
        const outcome = await execute(app, 'add', { a: lane, b: i });
        outcomes.push(outcome.status === 200 && outcome.result !== lane + i ? { status: -1, code: 'WRONG_RESULT' } : outcome);
      }
    }),
  );
  return outcomes;
}

async function readyWorkers(app: SampleApp, size: number) {
  return eventually(async () => {
    const workers = await app.workers();
    return workers.length === size && workers.every((w) => w.state === 'ready') ? workers : undefined;
  }, 30_000);
}

function hostFds(pid: number): { total: number; sockets: number } {
  const fds = readdirSync(`/proc/${pid}/fd`);
  let sockets = 0;
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++;
    } catch {
      // closed while we looked
    }
  }
  return { total: fds.length, sockets };
}

describe('chaos: host death', () => {
  it('SIGKILL of the host with 8 busy workers: no Python process of that run is alive 5 s later, nothing left on disk or in shared memory', async () => {
    const socketRoot = mkdtempSync(join(tmpdir(), 'snakepit-chaos-sock-'));
    const stateDir = mkdtempSync(join(tmpdir(), 'snakepit-chaos-state-'));
    const shmRoot = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'snakepit-chaos-shm-'));
    const app = await startSampleApp({
      SNAKEPIT_POOL_SIZE: '8',
      SNAKEPIT_SOCKET_DIR: socketRoot,
      SNAKEPIT_STATE_DIR: stateDir,
      SNAKEPIT_SHARED_MEMORY_DIR: shmRoot,
    });
    try {
      // Each worker's two region files (8 here and the other pools'), in the run's own directory.
      expect(readdirSync(shmRoot).flatMap((dir) => readdirSync(join(shmRoot, dir))).length).toBeGreaterThanOrEqual(16);
      const inFlight = Array.from({ length: 8 }, () => execute(app, 'sleep', { ms: 60_000 }));
      const workers = await eventually(async () => {
        const list = await app.workers();
        return list.filter((w) => w.busy > 0).length === 8 ? list : undefined;
      });
      const pids = workers.map((w) => w.pid);
      await app.stop('SIGKILL');
      await eventually(() => pids.every((pid) => !isAlive(pid)) || undefined, 5_000, 50);
      expect((await Promise.all(inFlight)).every((o) => o.status === 0)).toBe(true);
      // The watchdog also removed the run's socket directory and its registry entry.
      await eventually(() => (readdirSync(socketRoot).length === 0 && readdirSync(stateDir).length === 0) || undefined, 5_000, 50);
      // And the run's shared-memory directory, regions and all.
      await eventually(() => readdirSync(shmRoot).length === 0 || undefined, 5_000, 50);
    } finally {
      await app.stop('SIGKILL');
      rmSync(socketRoot, { recursive: true, force: true });
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(shmRoot, { recursive: true, force: true });
    }
  });

  it('a new host cleans up what a crashed run of its instance left, and nothing else', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'snakepit-chaos-state-'));
    const socketRoot = mkdtempSync(join(tmpdir(), 'snakepit-chaos-sock-'));
    const env = {
      SNAKEPIT_POOL_SIZE: '2',
      SNAKEPIT_INSTANCE: 'chaos-leftovers',
      SNAKEPIT_STATE_DIR: stateDir,
      SNAKEPIT_SOCKET_DIR: socketRoot,
      SNAKEPIT_WATCHDOG: 'false',
    };
    // An unrelated Python process whose command line looks like a worker's.
    const decoy = spawn(
      join(REPO_ROOT, '.venv', 'bin', 'python'),
      ['-c', 'import time; time.sleep(120)', '-m', 'snakepit_bridge.worker', '--adapter', 'snakepit_bridge.examples.showcase:ShowcaseAdapter'],
      { stdio: 'ignore' },
    );
    const first = await startSampleApp(env);
    let second: SampleApp | undefined;
    try {
      const leftovers = (await first.workers()).map((w) => w.pid);
      // Frozen workers cannot notice their host is gone: they become leftovers.
      for (const pid of leftovers) process.kill(pid, 'SIGSTOP');
      await first.stop('SIGKILL');
      await sleep(500);
      expect(leftovers.every(isAlive)).toBe(true);
      const [leftoverSocketDir] = readdirSync(socketRoot);

      second = await startSampleApp(env);
      await eventually(() => leftovers.every((pid) => !isAlive(pid)) || undefined, 10_000);
      expect(isAlive(decoy.pid!)).toBe(true);
      expect(readdirSync(socketRoot)).not.toContain(leftoverSocketDir);
      expect(second.logs.some((line) => line.includes('killed workers left behind by an earlier run'))).toBe(true);
      expect((await execute(second, 'ping')).result).toBe('pong');
    } finally {
      await second?.stop();
      await first.stop('SIGKILL');
      decoy.kill('SIGKILL');
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(socketRoot, { recursive: true, force: true });
    }
  });
});

describe('chaos: workers dying and freezing', () => {
  it('30 random kills of healthy workers over 20 s of load, on defaults: every call succeeds or fails with WORKER_CRASHED; no crash loop, no open circuit; the pool refills', async () => {
    const app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '4' });
    try {
      await readyWorkers(app, 4);
      const load = sustainedLoad(app, 8, 20_000);
      let kills = 0;
      for (let i = 0; i < 30; i++) {
        await sleep(650);
        const ready = (await app.workers()).filter((w) => w.state === 'ready');
        const victim = ready[Math.floor(Math.random() * ready.length)];
        if (!victim) continue;
        try {
          process.kill(victim.pid, 'SIGKILL');
          kills++;
        } catch {
          // it died on its own meanwhile
        }
      }
      const outcomes = await load;
      const unexpected = outcomes.filter((o) => o.status !== 200 && !(o.status === 502 && o.code === 'WORKER_CRASHED'));
      expect(kills).toBeGreaterThanOrEqual(25);
      expect(outcomes.length).toBeGreaterThan(500);
      expect(unexpected).toEqual([]);
      await readyWorkers(app, 4);
      expect((await execute(app, 'ping')).result).toBe('pong');
      const pool = (await app.pools())[0];
      expect([pool.crashLooping, pool.circuit]).toEqual([false, 'closed']);
      expect(app.logs.some((line) => line.includes('crash-looping') || line.includes('circuit opened'))).toBe(false);
    } finally {
      await app.stop();
    }
  });

  it('a frozen (SIGSTOPped) worker is detected by heartbeats and replaced; a busy one is not', async () => {
    const app = await startSampleApp({
      SNAKEPIT_POOL_SIZE: '2',
      SNAKEPIT_HEARTBEAT_INTERVAL_MS: '300',
      SNAKEPIT_HEARTBEAT_TIMEOUT_MS: '300',
      SNAKEPIT_HEARTBEAT_MAX_MISSED: '3',
    });
    try {
      await readyWorkers(app, 2);
      const longCall = execute(app, 'sleep', { ms: 3000 }); // keeps one worker busy while heartbeats go on
      const frozen = await eventually(async () => {
        const list = await app.workers();
        return list.some((w) => w.busy > 0) ? list.find((w) => w.busy === 0) : undefined;
      });
      process.kill(frozen.pid, 'SIGSTOP');
      const replaced = await eventually(async () => {
        const list = await app.workers();
        return list.length === 2 && !list.some((w) => w.id === frozen.id) && list.every((w) => w.state === 'ready') ? list : undefined;
      }, 10_000);
      expect(replaced.map((w) => w.pid)).not.toContain(frozen.pid);
      expect(isAlive(frozen.pid)).toBe(false);
      expect((await longCall).status).toBe(200);
      expect(app.logs.some((line) => line.includes('"reason":"frozen"'))).toBe(true);
    } finally {
      await app.stop();
    }
  });

  it('crash loop: restarts pause and the pool reports it; it recovers once workers can start again', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'snakepit-chaos-flag-'));
    const failFile = join(stateDir, 'fail-start');
    const app = await startSampleApp({
      SNAKEPIT_POOL_SIZE: '2',
      SNAKEPIT_SHOWCASE_FAIL_START_FILE: failFile,
      SNAKEPIT_INHERIT_ENV: 'SNAKEPIT_SHOWCASE_FAIL_START_FILE',
      SNAKEPIT_CRASH_LOOP_THRESHOLD: '3',
      SNAKEPIT_CRASH_LOOP_COOLDOWN_MS: '1500',
    });
    try {
      await readyWorkers(app, 2);
      writeFileSync(failFile, 'workers refuse to start while this file exists');
      await execute(app, 'crash');
      await execute(app, 'crash');
      const pool = await eventually(async () => {
        const info = (await app.pools())[0];
        return info.crashLooping ? info : undefined;
      }, 20_000);
      expect(pool.ready).toBe(0);
      expect(app.logs.some((line) => line.includes('pool is crash-looping'))).toBe(true);
      rmSync(failFile);
      await eventually(async () => {
        const info = (await app.pools())[0];
        return !info.crashLooping && info.ready === 2 ? info : undefined;
      }, 30_000);
      expect((await execute(app, 'ping')).result).toBe('pong');
    } finally {
      await app.stop();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it('the circuit opens when most calls find the pool broken, fails fast, and closes after a successful probe', async () => {
    // Every call kills its worker, as a poisoned adapter would. Only the probe delay and the crash-loop
    // cooldown are shortened; the rate, window and minimum throughput are the defaults.
    const app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '2', SNAKEPIT_CIRCUIT_RESET_MS: '1500', SNAKEPIT_CRASH_LOOP_COOLDOWN_MS: '1500' });
    try {
      await readyWorkers(app, 2);
      const codes: Array<string | undefined> = [];
      for (let i = 0; i < 60 && codes.at(-1) !== 'CIRCUIT_OPEN'; i++) {
        codes.push((await execute(app, 'crash')).code);
        await sleep(50);
      }
      expect(codes.at(-1)).toBe('CIRCUIT_OPEN');
      expect(codes.slice(0, -1).filter((code) => code !== 'WORKER_CRASHED' && code !== 'WORKER_UNAVAILABLE')).toEqual([]);
      // Deaths of workers that never answered a call are start problems: the pool says it is crash-looping.
      expect(app.logs.some((line) => line.includes('pool is crash-looping'))).toBe(true);
      const open = await execute(app, 'ping');
      expect([open.status, open.code]).toEqual([503, 'CIRCUIT_OPEN']);
      expect((await app.pools())[0].circuit).toBe('open');
      const probe = await eventually(
        async () => {
          const outcome = await execute(app, 'ping');
          return outcome.status === 200 ? outcome : undefined;
        },
        20_000,
        250,
      );
      expect(probe.result).toBe('pong');
      expect((await app.pools())[0].circuit).toBe('closed');
      await readyWorkers(app, 2);
    } finally {
      await app.stop();
    }
  });
});

describe('chaos: recycling under load', () => {
  it('a recycle storm and a rolling restart under load fail no call and replace every worker', async () => {
    const app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '4' });
    try {
      const before = (await readyWorkers(app, 4)).map((w) => w.id);
      const load = sustainedLoad(app, 8, 8_000);
      await sleep(1_000);
      const storm = await post(app, '/api/pools/default/recycle', {});
      expect(storm.status).toBe(200);
      const afterStorm = (await readyWorkers(app, 4)).map((w) => w.id);
      expect(afterStorm.filter((id) => before.includes(id))).toEqual([]);
      const rolling = await post(app, '/api/pools/default/restart', {});
      expect(rolling.status).toBe(200);
      const outcomes = await load;
      expect(outcomes.length).toBeGreaterThan(200);
      expect(outcomes.filter((o) => o.status !== 200)).toEqual([]);
      const afterRolling = (await readyWorkers(app, 4)).map((w) => w.id);
      expect(afterRolling.filter((id) => afterStorm.includes(id))).toEqual([]);
    } finally {
      await app.stop();
    }
  });
});

describe('chaos: leaks', () => {
  it('after 1,000 calls with crashes and recycles in between, fds, children and sockets are back to baseline', async () => {
    const socketRoot = mkdtempSync(join(tmpdir(), 'snakepit-chaos-sock-'));
    const app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '2', SNAKEPIT_SOCKET_DIR: socketRoot });
    const socketFiles = () => readdirSync(socketRoot).flatMap((dir) => readdirSync(join(socketRoot, dir)));
    const settled = async () => {
      await readyWorkers(app, 2);
      await eventually(async () => (await app.workers()).every((w) => w.busy === 0) || undefined);
    };
    try {
      // Warm every path once so lazily created handles are part of the baseline.
      await execute(app, 'add', { a: 1, b: 2 });
      await execute(app, 'crash');
      await post(app, '/api/pools/default/recycle', {});
      await settled();
      await sleep(300);
      const baseline = { fds: hostFds(app.pid), children: workerPids(app.pid).length, sockets: socketFiles().length };
      expect(baseline.children).toBe(2);
      expect(baseline.sockets).toBe(2);

      let failures = 0;
      for (let i = 0; i < 1000; i++) {
        if (i % 100 === 50) {
          const crashed = await execute(app, 'crash');
          expect(crashed.code).toBe('WORKER_CRASHED');
          await settled();
        } else if (i % 250 === 125) {
          expect((await post(app, '/api/pools/default/recycle', {})).status).toBe(200);
        } else {
          const outcome = await execute(app, 'add', { a: i, b: 1 });
          if (outcome.status !== 200 || outcome.result !== i + 1) failures++;
        }
      }
      expect(failures).toBe(0);
      await settled();
      await eventually(() => {
        const fds = hostFds(app.pid);
        return fds.total === baseline.fds.total && fds.sockets === baseline.fds.sockets ? fds : undefined;
      }, 10_000);
      expect(workerPids(app.pid)).toHaveLength(baseline.children);
      expect(socketFiles()).toHaveLength(baseline.sockets);
    } finally {
      await app.stop();
    }
    // A clean stop removes the private socket directory too.
    expect(readdirSync(socketRoot)).toEqual([]);
    rmSync(socketRoot, { recursive: true, force: true });
  });
});

describe('chaos: graceful shutdown under load', () => {
  it('SIGTERM with calls in flight: they finish, new ones are refused, nothing is left running', async () => {
    const socketRoot = mkdtempSync(join(tmpdir(), 'snakepit-chaos-sock-'));
    const app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '4', SNAKEPIT_SOCKET_DIR: socketRoot });
    const pids = (await readyWorkers(app, 4)).map((w) => w.pid);
    const inFlight = Array.from({ length: 6 }, (_, i) => execute(app, 'sleep', { ms: 400 + i * 50 }));
    await eventually(async () => (await app.workers()).filter((w) => w.busy > 0).length === 4 || undefined);
    const exited = app.stop('SIGTERM');
    await sleep(100);
    const late = await execute(app, 'ping');
    expect(late.status === 0 || late.code === 'SHUTTING_DOWN').toBe(true);
    const outcomes = await Promise.all(inFlight);
    expect(outcomes.map((o) => o.status)).toEqual(Array(6).fill(200));
    await exited;
    await eventually(() => pids.every((pid) => !isAlive(pid)) || undefined, 5_000);
    expect(readdirSync(socketRoot)).toEqual([]);
    rmSync(socketRoot, { recursive: true, force: true });
  });
});

describe('recycling triggers', () => {
  it('recycles by request count and by TTL without failing a call', async () => {
    const app = await startSampleApp({
      SNAKEPIT_POOL_SIZE: '1',
      SNAKEPIT_MAX_REQUESTS_PER_WORKER: '5',
      SNAKEPIT_WORKER_TTL_MS: '2500',
      SNAKEPIT_LIFECYCLE_CHECK_MS: '200',
    });
    try {
      const seen = new Set<string>();
      for (let i = 0; i < 12; i++) {
        const { status, body } = await app.execute('add', { a: i, b: 0 });
        expect(status).toBe(200);
        seen.add(body.workerId);
      }
      expect(seen.size).toBeGreaterThanOrEqual(3); // 12 calls at 5 per worker
      const [current] = await readyWorkers(app, 1);
      const replaced = await eventually(async () => {
        const [worker] = await readyWorkers(app, 1);
        return worker.id !== current.id ? worker : undefined;
      }, 15_000);
      expect(replaced.pid).not.toBe(current.pid);
      expect(isAlive(current.pid)).toBe(false);
      expect((await app.execute('ping')).body.result).toBe('pong');
    } finally {
      await app.stop();
    }
  });

  it('recycles a worker whose process group grows past the memory threshold', async () => {
    const app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1', SNAKEPIT_MEMORY_THRESHOLD_MB: '150', SNAKEPIT_LIFECYCLE_CHECK_MS: '200' });
    try {
      const [before] = await readyWorkers(app, 1);
      expect((await app.execute('allocate', { mb: 200 })).body.result).toBe(200);
      const after = await eventually(async () => {
        const [worker] = await readyWorkers(app, 1);
        return worker.id !== before.id ? worker : undefined;
      }, 15_000);
      expect(app.logs.some((line) => line.includes('above its memory threshold'))).toBe(true);
      expect((await app.execute('allocate', { mb: 1 })).body.result).toBe(1); // the new worker holds nothing
      expect(after.pid).not.toBe(before.pid);
    } finally {
      await app.stop();
    }
  });
});

describe('retrying after a crash', () => {
  it('retries a call marked idempotent on another worker, and never one that is not', async () => {
    const app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '2' });
    try {
      for (const idempotent of [true, false]) {
        await readyWorkers(app, 2);
        const pending = post(app, '/api/execute', { tool: 'sleep', args: { ms: 1500 }, idempotent });
        const victim = await eventually(async () => (await app.workers()).find((w) => w.busy > 0));
        process.kill(victim.pid, 'SIGKILL');
        const outcome = await pending;
        if (idempotent) expect([outcome.status, outcome.result]).toEqual([200, 1500]);
        else expect([outcome.status, outcome.code]).toEqual([502, 'WORKER_CRASHED']);
      }
      expect(app.logs.filter((line) => line.includes('retrying an idempotent call'))).toHaveLength(1);
    } finally {
      await app.stop();
    }
  });
});

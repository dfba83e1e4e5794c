import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, isAlive, startSampleApp, workerPids, type ExecuteOutcome, type SampleApp } from '../helpers/sample-app';

jest.setTimeout(120_000);

/**
 * Black-box chaos against the built sample app with real Python workers: the
 * host's state directory disappears, then cannot be written, while calls run
 * and workers die. The host must stay up, answer, refill its pool, and leave
 * no Python process behind. Every loop is bounded in count and time.
 */

interface Outcome {
  status: number;
  code?: string;
}

/** `lanes` closed loops of `add` calls until `stop()` says so (each result checked). */
function load(app: SampleApp, lanes: number) {
  const outcomes: Outcome[] = [];
  let stopped = false;
  const deadline = Date.now() + 60_000;
  const done = Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let i = 0; i < 100_000 && !stopped && Date.now() < deadline; i++) {
        try {
          const { status, body } = await app.execute<ExecuteOutcome>('add', { a: lane, b: i });
          outcomes.push(status === 200 && body.result !== lane + i ? { status: -1, code: 'WRONG_RESULT' } : { status, code: body?.error?.code });
        } catch {
          outcomes.push({ status: 0, code: 'CONNECTION_ERROR' });
        }
      }
    }),
  );
  return {
    outcomes,
    stop: async () => {
      stopped = true;
      await done;
      return outcomes;
    },
  };
}

describe('chaos: host-side state', () => {
  it('state directory deleted, then unwritable, while calls run and workers are killed: the host answers, refills, leaves no orphan', async () => {
    // Stands for $XDG_RUNTIME_DIR, so the default state directory is this run's own (never the machine's shared one).
    const runtimeDir = mkdtempSync(join(tmpdir(), 'snakepit-chaos-xdg-'));
    const stateDir = join(runtimeDir, 'snakepit');
    const app = await startSampleApp({ XDG_RUNTIME_DIR: runtimeDir });
    const registryPath = join(stateDir, `sample-${app.port}.json`);
    const seenPids = new Set<number>();
    const registeredPids = () => (JSON.parse(readFileSync(registryPath, 'utf8')) as { workers: Array<{ pid: number }> }).workers.map((w) => w.pid).sort();

    /** Kills a ready worker and waits for the pool to be back at full size, the host's Python children matching it. */
    const killAndRefill = async () => {
      const before = await fullPool();
      const victim = before[0];
      process.kill(victim.pid, 'SIGKILL');
      const after = await eventually(async () => {
        const list = await fullPool().catch(() => undefined);
        return list && !list.some((w) => w.pid === victim.pid) ? list : undefined;
      }, 30_000);
      // No Python process of the host runs unknown to the pool.
      await eventually(() => workerPids(app.pid).length === after.length || undefined, 10_000);
      return after;
    };
    const fullPool = async () => {
      const list = await eventually(async () => {
        const workers = await app.workers();
        return workers.length === 2 && workers.every((w) => w.state === 'ready') ? workers : undefined;
      }, 30_000);
      for (const worker of list) seenPids.add(worker.pid);
      for (const pid of workerPids(app.pid)) seenPids.add(pid);
      return list;
    };

    try {
      const initial = await fullPool();
      expect(statSync(stateDir).mode & 0o777).toBe(0o700);
      expect(registeredPids()).toEqual(initial.map((w) => w.pid).sort());
      const calls = load(app, 4);

      // 1. A /tmp cleaner removes the state directory: the next registry write re-creates it.
      rmSync(stateDir, { recursive: true });
      const refilled = await killAndRefill();
      await eventually(
        () =>
          (existsSync(registryPath) &&
            registeredPids().join() ===
              refilled
                .map((w) => w.pid)
                .sort()
                .join()) ||
          undefined,
        10_000,
      );
      expect(statSync(stateDir).mode & 0o777).toBe(0o700);
      expect(app.logs.some((line) => line.includes('re-created it'))).toBe(true);

      // 2. The directory cannot be written at all (a file in its place fails like a full disk).
      rmSync(stateDir, { recursive: true });
      writeFileSync(stateDir, 'not a directory');
      await killAndRefill();
      await eventually(() => app.logs.some((line) => line.includes('could not write the process registry')) || undefined, 10_000);

      // 3. Writable again: the registry catches up with the pool.
      rmSync(stateDir);
      const last = await killAndRefill();
      await eventually(
        () =>
          (existsSync(registryPath) &&
            registeredPids().join() ===
              last
                .map((w) => w.pid)
                .sort()
                .join()) ||
          undefined,
        10_000,
      );
      expect(app.logs.some((line) => line.includes('the process registry is written again'))).toBe(true);

      const outcomes = await calls.stop();
      const unexpected = outcomes.filter((o) => o.status !== 200 && !(o.status === 502 && o.code === 'WORKER_CRASHED'));
      expect(outcomes.length).toBeGreaterThan(50);
      expect(unexpected).toEqual([]);
      expect(app.child.exitCode).toBeNull();
      expect((await app.execute('ping')).body.result).toBe('pong');
      expect(app.logs.some((line) => line.includes('unhandledRejection'))).toBe(false);

      await app.stop();
      expect(seenPids.size).toBeGreaterThanOrEqual(5);
      await eventually(() => [...seenPids].every((pid) => !isAlive(pid)) || undefined, 10_000, 50);
      // A clean stop (SIGTERM) removes the registry.
      expect(existsSync(registryPath)).toBe(false);
    } finally {
      await app.stop('SIGKILL');
      for (const pid of seenPids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      rmSync(runtimeDir, { recursive: true, force: true });
    }
  });
});

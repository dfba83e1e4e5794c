import { expect } from '@jest/globals';
import type { WorkerInfo } from '@snakepit/nestjs';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, sleep, startSampleApp, type ExecuteOutcome, type SampleApp } from '../helpers/sample-app';

jest.setTimeout(120_000);

/** A float32 array as the sample app's `$ndarray` JSON. */
function ndarrayJson(x: Float32Array) {
  return { $ndarray: { dtype: 'float32', shape: [x.length], data: Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64') } };
}

/**
 * Worker kills in the middle of large-array traffic, on defaults (shared
 * memory on, breaker and crash-loop detection on): the built sample app, real
 * Python workers, a thread-profile pool so several calls share each worker's
 * regions at once. Every answer is right or a structured WORKER_CRASHED, and
 * what the dead workers held in shared memory goes with them.
 */
describe('chaos: shared memory under worker kills', () => {
  const base = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'snakepit-chaos-shm-'));
  let app: SampleApp;
  const regionFiles = () => readdirSync(base).flatMap((dir) => readdirSync(join(base, dir)).map((file) => file));

  beforeAll(async () => {
    app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '2', SNAKEPIT_PROFILE: 'thread', SNAKEPIT_THREADS_PER_WORKER: '4', SNAKEPIT_SHARED_MEMORY_DIR: base });
  });

  afterAll(async () => {
    await app?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('10 SIGKILLs of busy workers under 6 lanes of 1 MiB array_scale calls: right answers or WORKER_CRASHED; nothing left of the dead workers', async () => {
    const x = Float32Array.from({ length: 256 * 1024 }, (_, i) => (i % 512) - 256);
    const body = { x: ndarrayJson(x), factor: 2 };
    const outcomes = new Map<string, number>();
    const count = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    let stop = false;
    const lanes = Array.from({ length: 6 }, async () => {
      for (let i = 0; i < 5_000 && !stop; i++) {
        const { status, body: answer } = await app.execute<ExecuteOutcome>('array_scale', body);
        if (status !== 200) {
          count(answer.error?.code ?? `HTTP ${status}`);
          continue;
        }
        const y = new Float32Array(new Uint8Array(Buffer.from((answer.result as ReturnType<typeof ndarrayJson>).$ndarray.data, 'base64')).buffer);
        count(y.length === x.length && y.every((v, k) => v === x[k] * 2) ? 'ok' : 'WRONG_RESULT');
      }
    });
    const killed: string[] = [];
    for (let kill = 0; kill < 10; kill++) {
      await sleep(400);
      const busy = await eventually(async () => (await app.workers()).find((w) => w.state === 'ready' && w.busy > 0), 10_000, 20);
      killed.push(busy.id);
      process.kill(busy.pid, 'SIGKILL');
    }
    await sleep(500);
    stop = true;
    await Promise.all(lanes);

    expect(outcomes.get('WRONG_RESULT')).toBeUndefined();
    expect([...outcomes.keys()].filter((key) => key !== 'ok' && key !== 'WORKER_CRASHED')).toEqual([]);
    expect(outcomes.get('ok')).toBeGreaterThan(0);
    // The pool refills; nothing is held in shared memory once the traffic stopped.
    const workers = await eventually(async () => {
      const list = await app.workers();
      return list.length === 2 && list.every((w) => w.state === 'ready') ? list : undefined;
    }, 30_000);
    expect(workers.map((w: WorkerInfo) => w.sharedMemoryBytes)).toEqual([0, 0]);
    // Exactly the live workers' two files each: every killed worker's regions were removed.
    expect(regionFiles().sort()).toEqual(workers.flatMap((w) => [`${w.id}.in`, `${w.id}.out`]).sort());
    for (const id of killed) expect(regionFiles().some((file) => file.startsWith(`${id}.`))).toBe(false);
    // Healthy workers killed at this rate are restarted at once: no crash loop, no open circuit.
    const [pool] = await app.pools();
    expect([pool.crashLooping, pool.circuit]).toEqual([false, 'closed']);
  });
});

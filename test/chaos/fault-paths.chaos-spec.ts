import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SessionInfo, SnakepitErrorBody } from '@snakepit/nestjs';
import { eventually, isAlive, parseSse, sleep, startSampleApp, type ExecuteOutcome, type SampleApp } from '../helpers/sample-app';

jest.setTimeout(120_000);

/**
 * The fault paths of review 2, each reproduced against the built sample app
 * on its defaults (only sizes and limits shrunk so that the faults are cheap
 * to provoke): the host stays up, every call is answered with a result or a
 * structured error, and the pool is back at its size.
 */

async function readyWorkers(app: SampleApp, size: number) {
  return eventually(async () => {
    const workers = await app.workers();
    return workers.length === size && workers.every((w) => w.state === 'ready') ? workers : undefined;
  }, 30_000);
}

async function poolInfo(app: SampleApp) {
  return (await app.pools())[0];
}

function hostAlive(app: SampleApp): boolean {
  return app.child.exitCode === null && app.child.signalCode === null;
}

describe('fault paths: a worker killed under a deep queue', () => {
  it('600 queued calls (some streaming, with abort signals) all run on the replacement; only the running call fails', async () => {
    const app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1' });
    try {
      const [worker] = await readyWorkers(app, 1);
      const running = app.execute<SnakepitErrorBody>('sleep', { ms: 5_000 });
      await eventually(async () => ((await app.workers())[0].busy > 0 ? true : undefined));
      const queued = Array.from({ length: 500 }, (_, i) => app.execute('add', { a: i, b: 1 }));
      const streams = Array.from({ length: 100 }, () => app.request('POST', '/api/stream', { tool: 'count', args: { n: 2 } }));
      await eventually(async () => ((await poolInfo(app)).queueDepth >= 550 ? true : undefined), 20_000);
      process.kill(worker.pid, 'SIGKILL');

      expect((await running).body.error.code).toBe('WORKER_CRASHED');
      const results = await Promise.all(queued);
      expect(results.filter((r, i) => r.status !== 200 || r.body.result !== i + 1)).toEqual([]);
      const streamed = await Promise.all(streams);
      expect(streamed.filter((r) => r.status !== 200 || parseSse(r.text).filter((e) => e.event === 'message').length !== 2)).toEqual([]);
      expect(hostAlive(app)).toBe(true);
      expect(app.logs.some((line) => /ReferenceError|Maximum call stack|uncaught/i.test(line))).toBe(false);
      const [replacement] = await readyWorkers(app, 1);
      expect(replacement.pid).not.toBe(worker.pid);
    } finally {
      await app.stop();
    }
  });
});

describe('fault paths: load shedding and callers budgets are not breakage', () => {
  it('a flood shed with QUEUE_FULL and 20 calls with 5 ms budgets leave the circuit closed for everyone', async () => {
    const app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1', SNAKEPIT_MAX_QUEUE: '5' });
    try {
      await readyWorkers(app, 1);
      const flood = await Promise.all(Array.from({ length: 60 }, () => app.execute<ExecuteOutcome>('sleep', { ms: 100 })));
      const codes = new Set(flood.map((r) => (r.status === 200 ? 'ok' : r.body.error?.code)));
      expect([...codes].sort()).toEqual(['QUEUE_FULL', 'ok']);
      const tiny = await Promise.all(Array.from({ length: 20 }, () => app.execute<ExecuteOutcome>('sleep', { ms: 50 }, { timeoutMs: 5 })));
      expect(tiny.filter((r) => r.body.error?.code !== 'TIMEOUT' && r.body.error?.code !== 'QUEUE_FULL')).toEqual([]);
      const after = await eventually(async () => {
        const outcome = await app.execute('ping');
        return outcome.status === 200 ? outcome : undefined;
      }, 20_000);
      expect(after.body.result).toBe('pong');
      const info = await poolInfo(app);
      expect([info.circuit, info.crashLooping]).toEqual(['closed', false]);
      expect(app.logs.some((line) => line.includes('circuit opened'))).toBe(false);
    } finally {
      await app.stop();
    }
  });
});

describe('fault paths: message sizes never kill a worker', () => {
  let app: SampleApp;
  const limit = 64 * 1024;

  beforeAll(async () => {
    app = await startSampleApp({
      SNAKEPIT_POOL_SIZE: '1',
      SNAKEPIT_PROFILE: 'thread',
      SNAKEPIT_THREADS_PER_WORKER: '4',
      SNAKEPIT_MAX_PAYLOAD_BYTES: String(limit),
    });
  });
  afterAll(async () => {
    await app?.stop();
  });

  it('many calls each under the limit, together far over it, all succeed on one worker', async () => {
    const [before] = await readyWorkers(app, 1);
    const value = 'v'.repeat(50_000);
    const results = await Promise.all(Array.from({ length: 24 }, () => app.execute('echo', { value })));
    expect(results.filter((r) => r.status !== 200 || r.body.result !== value)).toEqual([]);
    expect((await app.workers())[0].pid).toBe(before.pid);
  });

  it('a result over the limit fails that call alone with PAYLOAD_TOO_LARGE naming the option', async () => {
    const [before] = await readyWorkers(app, 1);
    const [big, small] = await Promise.all([app.execute<SnakepitErrorBody>('text', { size: 3 * limit }), app.execute('text', { size: 10 })]);
    expect([big.status, big.body.error.code, big.body.error.details.option]).toEqual([413, 'PAYLOAD_TOO_LARGE', 'maxPayloadBytes']);
    expect(small.body.result).toBe('x'.repeat(10));
    expect((await app.workers())[0].pid).toBe(before.pid);
  });

  it('a stream of mid-size chunks arrives whole; an oversized chunk ends only its stream', async () => {
    const [before] = await readyWorkers(app, 1);
    const whole = await app.request('POST', '/api/stream', { tool: 'chunks', args: { n: 40, size: 50_000 } });
    expect(parseSse(whole.text).filter((e) => e.event === 'message')).toHaveLength(40);
    const over = await app.request('POST', '/api/stream', { tool: 'chunks', args: { n: 3, size: 2 * limit } });
    expect(over.text).toContain('PAYLOAD_TOO_LARGE');
    expect((await app.workers())[0].pid).toBe(before.pid);
  });

  it('arguments, or a session grown past the limit, are refused before dispatch, naming maxPayloadBytes', async () => {
    const [before] = await readyWorkers(app, 1);
    const args = await app.execute<SnakepitErrorBody>('echo', { value: 'a'.repeat(2 * limit) });
    expect([args.status, args.body.error.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    const { sessionId } = (await app.request<SessionInfo>('POST', '/api/sessions', {})).body;
    for (const key of ['a', 'b']) expect((await app.execute('session_put', { key, value: 'p'.repeat(30_000) }, { sessionId })).status).toBe(200);
    // The session now rides along with every call of it: a third value would make the call too large.
    const third = await app.execute<SnakepitErrorBody>('session_put', { key: 'c', value: 'p'.repeat(30_000) }, { sessionId });
    expect([third.status, third.body.error.code, third.body.error.details.option]).toEqual([413, 'PAYLOAD_TOO_LARGE', 'maxPayloadBytes']);
    expect(third.body.error.message).toMatch(/session \d+/);
    expect((await app.execute('session_get', { key: 'b' }, { sessionId })).body.result).toHaveLength(30_000);
    expect((await app.execute('session_get', { key: 'c' }, { sessionId })).body.result).toBeNull();
    expect((await app.execute('ping')).body.result).toBe('pong');
    expect((await app.workers())[0].pid).toBe(before.pid);
  });
});

describe('fault paths: recycling', () => {
  it('a worker that dies mid-recycle while its replacement cannot start still leaves the pool at full size', async () => {
    const flags = mkdtempSync(join(tmpdir(), 'snakepit-chaos-flag-'));
    const failFile = join(flags, 'fail-start');
    const app = await startSampleApp({
      SNAKEPIT_POOL_SIZE: '1',
      SNAKEPIT_SHOWCASE_FAIL_START_FILE: failFile,
      SNAKEPIT_INHERIT_ENV: 'SNAKEPIT_SHOWCASE_FAIL_START_FILE',
    });
    try {
      const [old] = await readyWorkers(app, 1);
      writeFileSync(failFile, 'replacements refuse to start while this file exists');
      const recycle = app.request('POST', `/api/pools/default/workers/${old.id}/recycle`, {});
      await eventually(() => (app.logs.some((line) => line.includes('worker failed to start')) ? true : undefined), 20_000);
      process.kill(old.pid, 'SIGKILL');
      await sleep(500);
      rmSync(failFile);
      const [replacement] = await readyWorkers(app, 1);
      expect(replacement.pid).not.toBe(old.pid);
      expect(isAlive(old.pid)).toBe(false);
      expect((await recycle).status).toBeLessThan(500);
      expect((await app.execute('ping')).body.result).toBe('pong');
      expect(hostAlive(app)).toBe(true);
    } finally {
      await app.stop();
      rmSync(flags, { recursive: true, force: true });
    }
  });
});

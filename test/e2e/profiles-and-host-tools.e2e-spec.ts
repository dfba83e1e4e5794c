import type { PoolInfo, SnakepitErrorBody } from '@snakepit/nestjs';
import { eventually, startSampleApp, type SampleApp } from '../helpers/sample-app';

/** Waits until the default pool's info satisfies `check`, and returns it. */
const eventuallyPool = (app: SampleApp, check: (info: PoolInfo) => boolean) =>
  eventually(async () => {
    const [info] = await app.pools();
    return check(info) ? info : undefined;
  });

jest.setTimeout(60_000);

/** Issue 8: the thread profile's concurrency, and host tools called from Python, through the sample app. */
describe('worker profiles', () => {
  const spans = async (app: SampleApp, calls: number) => {
    const responses = await Promise.all(Array.from({ length: calls }, () => app.execute('sleep_span', { ms: 1000 })));
    expect(responses.map((r) => r.status)).toEqual(Array(calls).fill(200));
    return responses.map((r) => ({ workerId: r.body.workerId, ...(r.body.result as { start: number; end: number }) }));
  };

  it('thread profile: 4 calls on one worker with 4 threads run at the same time', async () => {
    const app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1', SNAKEPIT_PROFILE: 'thread', SNAKEPIT_THREADS_PER_WORKER: '4' });
    try {
      const result = await spans(app, 4);
      expect(new Set(result.map((r) => r.workerId)).size).toBe(1);
      // Every call started before any ended: they overlapped, rather than ran one after another.
      expect(Math.max(...result.map((r) => r.start))).toBeLessThan(Math.min(...result.map((r) => r.end)));
      expect((await app.pools())[0].workers[0].capacity).toBe(4);
    } finally {
      await app.stop();
    }
  });

  it('process profile: the same 4 calls on one worker run one after another', async () => {
    const app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1' });
    try {
      const result = (await spans(app, 4)).sort((a, b) => a.start - b.start);
      for (let i = 1; i < result.length; i++) expect(result[i].start).toBeGreaterThanOrEqual(result[i - 1].end);
    } finally {
      await app.stop();
    }
  });

  it('pipelining: calls sent ahead to a busy process worker run one by one there, and a timed-out one is dropped from its queue', async () => {
    const app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1', SNAKEPIT_PIPELINE_DEPTH: '8' });
    try {
      const calls = Array.from({ length: 6 }, () => app.execute('sleep_span', { ms: 200 }));
      const pool = await eventuallyPool(app, (info) => info.workers[0].busy === 6);
      expect(pool.queueDepth).toBe(0); // they wait in the worker, not in the pool's queue
      const result = (await Promise.all(calls)).map((r) => r.body.result as { start: number; end: number }).sort((a, b) => a.start - b.start);
      for (let i = 1; i < result.length; i++) expect(result[i].start).toBeGreaterThanOrEqual(result[i - 1].end);

      const long = app.execute('sleep', { ms: 1500 });
      await eventuallyPool(app, (info) => info.workers[0].busy === 1);
      const dropped = await app.execute<SnakepitErrorBody>('sleep', { ms: 10 }, { timeoutMs: 300 });
      expect(dropped.body.error.code).toBe('TIMEOUT');
      // The worker confirmed the queued call's cancel at once: only the long call holds a slot.
      await eventuallyPool(app, (info) => info.workers[0].busy === 1);
      expect((await long).status).toBe(200);
    } finally {
      await app.stop();
    }
  });

  it('refuses to start a thread pool with an adapter that is not thread-safe', async () => {
    const failure = await startSampleApp({
      SNAKEPIT_POOL_SIZE: '1',
      SNAKEPIT_PROFILE: 'thread',
      SNAKEPIT_ADAPTER: 'snakepit_bridge.examples.counter:CounterAdapter',
    }).then(
      (app) => app.stop().then(() => undefined),
      (error: Error) => error,
    );
    expect(failure?.message).toMatch(/is not thread_safe, so it cannot run with --capacity 4/);
  });

  it('rejects an unknown profile with the list of problems', async () => {
    const failure = await startSampleApp({ SNAKEPIT_PROFILE: 'threads' }).then(
      (app) => app.stop().then(() => undefined),
      (error: Error) => error,
    );
    expect(failure?.message).toMatch(/profile must be "process" or "thread"/);
  });
});

describe('host tools called from Python', () => {
  let app: SampleApp;

  beforeAll(async () => {
    app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1', SNAKEPIT_PROFILE: 'thread', SNAKEPIT_THREADS_PER_WORKER: '8' });
  });

  afterAll(async () => {
    await app?.stop();
  });

  it('a sync and an async Python tool call a Nest provider method', async () => {
    expect((await app.execute('greet', { user_id: 1 })).body.result).toBe('Hello, Ada!');
    expect((await app.execute('greet_async', { user_id: 2 })).body.result).toBe('Hello, Grace!');
  });

  it('a Nest exception reaches Python as a typed HostToolError', async () => {
    const { body } = await app.execute('host_failure', { name: 'lookup_user', args: { id: 99 } });
    expect(body.result).toEqual({ ok: false, exception: 'HostToolError', code: 'HOST_EXCEPTION', host_type: 'NotFoundException', status: 404 });
  });

  it('left uncaught in Python, it still reaches the Node caller whole', async () => {
    const { status, body } = await app.execute<SnakepitErrorBody>('greet', { user_id: 99 });
    expect(status).toBe(500);
    expect(body.error.code).toBe('PYTHON_EXCEPTION');
    expect(body.error.python?.type).toBe('snakepit_bridge.host_tools.HostToolError');
    expect(body.error.python?.message).toContain('NotFoundException: no user 99');
    expect(body.error.python?.traceback).toContain('call_host');
  });

  it('a host tool slower than the Python timeout raises HostToolTimeout in Python', async () => {
    const { body } = await app.execute('host_failure', { name: 'wait', args: { ms: 5000 }, timeout_s: 0.3 });
    expect(body.result).toMatchObject({ ok: false, exception: 'HostToolTimeout', code: 'TIMEOUT' });
  });

  it('an unknown host tool is refused in Python', async () => {
    const { body } = await app.execute('host_failure', { name: 'nope', args: {} });
    expect(body.result).toMatchObject({ ok: false, code: 'TOOL_NOT_FOUND' });
  });

  it('runaway Python -> host -> Python recursion stops at the depth limit', async () => {
    const { status, body } = await app.execute<SnakepitErrorBody>('recurse', {});
    expect(status).toBe(500);
    expect(body.error.message).toContain('recursion is limited to 4');
    expect((await app.execute('greet', { user_id: 1 })).body.result).toBe('Hello, Ada!');
  });
});

import { expect } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import type { SessionInfo, SnakepitErrorBody } from '@snakepit/nestjs';
import { eventually, isAlive, parseSse, startSampleApp, workerPids, type SampleApp, type ToolList } from '../helpers/sample-app';
import { snakepitClient } from '../helpers/grpc-client';

jest.setTimeout(60_000);

/**
 * The sample app's HTTP and gRPC contract, black-box: the built app, real
 * Python workers over real gRPC, a pool of 2.
 */
describe('sample app: HTTP API', () => {
  let app: SampleApp;

  beforeAll(async () => {
    app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '2' });
  });

  afterAll(async () => {
    await app?.stop();
  });

  it('executes a tool and says where it ran; integers stay integers', async () => {
    const { status, body, text } = await app.execute('add', { a: 2, b: 3 });
    expect(status).toBe(200);
    expect(body.result).toBe(5);
    expect(text).toContain('"result":5,');
    expect(body.pool).toBe('default');
    expect(body.workerId).toMatch(/^default-\d+$/);
    expect(isAlive(body.pid)).toBe(true);
    expect(typeof body.durationMs).toBe('number');
    const floats = await app.execute('add', { a: 0.5, b: 0.25 });
    expect(floats.body.result).toBe(0.75);
  });

  it('round-trips nested JSON unchanged', async () => {
    const value = { text: 'héllo ✓', list: [1, 2.5, null, true, { deep: ['x'] }], big: 2 ** 53 - 1 };
    expect((await app.execute('echo', { value })).body.result).toEqual(value);
  });

  it('streams chunks as server-sent events, then an end event', async () => {
    const response = await fetch(`${app.baseUrl}/api/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tool: 'count', args: { n: 5 } }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const events = parseSse(await response.text());
    expect(events.filter((e) => e.event === 'message').map((e) => e.data)).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })));
    expect(events.at(-1)?.event).toBe('end');
  });

  it('cancels the Python generator when the client disconnects, freeing the worker', async () => {
    const controller = new AbortController();
    const response = await fetch(`${app.baseUrl}/api/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tool: 'count', args: { n: 100_000, delay_ms: 20 } }),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    await reader.read(); // the stream is live
    expect((await app.workers()).some((w) => w.busy > 0)).toBe(true);
    controller.abort();
    await eventually(async () => (await app.workers()).every((w) => w.busy === 0) || undefined);
    expect((await app.execute('ping')).body.result).toBe('pong');
  });

  it('answers a stream call that fails before its first chunk with a proper status', async () => {
    const { status, body } = await app.request<SnakepitErrorBody>('POST', '/api/stream', { tool: 'no_such_tool' });
    expect(status).toBe(404);
    expect(body.error.code).toBe('TOOL_NOT_FOUND');
  });

  it('lists pools with their workers, and tools with their parameters', async () => {
    const pools = await app.pools();
    expect(pools).toHaveLength(1);
    expect(pools[0]).toMatchObject({ name: 'default', size: 2, queueDepth: 0 });
    expect(pools[0].available).toBeGreaterThanOrEqual(0);
    expect(pools[0].workers).toHaveLength(2);
    for (const worker of pools[0].workers) {
      expect(worker).toMatchObject({ state: 'ready', capacity: 1 });
      expect(isAlive(worker.pid)).toBe(true);
      expect(worker.uptimeMs).toBeGreaterThan(0);
      expect(typeof worker.requestsServed).toBe('number');
    }
    const tools = (await app.request<ToolList>('GET', '/api/tools')).body.pools[0];
    expect(tools.pool).toBe('default');
    const add = tools.tools.find((t) => t.name === 'add');
    expect(add?.parameters.map((p) => [p.name, p.type, p.required])).toEqual([
      ['a', 'number', true],
      ['b', 'number', true],
    ]);
    expect(tools.tools.find((t) => t.name === 'count')?.streaming).toBe(true);
  });

  describe('sessions', () => {
    it('creates, reads and deletes a session', async () => {
      const created = await app.request<SessionInfo>('POST', '/api/sessions', { ttlSeconds: 60, metadata: { user: 'ada' } });
      expect(created.status).toBe(201);
      expect(created.body.sessionId).toMatch(/^sess_/);
      expect(Date.parse(created.body.expiresAt)).toBeGreaterThan(Date.now());
      const id = created.body.sessionId;
      const read = await app.request<SessionInfo>('GET', `/api/sessions/${id}`);
      expect(read.status).toBe(200);
      expect(read.body.metadata).toEqual({ user: 'ada' });
      expect((await app.request('DELETE', `/api/sessions/${id}`)).status).toBe(204);
      const gone = await app.request<SnakepitErrorBody>('GET', `/api/sessions/${id}`);
      expect(gone.status).toBe(404);
      expect(gone.body.error.code).toBe('SESSION_NOT_FOUND');
      expect((await app.request('DELETE', `/api/sessions/${id}`)).status).toBe(404);
    });

    it('keeps state tools write, prefers the same worker, and survives that worker dying', async () => {
      const { sessionId } = (await app.request<SessionInfo>('POST', '/api/sessions', {})).body;
      const put = await app.execute('session_put', { key: 'model', value: { layers: [3, 4] } }, { sessionId });
      expect(put.status).toBe(200);
      const get = await app.execute('session_get', { key: 'model' }, { sessionId });
      expect(get.body.result).toEqual({ layers: [3, 4] });
      expect(get.body.workerId).toBe(put.body.workerId); // affinity hint honoured while that worker is free
      expect((await app.request<SessionInfo>('GET', `/api/sessions/${sessionId}`)).body.state).toEqual({ model: { layers: [3, 4] } });

      const crashed = await app.execute<SnakepitErrorBody>('crash', {}, { sessionId });
      expect(crashed.status).toBe(502);
      expect(crashed.body.error.code).toBe('WORKER_CRASHED');
      const after = await eventually(async () => {
        const r = await app.execute('session_get', { key: 'model' }, { sessionId });
        return r.status === 200 ? r : undefined;
      });
      expect(after.body.result).toEqual({ layers: [3, 4] });
      expect(after.body.pid).not.toBe(put.body.pid);
    });

    it('runs calls of a session concurrently without losing increments', async () => {
      const { sessionId } = (await app.request<SessionInfo>('POST', '/api/sessions', {})).body;
      const keys = ['a', 'b', 'c', 'd'];
      const results = await Promise.all(keys.map((key) => app.execute('session_incr', { key, by: 2 }, { sessionId })));
      expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      expect((await app.request<SessionInfo>('GET', `/api/sessions/${sessionId}`)).body.state).toEqual({ a: 2, b: 2, c: 2, d: 2 });
    });
  });

  describe('errors are structured JSON with a fitting status', () => {
    it.each([
      ['an unknown tool', { tool: 'nope' }, 404, 'TOOL_NOT_FOUND'],
      ['an unknown pool', { tool: 'ping', pool: 'gpu' }, 404, 'POOL_NOT_FOUND'],
      ['an unknown session', { tool: 'ping', sessionId: 'sess_not-ours' }, 404, 'SESSION_NOT_FOUND'],
      ['arguments of the wrong type', { tool: 'add', args: { a: 'x', b: 1 } }, 400, 'INVALID_ARGUMENTS'],
      ['a missing argument', { tool: 'add', args: { a: 1 } }, 400, 'INVALID_ARGUMENTS'],
      ['args that are not an object', { tool: 'add', args: [1, 2] }, 400, 'INVALID_ARGUMENTS'],
      ['a tool name with path characters', { tool: '../../etc/passwd' }, 400, 'INVALID_ARGUMENTS'],
      ['a negative timeout', { tool: 'ping', timeoutMs: -5 }, 400, 'INVALID_ARGUMENTS'],
    ])('%s', async (_label, body, status, code) => {
      const response = await app.request<SnakepitErrorBody>('POST', '/api/execute', body);
      expect(response.status).toBe(status);
      expect(response.body.error.code).toBe(code);
      expect(typeof response.body.error.message).toBe('string');
    });

    it('malformed JSON', async () => {
      const response = await app.request<SnakepitErrorBody>('POST', '/api/execute', '{"tool": "add",');
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('INVALID_ARGUMENTS');
    });

    it('a Python exception arrives with its type, chain and traceback', async () => {
      const { status, body } = await app.execute<SnakepitErrorBody>('fail', { type: 'ValueError', message: 'bad input', chained: true });
      expect(status).toBe(500);
      expect(body.error.code).toBe('PYTHON_EXCEPTION');
      expect(body.error.python?.type).toBe('ValueError');
      expect(body.error.python?.message).toBe('bad input');
      expect(body.error.python?.traceback).toContain('ValueError: bad input');
      expect(body.error.python?.chain?.map((link) => link.type)).toContain('KeyError');
      expect(body.error.details).toMatchObject({ pool: 'default', tool: 'fail' });
      expect(body.error.details.workerId).toMatch(/^default-/);
    });

    it('a call over its budget times out at about the budget, and the worker is free again', async () => {
      // A two-minute tool: had the host waited for it, the test's own timeout would fail first.
      const { status, body } = await app.execute<SnakepitErrorBody>('sleep', { ms: 120_000 }, { timeoutMs: 300 });
      expect(status).toBe(504);
      expect(body.error).toMatchObject({ code: 'TIMEOUT', details: { timeoutMs: 300, phase: 'execute' } });
      await eventually(async () => (await app.workers()).every((w) => w.busy === 0) || undefined);
      expect((await app.execute('add', { a: 1, b: 1 })).body.result).toBe(2);
    });

    it('a worker killed mid-request: structured error, replaced, next call served', async () => {
      const pending = app.execute<SnakepitErrorBody>('sleep', { ms: 10_000 });
      const busy = await eventually(async () => (await app.workers()).find((w) => w.busy > 0));
      process.kill(busy.pid, 'SIGKILL');
      const { status, body } = await pending;
      expect(status).toBe(502);
      expect(body.error.code).toBe('WORKER_CRASHED');
      expect(body.error.details.workerId).toBe(busy.id);
      const workers = await eventually(async () => {
        const list = await app.workers();
        return list.length === 2 && list.every((w) => w.state === 'ready' && w.pid !== busy.pid) ? list : undefined;
      });
      expect(workers.map((w) => w.id)).not.toContain(busy.id);
      expect((await app.execute('ping')).body.result).toBe('pong');
    });
  });

  it('answers 200 concurrent requests on a pool of 2, every one correctly', async () => {
    const responses = await Promise.all(Array.from({ length: 200 }, (_, i) => app.execute('add', { a: i, b: 1000 })));
    expect(responses.map((r) => r.status)).toEqual(Array(200).fill(200));
    expect(responses.map((r) => r.body.result)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1000));
    expect(new Set(responses.map((r) => r.body.workerId)).size).toBe(2);
  });
});

describe('sample app: gRPC API', () => {
  let app: SampleApp;
  let client: ReturnType<typeof snakepitClient>;

  beforeAll(async () => {
    app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1' });
    client = snakepitClient(app.grpcAddress);
  });

  afterAll(async () => {
    client?.client.close();
    client?.health.close();
    await app?.stop();
  });

  it('executes, streams and lists tools', async () => {
    const out = await client.unary('Execute', { tool: 'add', argsJson: '{"a":40,"b":2}' });
    expect(JSON.parse(out.resultJson)).toBe(42);
    expect(out.workerId).toBe('default-1');
    const chunks: Array<{ dataJson: string; seq: number }> = [];
    await new Promise<void>((resolve, reject) => {
      const call = client.client.ExecuteStream({ tool: 'count', argsJson: '{"n":3}' });
      call.on('data', (chunk: { dataJson: string; seq: number }) => chunks.push(chunk));
      call.on('end', resolve);
      call.on('error', reject);
    });
    expect(chunks.map((c) => [JSON.parse(c.dataJson) as unknown, c.seq])).toEqual([
      [{ i: 0 }, 0],
      [{ i: 1 }, 1],
      [{ i: 2 }, 2],
    ]);
    const tools = await client.unary('ListTools', {});
    expect(tools.pools[0].tools.map((t: { name: string }) => t.name)).toEqual(expect.arrayContaining(['add', 'count', 'echo']));
  });

  it('manages sessions', async () => {
    const session = await client.unary('CreateSession', { ttlSeconds: 30, metadataJson: '{"k":1}' });
    expect(session.sessionId).toMatch(/^sess_/);
    await client.unary('Execute', { tool: 'session_put', argsJson: '{"key":"x","value":7}', sessionId: session.sessionId });
    const read = await client.unary('GetSession', { sessionId: session.sessionId });
    expect(JSON.parse(read.stateJson)).toEqual({ x: 7 });
    await client.unary('DeleteSession', { sessionId: session.sessionId });
    await expect(client.unary('GetSession', { sessionId: session.sessionId })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('maps errors to gRPC statuses with the Snakepit code and Python type in metadata', async () => {
    const failure = (argsJson: string, tool = 'fail') =>
      client.unary('Execute', { tool, argsJson }).then(
        () => undefined,
        (error: grpc.ServiceError) => error,
      );
    const error = await failure('{"type":"KeyError","message":"k"}');
    expect(error?.code).toBe(grpc.status.INTERNAL);
    expect(error?.metadata.get('snakepit-error-code')).toEqual(['PYTHON_EXCEPTION']);
    expect(error?.metadata.get('snakepit-python-type')).toEqual(['KeyError']);
    expect((await failure('{}', 'nope'))?.code).toBe(grpc.status.NOT_FOUND);
    expect((await failure('{oops', 'add'))?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('serves grpc.health.v1', async () => {
    expect(await client.health.check('')).toBe('SERVING');
    expect(await client.health.check('snakepit.v1.Snakepit')).toBe('SERVING');
  });
});

describe('sample app: bounded queue and shutdown', () => {
  it('answers 429 when the queue is full and serves again afterwards', async () => {
    const app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1', SNAKEPIT_MAX_QUEUE: '2' });
    try {
      const calls = Array.from({ length: 6 }, () => app.execute('sleep', { ms: 400 }));
      const statuses = (await Promise.all(calls)).map((r) => r.status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(3); // 1 running + 2 queued
      expect(statuses.filter((s) => s === 429)).toHaveLength(3);
      const fill = [1, 2, 3].map(() => app.execute('sleep', { ms: 500 }));
      await eventually(async () => (await app.pools())[0].queueDepth === 2 || undefined);
      const rejected = await app.execute<SnakepitErrorBody>('ping');
      expect(rejected.status).toBe(429);
      expect(rejected.body.error.code).toBe('QUEUE_FULL');
      expect((await Promise.all(fill)).map((r) => r.status)).toEqual([200, 200, 200]);
      expect((await app.execute('ping')).body.result).toBe('pong');
    } finally {
      await app.stop();
    }
  });

  it('stops on SIGTERM, draining the call in flight and leaving no Python process', async () => {
    const app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '2' });
    const pids = workerPids(app.pid);
    expect(pids.length).toBeGreaterThanOrEqual(2);
    const inFlight = app.execute('sleep', { ms: 500 });
    await eventually(async () => (await app.workers()).some((w) => w.busy > 0) || undefined);
    const exit = app.stop('SIGTERM');
    expect((await inFlight).body.result).toBe(500);
    await exit;
    await eventually(() => pids.every((pid) => !isAlive(pid)) || undefined, 10_000);
  });
});

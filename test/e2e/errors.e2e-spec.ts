import * as grpc from '@grpc/grpc-js';
import type { ExecuteResult, SnakepitErrorBody } from '@snakepit/nestjs';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { snakepitClient } from '../helpers/grpc-client';
import { HealthClient } from '../helpers/health-client';
import { eventually, startSampleApp, type SampleApp } from '../helpers/sample-app';

jest.setTimeout(120_000);

/** A POST /api/execute body; the gRPC ExecuteRequest carries the same fields. */
interface CallBody {
  tool: string;
  args?: Record<string, unknown>;
  pool?: string;
  sessionId?: string;
  timeoutMs?: number;
}

/**
 * Issue 4: every error code reachable through the sample app, over HTTP and
 * gRPC, hostile input of every kind, and the locked-down worker channel.
 */
describe('structured errors and hostile input', () => {
  let app: SampleApp;
  let grpcApi: ReturnType<typeof snakepitClient>;
  const socketRoot = mkdtempSync(join(tmpdir(), 'snakepit-errors-sock-'));

  beforeAll(async () => {
    app = await startSampleApp({
      SNAKEPIT_POOL_SIZE: '2',
      SNAKEPIT_MAX_QUEUE: '50',
      SNAKEPIT_QUEUE_TIMEOUT_MS: '5000',
      SNAKEPIT_MAX_PAYLOAD_BYTES: '4096',
      SNAKEPIT_MEMORY_LIMIT_MB: '1024',
      SNAKEPIT_SOCKET_DIR: socketRoot,
      BODY_LIMIT_BYTES: String(64 * 1024),
      // A secret of the host that must not reach Python.
      SNAKEPIT_TEST_HOST_SECRET: 'hunter2',
    });
    grpcApi = snakepitClient(app.grpcAddress);
  });

  afterAll(async () => {
    grpcApi?.client.close();
    grpcApi?.health.close();
    await app?.stop();
    rmSync(socketRoot, { recursive: true, force: true });
  });

  /** The same call over HTTP and gRPC must fail with the same code, at the mapped statuses. */
  async function expectCode(code: string, httpStatus: number, grpcStatus: number, body: CallBody) {
    const http = await app.request<SnakepitErrorBody>('POST', '/api/execute', body);
    expect({ status: http.status, code: http.body?.error?.code }).toEqual({ status: httpStatus, code });
    expect(typeof http.body.error.numericCode).toBe('number');
    expect(typeof http.body.error.message).toBe('string');
    const failure = await grpcApi
      .unary('Execute', {
        tool: body.tool,
        argsJson: JSON.stringify(body.args ?? {}),
        pool: body.pool ?? '',
        sessionId: body.sessionId ?? '',
        timeoutMs: body.timeoutMs ?? 0,
      })
      .then(
        () => undefined,
        (error: grpc.ServiceError) => error,
      );
    expect(failure?.code).toBe(grpcStatus);
    expect(failure?.metadata.get('snakepit-error-code')).toEqual([code]);
    return http.body.error;
  }

  it.each([
    ['PYTHON_EXCEPTION', 500, grpc.status.INTERNAL, { tool: 'fail', args: { type: 'ZeroDivisionError', message: 'x' } }],
    ['TOOL_NOT_FOUND', 404, grpc.status.NOT_FOUND, { tool: 'does_not_exist' }],
    ['INVALID_ARGUMENTS', 400, grpc.status.INVALID_ARGUMENT, { tool: 'add', args: { a: true, b: 1 } }],
    ['SERIALIZATION_ERROR', 500, grpc.status.INTERNAL, { tool: 'nan' }],
    ['TIMEOUT', 504, grpc.status.DEADLINE_EXCEEDED, { tool: 'sleep', args: { ms: 3000 }, timeoutMs: 200 }],
    ['POOL_NOT_FOUND', 404, grpc.status.NOT_FOUND, { tool: 'ping', pool: 'nope' }],
    ['SESSION_NOT_FOUND', 404, grpc.status.NOT_FOUND, { tool: 'ping', sessionId: 'sess_00000000-0000-0000-0000-000000000000' }],
    ['PAYLOAD_TOO_LARGE', 413, grpc.status.RESOURCE_EXHAUSTED, { tool: 'echo', args: { value: 'x'.repeat(8192) } }],
    ['RESOURCE_EXHAUSTED', 503, grpc.status.RESOURCE_EXHAUSTED, { tool: 'allocate', args: { mb: 2048 } }],
  ])('%s over HTTP and gRPC', async (code, httpStatus, grpcStatus, body) => {
    const error = await expectCode(code, httpStatus, grpcStatus, body);
    if (code === 'SERIALIZATION_ERROR') expect(error.details.path).toBe('$');
    if (code === 'RESOURCE_EXHAUSTED') expect(error.python?.type).toBe('MemoryError');
    // Nothing leaked: every slot is free again.
    await eventually(async () => (await app.workers()).every((w) => w.busy === 0 && w.state === 'ready') || undefined, 15_000);
  });

  it('WORKER_CRASHED over HTTP and gRPC', async () => {
    await expectCode('WORKER_CRASHED', 502, grpc.status.UNAVAILABLE, { tool: 'crash' });
    await eventually(async () => (await app.workers()).filter((w) => w.state === 'ready').length === 2 || undefined);
  });

  it('QUEUE_TIMEOUT and QUEUE_FULL', async () => {
    const queueApp = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1', SNAKEPIT_MAX_QUEUE: '1', SNAKEPIT_QUEUE_TIMEOUT_MS: '300' });
    try {
      const busy = queueApp.execute('sleep', { ms: 1500 });
      await eventually(async () => (await queueApp.workers()).some((w) => w.busy > 0) || undefined);
      const waiting = queueApp.execute<SnakepitErrorBody>('ping');
      const full = await queueApp.execute<SnakepitErrorBody>('ping');
      expect([full.status, full.body.error.code]).toEqual([429, 'QUEUE_FULL']);
      const timedOut = await waiting;
      expect([timedOut.status, timedOut.body.error.code]).toEqual([503, 'QUEUE_TIMEOUT']);
      expect((await busy).status).toBe(200);
    } finally {
      await queueApp.stop();
    }
  });

  it('a ValueError reaches the client with its type; the traceback only when exposeTracebacks is on', async () => {
    const production = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1', NODE_ENV: 'production' });
    try {
      const hidden = await production.execute<SnakepitErrorBody>('fail', { type: 'ValueError', message: 'no' });
      expect(hidden.body.error.python?.type).toBe('ValueError');
      expect(hidden.body.error.python).not.toHaveProperty('traceback');
      const shown = await app.execute<SnakepitErrorBody>('fail', { type: 'ValueError', message: 'no' });
      expect(shown.body.error.python?.traceback).toContain('ValueError: no');
      expect(shown.body.error.details).toMatchObject({ tool: 'fail', pool: 'default' });
      expect(typeof shown.body.error.details.pid).toBe('number');
    } finally {
      await production.stop();
    }
  });

  describe('hostile input', () => {
    it.each([
      ['a tool name with control characters', { tool: 'add\u0000rm' }],
      ['a tool name with a newline', { tool: 'add\nx' }],
      ['a tool name with path characters', { tool: 'a/b' }],
      ['an absurd timeout', { tool: 'ping', timeoutMs: 1e15 }],
      ['a timeout that is not a number', { tool: 'ping', timeoutMs: '100' }],
      ['a non-object body', [1, 2, 3]],
      ['a tool that is not a string', { tool: 42 }],
      ['unknown argument names', { tool: 'add', args: { a: 1, b: 2, c: 3 } }],
    ])('%s → 400 INVALID_ARGUMENTS', async (_label, body) => {
      const response = await app.request<SnakepitErrorBody>('POST', '/api/execute', body);
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('INVALID_ARGUMENTS');
    });

    it('session ids that are not ours → 404', async () => {
      for (const id of ['..%2F..%2Fetc', 'x'.repeat(500), 'sess_%00']) {
        const response = await app.request<SnakepitErrorBody>('GET', `/api/sessions/${id}`);
        expect(response.status).toBe(404);
        expect(response.body.error.code).toBe('SESSION_NOT_FOUND');
      }
    });

    it('deeply nested JSON is refused without hurting the host', async () => {
      const nested = (depth: number) => `{"tool":"echo","args":{"value":${'['.repeat(depth)}1${']'.repeat(depth)}}}`;
      const moderate = await app.request<SnakepitErrorBody>('POST', '/api/execute', nested(1000));
      expect(moderate.status).toBe(400);
      expect(moderate.body.error.code).toBe('INVALID_ARGUMENTS');
      const extreme = await app.request<SnakepitErrorBody>('POST', '/api/execute', nested(30_000));
      expect(extreme.status).toBe(400);
      expect(extreme.body.error.code).toBe('INVALID_ARGUMENTS');
      expect((await app.execute('ping')).body.result).toBe('pong');
    });

    it('a body over the size limit → 413 naming BODY_LIMIT_BYTES', async () => {
      const response = await app.request<SnakepitErrorBody>('POST', '/api/execute', { tool: 'echo', args: { value: 'y'.repeat(100 * 1024) } });
      expect(response.status).toBe(413);
      expect(response.body.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { option: 'BODY_LIMIT_BYTES', limitBytes: 64 * 1024 } });
    });

    it('10,000 concurrent requests against a pool of 2: bounded queue answers 429, the host stays up and serves again', async () => {
      // All 10,000 are issued at once; the client opens up to 1,000 connections at a time, so the test
      // measures the server's queue rather than the kernel's listen backlog (511 pending connections).
      const sockets = new Agent({ keepAlive: true, maxSockets: 1000 });
      // Outcome per call: "200", or "<status> <code>" for a structured refusal.
      const outcomes = new Map<string, number>();
      const count = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      const once = () =>
        new Promise<void>((resolve) => {
          const payload = JSON.stringify({ tool: 'sleep', args: { ms: 5 } });
          const req = request(
            { host: '127.0.0.1', port: app.port, path: '/api/execute', method: 'POST', agent: sockets, headers: { 'content-type': 'application/json' } },
            (res) => {
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => (text += chunk));
              res.on('end', () => {
                count(res.statusCode === 200 ? '200' : `${res.statusCode} ${(JSON.parse(text) as SnakepitErrorBody).error.code}`);
                resolve();
              });
            },
          );
          req.on('error', (error) => {
            count(`connection error ${error.message}`);
            resolve();
          });
          req.end(payload);
        });
      await Promise.all(Array.from({ length: 10_000 }, once));
      sockets.destroy();
      expect([...outcomes.values()].reduce((a, b) => a + b, 0)).toBe(10_000);
      expect(outcomes.get('200')).toBeGreaterThan(0);
      expect(outcomes.get('429 QUEUE_FULL')).toBeGreaterThan(0);
      // Under this overload a call admitted to the queue may also wait past the queue timeout.
      expect([...outcomes.keys()].filter((key) => !['200', '429 QUEUE_FULL', '503 QUEUE_TIMEOUT'].includes(key))).toEqual([]);
      const pool = await eventually(async () => {
        const [info] = await app.pools();
        return info.queueDepth === 0 && info.busy === 0 && info.available === 2 ? info : undefined;
      });
      expect(pool.ready).toBe(2);
      expect((await app.execute('add', { a: 1, b: 1 })).body.result).toBe(2);
    });
  });

  describe('locked-down worker channel', () => {
    it('workers listen on unix sockets in a 0700 directory and refuse calls without the run token', async () => {
      const [dir] = readdirSync(socketRoot);
      expect(statSync(join(socketRoot, dir)).mode & 0o777).toBe(0o700);
      const [socket] = readdirSync(join(socketRoot, dir));
      const health = new HealthClient(`unix://${join(socketRoot, dir, socket)}`);
      try {
        await expect(health.check('')).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
        const wrong = new grpc.Metadata();
        wrong.set('x-snakepit-token', 'guess');
        await expect(health.check('', wrong)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      } finally {
        health.close();
      }
    });

    it("the host's environment reaches workers only through the allow-list", async () => {
      const names = (await app.execute<ExecuteResult<string[]>>('environment')).body.result;
      expect(names).toContain('PATH');
      expect(names).toContain('SNAKEPIT_WORKER_ID');
      expect(names).not.toContain('SNAKEPIT_TEST_HOST_SECRET');
      expect(names).not.toContain('GRPC_PORT');
    });
  });
});

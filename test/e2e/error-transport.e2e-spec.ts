import { expect } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import type { SnakepitErrorBody } from '@snakepit/nestjs';
import { coreClientUnary, errorBody, snakepitClient } from '../helpers/grpc-client';
import { eventually, startSampleApp, type SampleApp } from '../helpers/sample-app';

jest.setTimeout(120_000);

/** Bytes a C-core client allows in one metadata batch by default. */
const CORE_METADATA_LIMIT = 8 * 1024;

/** 30 unknown arguments with long non-ASCII names: the worker reports 20 of them, about 75 KB of details. */
const HUGE_INVALID_ARGS: Record<string, number> = { a: 1, b: 2 };
for (let i = 0; i < 30; i++) HUGE_INVALID_ARGS[`${'参数'.repeat(300)}${i}`] = i;
/** A path as the worker writes it: a key that is not an identifier is JSON-quoted, ASCII only. */
const quotedPath = (key: string) => `$[${JSON.stringify(key).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}]`;

function bodyOf(status: { metadata: Record<string, string | Buffer> }): SnakepitErrorBody['error'] {
  return (JSON.parse((status.metadata['snakepit-error-body-bin'] as Buffer).toString('utf8')) as SnakepitErrorBody).error;
}

/**
 * Review 2 §8 and §12: errors with any text reach gRPC clients (grpc-js and
 * C-core) structured and within their metadata limit, and HTTP intact; in
 * production the bodies leave Snakepit's internals out.
 */
describe('errors over gRPC and HTTP, whatever their text and size', () => {
  let app: SampleApp;
  let api: ReturnType<typeof snakepitClient>;

  beforeAll(async () => {
    app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1' });
    api = snakepitClient(app.grpcAddress);
  });

  afterAll(async () => {
    api?.client.close();
    api?.health.close();
    await app?.stop();
  });

  const grpcFailure = (tool: string, args: object) =>
    api.unary('Execute', { tool, argsJson: JSON.stringify(args) }).then(
      () => undefined,
      (error: grpc.ServiceError) => error,
    );

  it.each([
    ['ValueError', 'café introuvable', 'ValueError: café introuvable'],
    ['KeyError', '数据', "KeyError: '数据'"],
  ])('a %s with non-ASCII text reaches a grpc-js client and a C-core client structured', async (type, message, expected) => {
    const error = (await grpcFailure('fail', { type, message }))!;
    expect(error.code).toBe(grpc.status.INTERNAL);
    expect(error.details).toBe(expected);
    expect(error.metadata.get('snakepit-error-code')).toEqual(['PYTHON_EXCEPTION']);
    expect(error.metadata.get('snakepit-python-type')).toEqual([type]);
    const body = errorBody(error);
    expect(body).toMatchObject({ code: 'PYTHON_EXCEPTION', message: expected, details: { pool: 'default', tool: 'fail' }, python: { type } });
    expect(body.python?.traceback).toContain(expected);

    const core = coreClientUnary(app.grpcAddress, 'Execute', { tool: 'fail', argsJson: JSON.stringify({ type, message }) });
    expect(core.code).toBe(grpc.status.INTERNAL);
    expect(core.details).toBe(expected);
    expect(core.metadata['snakepit-error-code']).toBe('PYTHON_EXCEPTION');
    expect(bodyOf(core)).toMatchObject({ code: 'PYTHON_EXCEPTION', message: expected, python: { type } });
  });

  it('the same message reaches HTTP clients intact as JSON', async () => {
    const response = await app.execute<SnakepitErrorBody>('fail', { type: 'KeyError', message: '数据 café' });
    expect(response.status).toBe(500);
    expect(response.headers.get('content-type')).toContain('application/json');
    expect(response.body.error).toMatchObject({
      code: 'PYTHON_EXCEPTION',
      message: "KeyError: '数据 café'",
      python: { type: 'KeyError', message: "'数据 café'" },
    });
  });

  it('a huge validation error fits the metadata limit of a C-core client, cut and marked truncated; HTTP keeps it whole', async () => {
    const error = (await grpcFailure('add', HUGE_INVALID_ARGS))!;
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.metadata.get('snakepit-error-code')).toEqual(['INVALID_ARGUMENTS']);
    expect(error.details.startsWith(`invalid arguments for add: ${quotedPath('参数参数')}`.slice(0, -2))).toBe(true);
    expect(error.details.endsWith('…')).toBe(true);
    const body = errorBody(error);
    expect(body).toMatchObject({ code: 'INVALID_ARGUMENTS', truncated: true, details: { pool: 'default', tool: 'add', parameters: ['a', 'b'] } });
    expect(body.details).not.toHaveProperty('errors');
    const trailers = { ...error.metadata.toHttp2Headers(), 'grpc-message': encodeURI(error.details) };
    expect(Object.entries(trailers).reduce((sum, [key, value]) => sum + key.length + String(value).length + 32, 0)).toBeLessThan(CORE_METADATA_LIMIT);

    // grpcio enforces the limit: trailers over it would end the call INTERNAL or RESOURCE_EXHAUSTED without them.
    const core = coreClientUnary(app.grpcAddress, 'Execute', { tool: 'add', argsJson: JSON.stringify(HUGE_INVALID_ARGS) });
    expect(core.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(core.details).toBe(error.details);
    expect(core.metadata['snakepit-error-code']).toBe('INVALID_ARGUMENTS');
    expect(bodyOf(core)).toMatchObject({
      code: 'INVALID_ARGUMENTS',
      truncated: true,
      message: body.message,
      details: { pool: 'default', tool: 'add', parameters: ['a', 'b'] },
    });

    const http = await app.execute<SnakepitErrorBody>('add', HUGE_INVALID_ARGS);
    expect(http.status).toBe(400);
    expect(http.body.error.code).toBe('INVALID_ARGUMENTS');
    const errors = http.body.error.details.errors as unknown[];
    expect(errors).toHaveLength(20);
    expect(errors[0]).toEqual({ path: quotedPath(`${'参数'.repeat(300)}0`), problem: 'unknown', got: 'integer' });
    expect(http.body.error).not.toHaveProperty('truncated');
  });

  it('a server stream that fails carries the same structured status', async () => {
    const { messages, error } = await api.serverStream('ExecuteStream', { tool: 'count', argsJson: JSON.stringify({ n: 2, é: 1 }) });
    expect(messages).toEqual([]);
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error?.details).toBe(`invalid arguments for count: ${quotedPath('é')} is not a parameter`);
    expect(errorBody(error!)).toMatchObject({ code: 'INVALID_ARGUMENTS', details: { tool: 'count', errors: [{ path: quotedPath('é'), problem: 'unknown' }] } });
  });
});

describe('public error bodies in production (exposeTracebacks off)', () => {
  let app: SampleApp;
  let api: ReturnType<typeof snakepitClient>;

  beforeAll(async () => {
    app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1', NODE_ENV: 'production' });
    api = snakepitClient(app.grpcAddress);
  });

  afterAll(async () => {
    api?.client.close();
    api?.health.close();
    await app?.stop();
  });

  it('a Python exception shows its type and message, not the worker, the chain or the traceback; the log keeps them', async () => {
    const expected = {
      code: 'PYTHON_EXCEPTION',
      numericCode: 1000,
      message: 'ValueError: café',
      details: { pool: 'default', tool: 'fail' },
      python: { type: 'ValueError', message: 'café' },
    };
    const http = await app.execute<SnakepitErrorBody>('fail', { type: 'ValueError', message: 'café', chained: true });
    expect(http.status).toBe(500);
    expect(http.body.error).toEqual(expected);
    const error = await api.unary('Execute', { tool: 'fail', argsJson: JSON.stringify({ type: 'ValueError', message: 'café', chained: true }) }).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(error?.code).toBe(grpc.status.INTERNAL);
    expect(errorBody(error!)).toEqual(expected);
    const [worker] = await app.workers();
    const line = await eventually(() => app.logs.find((entry) => entry.includes('traceback hidden from the client') && entry.includes('inner cause')));
    expect(JSON.parse(line)).toMatchObject({
      worker_id: worker.id,
      pid: worker.pid,
      python_type: 'ValueError',
      traceback: expect.stringContaining('ValueError: café'),
    });
  });

  it('refusals do not list the tools or pools there are', async () => {
    const tool = await app.execute<SnakepitErrorBody>('no_such_tool');
    expect(tool.status).toBe(404);
    expect(tool.body.error.details).toEqual({ pool: 'default', tool: 'no_such_tool' });
    const pool = await app.execute<SnakepitErrorBody>('ping', {}, { pool: 'nope' });
    expect(pool.status).toBe(404);
    expect(pool.body.error.details).toEqual({ pool: 'nope' });
  });
});

import { expect } from '@jest/globals';
import { Metadata, status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { Controller, Get, Logger, Module, Res, type ArgumentsHost, type INestApplication, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GrpcMethod, Transport, type GrpcOptions } from '@nestjs/microservices';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { FastifyReply } from 'fastify';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { lastValueFrom, throwError, type Observable } from 'rxjs';
import { errorBody, snakepitClient } from '../../../../test/helpers/grpc-client';
import { freePort } from '../../../../test/helpers/sample-app';
import { locateProtoRoot, PROTO_LOADER_OPTIONS } from '../bridge/proto';
import { SnakepitError, type PythonExceptionInfo, type SnakepitErrorBody } from './snakepit-error';
import {
  fitBody,
  GRPC_ERROR_BODY_MAX_BYTES,
  GRPC_STATUS_MESSAGE_MAX_BYTES,
  SnakepitExceptionFilter,
  toGrpcStatus,
  type SnakepitGrpcStatus,
} from './snakepit-exception.filter';

/** What the worker pool adds to an error: the public part (pool, tool, session) and the internals. */
const CALL_CONTEXT = { pool: 'default', tool: 'fail', sessionId: 'sess_1', workerId: 'default-3', pid: 4242, requestId: 17 };

function pythonError(
  type: string,
  message: string,
  traceback = `Traceback (most recent call last):\n  File "tool.py", line 1\n${type}: ${message}\n`,
): SnakepitError {
  const python: PythonExceptionInfo = { type, message, traceback, chain: [{ type: 'KeyError', message: "'secret inner detail'", relation: 'cause' }] };
  return new SnakepitError('PYTHON_EXCEPTION', `${type}: ${message}`, { details: CALL_CONTEXT, python });
}

/** The public body of pythonError(type, message): no internals, no chain, no traceback. */
function publicPythonBody(type: string, message: string) {
  return {
    code: 'PYTHON_EXCEPTION',
    numericCode: 1000,
    message: `${type}: ${message}`,
    details: { pool: 'default', tool: 'fail', sessionId: 'sess_1' },
    python: { type, message },
  };
}

@Controller()
class FailingController {
  @Get('fail')
  fail(): never {
    throw new SnakepitError('TOOL_NOT_FOUND', 'no tool "x"', { details: { tool: 'x' } });
  }

  @Get('fail-python')
  failPython(): never {
    throw pythonError('ValueError', 'café introuvable ✓ 数据');
  }

  /** Fails after the response started: the filter can only end it. */
  @Get('fail-late')
  failLate(@Res() response: ServerResponse | FastifyReply): never {
    // A Fastify handler that writes the Node response itself takes it over from Fastify first.
    const raw = 'hijack' in response ? response.hijack().raw : response;
    raw.writeHead(200, { 'content-type': 'text/plain' });
    raw.write('partial');
    throw new SnakepitError('WORKER_CRASHED', 'worker died');
  }
}

@Module({ controllers: [FailingController] })
class FailingModule {}

/** The filter must behave the same on both of Nest's platforms, given the HTTP adapter or not. */
describe.each([
  ['Express, through the adapter', () => new ExpressAdapter(), true],
  ['Express, without the adapter', () => new ExpressAdapter(), false],
  ['Fastify, through the adapter', () => new FastifyAdapter(), true],
  ['Fastify, without the adapter', () => new FastifyAdapter(), false],
])('SnakepitExceptionFilter on %s', (_platform, adapter, withAdapter) => {
  let app: INestApplication<Server>;
  let baseUrl: string;

  beforeAll(async () => {
    app = await NestFactory.create(FailingModule, adapter(), { logger: false });
    app.useGlobalFilters(new SnakepitExceptionFilter({ exposeTracebacks: false }, withAdapter ? app.getHttpAdapter() : undefined));
    await app.listen(0, '127.0.0.1');
    const address = app.getHttpServer().address() as AddressInfo;
    baseUrl = `http://127.0.0.1:${address.port}`;
  });

  afterAll(async () => {
    await app?.close();
  });

  it("answers with the error's HTTP status and structured JSON body", async () => {
    const response = await fetch(`${baseUrl}/fail`);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toContain('application/json');
    expect(await response.json()).toEqual({
      error: { code: 'TOOL_NOT_FOUND', numericCode: expect.any(Number), message: 'no tool "x"', details: { tool: 'x' } },
    });
  });

  it('answers a non-ASCII Python error intact, with the public body only', async () => {
    const response = await fetch(`${baseUrl}/fail-python`);
    expect(response.status).toBe(500);
    expect(response.headers.get('content-type')).toContain('application/json');
    const body = (await response.json()) as SnakepitErrorBody;
    expect(body.error).toEqual(publicPythonBody('ValueError', 'café introuvable ✓ 数据'));
  });

  it('ends a response whose headers were already sent', async () => {
    const response = await fetch(`${baseUrl}/fail-late`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('partial');
  });
});

const HUGE_TRACEBACK = `Traceback (most recent call last):\n${'  File "deep.py", line 1, in recurse\n    recurse()\n'.repeat(1200)}RecursionError: the end\n`;

/** The failures the gRPC test server answers with, by the `tool` of the request. */
const FAILURES: Record<string, () => SnakepitError> = {
  accents: () => pythonError('ValueError', 'café introuvable'),
  cjk: () => pythonError('KeyError', "'数据'"),
  'huge-validation': () =>
    new SnakepitError('INVALID_ARGUMENTS', `invalid arguments for add: ${'参数 is not a parameter; '.repeat(400)}`, {
      details: {
        pool: 'default',
        tool: 'add',
        errors: Array.from({ length: 400 }, (_, i) => ({ path: `$.参数_${i}`, problem: 'unknown', got: 'string' })),
        parameters: ['a', 'b'],
      },
    }),
  'huge-traceback': () => pythonError('RecursionError', 'the end', HUGE_TRACEBACK),
  'unicode-type': () => pythonError('errors.ErreurÉtrange', 'bof'),
  'lone-surrogate': () => new SnakepitError('TOOL_NOT_FOUND', 'no tool "\ud800x"', { details: { tool: '\ud800x' } }),
  'bigint-details': () => new SnakepitError('INTERNAL', 'odd details', { details: { big: 10n } }),
};

@Controller()
class FailingGrpcController {
  @GrpcMethod('Snakepit', 'Execute')
  execute(request: { tool: string }): never {
    throw FAILURES[request.tool]();
  }

  @GrpcMethod('Snakepit', 'ExecuteStream')
  executeStream(request: { tool: string }): Observable<never> {
    return throwError(() => FAILURES[request.tool]());
  }
}

@Module({ controllers: [FailingGrpcController] })
class FailingGrpcModule {}

/** Bytes the trailers take on the wire (HTTP/2 header list size: name + value + 32 each), as C-core counts them. */
function trailerBytes(error: ServiceError): number {
  const headers = { ...error.metadata.toHttp2Headers(), 'grpc-status': String(error.code), 'grpc-message': encodeURI(error.details) };
  return Object.entries(headers).reduce((sum, [key, value]) => sum + key.length + String(value).length + 32, 0);
}

/** Over real gRPC: a Nest gRPC server with the filter, and a grpc-js client of the same service. */
describe.each([false, true])('SnakepitExceptionFilter over gRPC (exposeTracebacks: %s)', (exposeTracebacks) => {
  let server: INestMicroservice;
  let api: ReturnType<typeof snakepitClient>;

  beforeAll(async () => {
    const url = `127.0.0.1:${await freePort()}`;
    server = await NestFactory.createMicroservice<GrpcOptions>(FailingGrpcModule, {
      transport: Transport.GRPC,
      options: { package: 'snakepit.v1', protoPath: 'snakepit/v1/snakepit.proto', loader: { ...PROTO_LOADER_OPTIONS, includeDirs: [locateProtoRoot()] }, url },
      logger: false,
    });
    server.useGlobalFilters(new SnakepitExceptionFilter({ exposeTracebacks }));
    await server.listen();
    api = snakepitClient(url);
  });

  afterAll(async () => {
    api?.client.close();
    api?.health.close();
    await server?.close();
  });

  const fail = (tool: string) =>
    api.unary('Execute', { tool }).then(
      () => undefined,
      (error: ServiceError) => error,
    );

  it.each([
    ['accents', 'ValueError', 'café introuvable'],
    ['cjk', 'KeyError', "'数据'"],
  ])('a Python error with non-ASCII text (%s) arrives structured and readable', async (tool, type, message) => {
    const error = await fail(tool);
    expect(error?.code).toBe(grpcStatus.INTERNAL);
    expect(error?.details).toBe(`${type}: ${message}`);
    expect(error?.metadata.get('snakepit-error-code')).toEqual(['PYTHON_EXCEPTION']);
    expect(error?.metadata.get('snakepit-python-type')).toEqual([type]);
    const body = errorBody(error!);
    if (exposeTracebacks) {
      expect(body.details).toEqual(CALL_CONTEXT);
      expect(body.python).toEqual({
        type,
        message,
        chain: [{ type: 'KeyError', message: "'secret inner detail'", relation: 'cause' }],
        traceback: expect.stringContaining(`${type}: ${message}`),
      });
    } else {
      expect(body).toEqual(publicPythonBody(type, message));
    }
  });

  it('the same error ends a server stream the same way', async () => {
    const { messages, error } = await api.serverStream('ExecuteStream', { tool: 'cjk' });
    expect(messages).toEqual([]);
    expect(error?.code).toBe(grpcStatus.INTERNAL);
    expect(error?.metadata.get('snakepit-error-code')).toEqual(['PYTHON_EXCEPTION']);
    expect(errorBody(error!).python?.message).toBe("'数据'");
  });

  it('a huge validation error is cut to fit C-core clients, details first, and marked truncated', async () => {
    const error = (await fail('huge-validation'))!;
    expect(error.code).toBe(grpcStatus.INVALID_ARGUMENT);
    expect(error.metadata.get('snakepit-error-code')).toEqual(['INVALID_ARGUMENTS']);
    const [raw] = error.metadata.get('snakepit-error-body-bin') as Buffer[];
    expect(raw.length).toBeLessThanOrEqual(GRPC_ERROR_BODY_MAX_BYTES);
    const body = errorBody(error);
    expect(body).toMatchObject({ code: 'INVALID_ARGUMENTS', truncated: true, details: { pool: 'default', tool: 'add', parameters: ['a', 'b'] } });
    expect(body.details).not.toHaveProperty('errors');
    expect(body.message).toMatch(/^invalid arguments for add: 参数 is not a parameter; .*…$/);
    // The status message is cut too, readable, and within its budget once percent-encoded.
    expect(error.details).toMatch(/^invalid arguments for add: 参数 is not a parameter; .*…$/);
    expect(encodeURI(error.details).length).toBeLessThanOrEqual(GRPC_STATUS_MESSAGE_MAX_BYTES);
    expect(trailerBytes(error)).toBeLessThan(8 * 1024);
  });

  it('a huge traceback keeps its end when shown, and never pushes the trailers past 8 KiB', async () => {
    const error = (await fail('huge-traceback'))!;
    expect(error.code).toBe(grpcStatus.INTERNAL);
    const body = errorBody(error);
    expect(body.message).toBe('RecursionError: the end');
    if (exposeTracebacks) {
      expect(body.truncated).toBe(true);
      expect(body.python?.traceback).toMatch(/^….*RecursionError: the end\n$/s);
    } else {
      expect(body).toEqual(publicPythonBody('RecursionError', 'the end'));
    }
    expect(trailerBytes(error)).toBeLessThan(8 * 1024);
  });

  it('a Python type that is not ASCII stays out of the ASCII trailer but is in the body', async () => {
    const error = (await fail('unicode-type'))!;
    expect(error.metadata.get('snakepit-error-code')).toEqual(['PYTHON_EXCEPTION']);
    expect(error.metadata.get('snakepit-python-type')).toEqual([]);
    expect(errorBody(error).python?.type).toBe('errors.ErreurÉtrange');
  });

  it('text no encoding can carry (a lone surrogate) and details JSON cannot carry still give a structured status', async () => {
    const surrogate = (await fail('lone-surrogate'))!;
    expect(surrogate.code).toBe(grpcStatus.NOT_FOUND);
    expect(surrogate.details).toBe('no tool "\ufffdx"');
    // JSON escapes a lone surrogate (\ud800), so the body even keeps it as it was.
    expect(errorBody(surrogate)).toMatchObject({ code: 'TOOL_NOT_FOUND', details: { tool: '\ud800x' } });
    const bigint = (await fail('bigint-details'))!;
    expect(bigint.code).toBe(grpcStatus.INTERNAL);
    expect(errorBody(bigint)).toEqual({ code: 'INTERNAL', numericCode: 1099, message: 'odd details', details: {}, truncated: true });
  });
});

describe('fitBody', () => {
  it('returns a body that fits unchanged', () => {
    const body = pythonError('ValueError', 'x').toBody({ exposeTracebacks: true });
    expect(fitBody(body, GRPC_ERROR_BODY_MAX_BYTES)).toBe(body);
  });

  it('cuts the traceback to its end, then the chain, the messages, the largest details, and the rest last', () => {
    const error = new SnakepitError('PYTHON_EXCEPTION', 'm'.repeat(5000), {
      details: { small: 1, big: 'b'.repeat(5000) },
      python: {
        type: 'ValueError',
        message: 'p'.repeat(5000),
        traceback: 't'.repeat(5000),
        chain: [{ type: 'KeyError', message: 'c'.repeat(5000), relation: 'cause' }],
      },
    });
    const body = error.toBody({ exposeTracebacks: true });
    const fitted = (maxBytes: number) => {
      const result = fitBody(body, maxBytes);
      expect(Buffer.byteLength(JSON.stringify(result))).toBeLessThanOrEqual(maxBytes);
      expect(result.error).toMatchObject({ code: 'PYTHON_EXCEPTION', truncated: true });
      return result.error;
    };
    expect(fitted(24_000)).toMatchObject({
      message: body.error.message,
      details: body.error.details,
      python: { traceback: expect.stringMatching(/^…t+$/), chain: body.error.python?.chain },
    });
    expect(fitted(18_000)).toMatchObject({ message: body.error.message, details: body.error.details });
    expect(fitted(18_000).python).toEqual({ type: 'ValueError', message: 'p'.repeat(5000) });
    expect(fitted(12_000)).toMatchObject({ message: expect.stringMatching(/^m{2000,3000}…$/), details: body.error.details });
    expect(fitted(8_000).details).toEqual({ small: 1 });
    expect(fitted(1_000).message).toMatch(/^m+…$/);
    expect(fitted(300).python?.type).toBe('ValueError');
    // The original is left as it was.
    expect(body.error.python?.traceback).toBe('t'.repeat(5000));
  });

  it('cuts multi-byte text between characters', () => {
    const body = new SnakepitError('INTERNAL', '数据'.repeat(2000)).toBody({ exposeTracebacks: false });
    const fitted = fitBody(body, 1000);
    expect(fitted.error.message).toMatch(/^(数据)*数?…$/);
  });
});

describe('SnakepitExceptionFilter outside HTTP', () => {
  const rpcHost = { getType: () => 'rpc' } as unknown as ArgumentsHost;

  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('turns an error in a gRPC handler into a gRPC status with the body in trailing metadata', async () => {
    const filter = new SnakepitExceptionFilter({ exposeTracebacks: false });
    const result = filter.catch(new SnakepitError('TOOL_NOT_FOUND', 'no tool "x"'), rpcHost) as Observable<never>;
    const status: SnakepitGrpcStatus = await lastValueFrom(result).catch((error: SnakepitGrpcStatus) => error);
    expect(status.code).toBe(new SnakepitError('TOOL_NOT_FOUND', '').grpcStatus);
    expect(status.metadata).toBeInstanceOf(Metadata);
    expect(status.metadata.get('snakepit-error-code')).toEqual(['TOOL_NOT_FOUND']);
    expect(JSON.parse((status.metadata.get('snakepit-error-body-bin')[0] as Buffer).toString())).toEqual({
      error: { code: 'TOOL_NOT_FOUND', numericCode: 1001, message: 'no tool "x"', details: {} },
    });
  });

  it('keeps what it hides from the client in the log, and in the error itself', () => {
    const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const error = pythonError('ValueError', 'café');
    const status = toGrpcStatus(error, { exposeTracebacks: false });
    expect((JSON.parse((status.metadata.get('snakepit-error-body-bin')[0] as Buffer).toString()) as SnakepitErrorBody).error).toEqual(
      publicPythonBody('ValueError', 'café'),
    );
    expect(error.details).toEqual(CALL_CONTEXT);
    new SnakepitExceptionFilter({ exposeTracebacks: false }).catch(error, rpcHost);
    expect(logged).toHaveBeenCalledWith(
      expect.objectContaining({ worker_id: 'default-3', pid: 4242, request_id: 17, chain: error.python?.chain, traceback: error.python?.traceback }),
    );
    logged.mockClear();
    new SnakepitExceptionFilter({ exposeTracebacks: true }).catch(error, rpcHost);
    expect(logged).not.toHaveBeenCalled();
  });

  it('hides every internal detail key without exposeTracebacks and shows them all with it', () => {
    const internals = {
      workerId: 'w',
      pid: 1,
      requestId: 2,
      available: ['a'],
      pools: ['p'],
      workers: ['w'],
      output: ['line'],
      python: '/usr/bin/python3',
      tried: ['n1'],
      operation: 'session.get',
      grpcCode: 14,
      hostType: 'TypeError',
    };
    const error = new SnakepitError('WORKER_UNAVAILABLE', 'no', { details: { pool: 'p', tool: 't', reason: 'node_lost', node: 'n1', ...internals } });
    expect(error.toBody({ exposeTracebacks: false }).error.details).toEqual({ pool: 'p', tool: 't', reason: 'node_lost', node: 'n1' });
    expect(error.toBody({ exposeTracebacks: true }).error.details).toEqual(error.details);
  });
});

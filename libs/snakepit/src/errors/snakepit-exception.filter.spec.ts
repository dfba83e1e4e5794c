import { Metadata } from '@grpc/grpc-js';
import { Controller, Get, Module, Res, type ArgumentsHost, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';
import { lastValueFrom, type Observable } from 'rxjs';
import { SnakepitError } from './snakepit-error';
import { SnakepitExceptionFilter, type SnakepitGrpcStatus } from './snakepit-exception.filter';

@Controller()
class FailingController {
  @Get('fail')
  fail(): never {
    throw new SnakepitError('TOOL_NOT_FOUND', 'no tool "x"', { details: { tool: 'x' } });
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
  let app: INestApplication;
  let baseUrl: string;

  beforeAll(async () => {
    app = await NestFactory.create(FailingModule, adapter(), { logger: false });
    app.useGlobalFilters(new SnakepitExceptionFilter({ exposeTracebacks: false }, withAdapter ? app.getHttpAdapter() : undefined));
    await app.listen(0, '127.0.0.1');
    const address = app.getHttpServer().address() as { port: number };
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

  it('ends a response whose headers were already sent', async () => {
    const response = await fetch(`${baseUrl}/fail-late`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('partial');
  });
});

describe('SnakepitExceptionFilter outside HTTP', () => {
  const rpcHost = { getType: () => 'rpc' } as unknown as ArgumentsHost;

  it('turns an error in a gRPC handler into a gRPC status with the body in trailing metadata', async () => {
    const filter = new SnakepitExceptionFilter({ exposeTracebacks: false });
    const result = filter.catch(new SnakepitError('TOOL_NOT_FOUND', 'no tool "x"'), rpcHost) as Observable<never>;
    const status: SnakepitGrpcStatus = await lastValueFrom(result).catch((error: SnakepitGrpcStatus) => error);
    expect(status.code).toBe(new SnakepitError('TOOL_NOT_FOUND', '').grpcStatus);
    expect(status.metadata).toBeInstanceOf(Metadata);
    expect(status.metadata.get('snakepit-error-code')).toEqual(['TOOL_NOT_FOUND']);
  });
});

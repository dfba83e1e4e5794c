import { Body, Controller, HttpCode, Inject, Post, Res } from '@nestjs/common';
import { PoolService, SnakepitError, type ExecuteResult, type SnakepitExceptionFilterOptions } from '@snakepit/nestjs';
import type { FastifyReply } from 'fastify';
import { ERROR_BODY_OPTIONS } from '../errors/app-exception.filter';
import { parseExecuteBody } from './request-body';

@Controller('api')
export class ExecuteController {
  constructor(
    private readonly pools: PoolService,
    @Inject(ERROR_BODY_OPTIONS) private readonly errorOptions: SnakepitExceptionFilterOptions,
  ) {}

  @Post('execute')
  @HttpCode(200)
  execute(@Body() body: unknown): Promise<ExecuteResult> {
    const { tool, args, options } = parseExecuteBody(body);
    return this.pools.execute(tool, args, options);
  }

  /**
   * Server-sent events: one `data:` event per chunk, then `event: end`. Headers
   * go out with the first chunk, so a call that fails before streaming still
   * gets its proper status; a failure mid-stream becomes an `event: error`.
   * A client that disconnects cancels the Python generator.
   */
  @Post('stream')
  stream(@Body() body: unknown, @Res() reply: FastifyReply): void {
    const { tool, args, options } = parseExecuteBody(body);
    const chunks = this.pools.executeStream(tool, args, options);
    // From here the event stream is written to the Node response directly (a Fastify reply sends one payload).
    reply.hijack();
    const res = reply.raw;
    const startStream = () => {
      if (!res.headersSent) res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    };
    const subscription = chunks.subscribe({
      next: (chunk) => {
        startStream();
        res.write(`id: ${chunk.seq}\ndata: ${JSON.stringify(chunk.data)}\n\n`);
      },
      error: (error: unknown) => {
        const failure = error instanceof SnakepitError ? error : new SnakepitError('INTERNAL', String(error));
        const errorBody = JSON.stringify(failure.toBody(this.errorOptions));
        if (!res.headersSent) {
          res.writeHead(failure.httpStatus, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(errorBody) });
          res.end(errorBody);
          return;
        }
        res.end(`event: error\ndata: ${errorBody}\n\n`);
      },
      complete: () => {
        startStream();
        res.end('event: end\ndata: {}\n\n');
      },
    });
    res.on('close', () => subscription.unsubscribe());
  }
}

import { once } from 'node:events';
import { Body, Controller, HttpCode, Inject, Post, Res } from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { PoolService, SnakepitError, type ExecuteResult, type SnakepitExceptionFilterOptions } from '@snakepit/nestjs';
import type { FastifyReply } from 'fastify';
import { ERROR_BODY_OPTIONS } from '../errors/app-exception.filter';
import { ApiErrors } from './error-body.dto';
import { CALL_ERRORS, ExecuteRequestDto, ExecuteResponseDto } from './execute.dto';
import { parseExecuteBody } from './request-body';

@ApiTags('calls')
@Controller('api')
export class ExecuteController {
  constructor(
    private readonly pools: PoolService,
    @Inject(ERROR_BODY_OPTIONS) private readonly errorOptions: SnakepitExceptionFilterOptions,
  ) {}

  @Post('execute')
  @HttpCode(200)
  @ApiOperation({ summary: 'Run a tool and answer its result' })
  @ApiBody({ type: ExecuteRequestDto })
  @ApiOkResponse({ type: ExecuteResponseDto, description: 'The result, and where the call ran' })
  @ApiErrors(...CALL_ERRORS)
  execute(@Body() body: unknown): Promise<ExecuteResult> {
    const { tool, args, options } = parseExecuteBody(body);
    return this.pools.execute(tool, args, options);
  }

  /**
   * Server-sent events: one `data:` event per chunk, then `event: end`. Headers
   * go out with the first chunk, so a call that fails before streaming still
   * gets its proper status; a failure mid-stream becomes an `event: error`.
   * Backpressure end to end: while the client's socket is full the loop waits
   * for 'drain' and pulls nothing, so the Python generator pauses once the
   * stream window is used. A client that disconnects cancels the generator.
   */
  @Post('stream')
  @ApiOperation({ summary: 'Run a streaming tool: its chunks as server-sent events' })
  @ApiBody({ type: ExecuteRequestDto })
  @ApiOkResponse({
    description:
      'One `data:` event per chunk (its JSON, `id:` its sequence number), then `event: end`. A failure before the first chunk answers ' +
      'its status with the JSON error body; a failure later ends the stream with `event: error` carrying that body.',
    content: { 'text/event-stream': { schema: { type: 'string' }, example: 'id: 0\ndata: {"i":0}\n\nevent: end\ndata: {}\n\n' } },
  })
  @ApiErrors(...CALL_ERRORS)
  async stream(@Body() body: unknown, @Res() reply: FastifyReply): Promise<void> {
    const { tool, args, options } = parseExecuteBody(body);
    // From here the event stream is written to the Node response directly (a Fastify reply sends one payload).
    reply.hijack();
    const res = reply.raw;
    // A client that leaves cancels the call at once, even while the generator is between chunks.
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    const startStream = () => {
      if (!res.headersSent) res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    };
    try {
      for await (const chunk of this.pools.stream(tool, args, { ...options, signal: gone.signal })) {
        startStream();
        if (!res.write(`id: ${chunk.seq}\ndata: ${JSON.stringify(chunk.data)}\n\n`)) await once(res, 'drain', { signal: gone.signal });
      }
      startStream();
      res.end('event: end\ndata: {}\n\n');
    } catch (error) {
      if (gone.signal.aborted) return; // the client left: nobody to tell
      const failure = error instanceof SnakepitError ? error : new SnakepitError('INTERNAL', String(error));
      const errorBody = JSON.stringify(failure.toBody(this.errorOptions));
      if (!res.headersSent) {
        res.writeHead(failure.httpStatus, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(errorBody) });
        res.end(errorBody);
        return;
      }
      res.end(`event: error\ndata: ${errorBody}\n\n`);
    }
  }
}

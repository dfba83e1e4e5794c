import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { Body, Controller, HttpCode, Inject, Param, Post, Query, Res, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ApiBody, ApiConsumes, ApiExtraModels, ApiOkResponse, ApiOperation, ApiParam, ApiQuery, ApiTags } from '@nestjs/swagger';
import { PoolService, SnakepitError, type ExecuteOptions, type ExecuteResult, type SnakepitExceptionFilterOptions, type StreamChunk } from '@snakepit/nestjs';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { binaryBodyLimitBytes } from '../config';
import { ERROR_BODY_OPTIONS } from '../errors/app-exception.filter';
import { ApiErrors } from './error-body.dto';
import { BytesJsonDto, CALL_ERRORS, ExecuteRequestDto, ExecuteResponseDto, NdArrayJsonDto } from './execute.dto';
import { encodeHttpValue } from './http-values';
import { parseBinaryQuery, parseExecuteBody } from './request-body';

const BINARY_ROUTE = '/api/execute/:tool/binary';
const OCTET_STREAM = 'application/octet-stream';

@ApiTags('calls')
@ApiExtraModels(NdArrayJsonDto, BytesJsonDto)
@Controller('api')
export class ExecuteController implements OnModuleInit {
  constructor(
    private readonly pools: PoolService,
    @Inject(ERROR_BODY_OPTIONS) private readonly errorOptions: SnakepitExceptionFilterOptions,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  /**
   * The binary route's body parser, with its own limit (BINARY_BODY_LIMIT_BYTES).
   * Fastify's parsers are per server, not per route, and Nest sets no route
   * body limit: this one takes application/octet-stream only for that route
   * (anywhere else it refuses before reading) and reads it with its own limit.
   */
  onModuleInit(): void {
    const limit = binaryBodyLimitBytes();
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    // The gRPC microservice shares this module: its init runs the hook again.
    if (fastify.hasContentTypeParser(OCTET_STREAM)) return;
    fastify.addContentTypeParser(OCTET_STREAM, (request, payload, done) => {
      if (request.routeOptions.url !== BINARY_ROUTE) {
        done(new SnakepitError('INVALID_ARGUMENTS', `Only POST ${BINARY_ROUTE} takes ${OCTET_STREAM}; send JSON here`, { details: { field: 'body' } }));
        return;
      }
      readBody(payload, limit, request.headers['content-length']).then((body) => done(null, body), done);
    });
  }

  @Post('execute')
  @HttpCode(200)
  @ApiOperation({ summary: 'Run a tool and answer its result' })
  @ApiBody({ type: ExecuteRequestDto })
  @ApiOkResponse({ type: ExecuteResponseDto, description: 'The result, and where the call ran' })
  @ApiErrors(...CALL_ERRORS)
  async execute(@Body() body: unknown): Promise<ExecuteResult> {
    const { tool, args, options } = parseExecuteBody(body);
    const outcome = await this.pools.execute(tool, args, options);
    return { ...outcome, result: encodeHttpValue(outcome.result) };
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
      'One `data:` event per chunk (its JSON, arrays and bytes encoded as in results; `id:` its sequence number), then `event: end`. ' +
      'A failure before the first chunk answers its status with the JSON error body; a failure later ends the stream with `event: error` carrying that body.',
    content: { 'text/event-stream': { schema: { type: 'string' }, example: 'id: 0\ndata: {"i":0}\n\nevent: end\ndata: {}\n\n' } },
  })
  @ApiErrors(...CALL_ERRORS)
  async stream(@Body() body: unknown, @Res() reply: FastifyReply): Promise<void> {
    const { tool, args, options } = parseExecuteBody(body);
    await this.pipe(reply, tool, args, options, {
      contentType: 'text/event-stream',
      chunk: (chunk) => `id: ${chunk.seq}\ndata: ${JSON.stringify(encodeHttpValue(chunk.data))}\n\n`,
      end: 'event: end\ndata: {}\n\n',
      failed: (res, errorBody) => res.end(`event: error\ndata: ${errorBody}\n\n`),
    });
  }

  /**
   * Raw bytes both ways: the body is the tool's one bytes argument (the whole
   * arguments, as `PoolService.execute(tool, buffer)`), and each bytes chunk
   * of its result is written as it comes (a non-streaming tool's result is its
   * only chunk). A result that is not bytes fails the call; after the first
   * chunk a failure can only cut the response short (no chunked terminator).
   */
  @Post('execute/:tool/binary')
  @ApiOperation({ summary: 'Run a tool on raw bytes: the body is its bytes argument, its bytes result is streamed back' })
  @ApiParam({ name: 'tool', description: 'A tool whose one parameter is bytes', example: 'reverse_bytes' })
  @ApiQuery({ name: 'pool', required: false, description: 'Pool to run on' })
  @ApiQuery({ name: 'timeoutMs', required: false, type: 'integer', description: "Budget of the whole call in ms (default: the pool's timeoutMs)" })
  @ApiConsumes(OCTET_STREAM)
  @ApiBody({ description: 'The bytes (up to BINARY_BODY_LIMIT_BYTES, default 64 MiB)', schema: { type: 'string', format: 'binary' } })
  @ApiOkResponse({
    description: "The tool's bytes result, streamed (chunked transfer)",
    content: { [OCTET_STREAM]: { schema: { type: 'string', format: 'binary' } } },
  })
  @ApiErrors(...CALL_ERRORS)
  async binary(@Param('tool') tool: string, @Query() query: Record<string, unknown>, @Body() body: unknown, @Res() reply: FastifyReply): Promise<void> {
    const options = parseBinaryQuery(query);
    if (!Buffer.isBuffer(body)) throw new SnakepitError('INVALID_ARGUMENTS', `The body must be ${OCTET_STREAM}`, { details: { field: 'body' } });
    await this.pipe(reply, tool, body, options, {
      contentType: OCTET_STREAM,
      chunk: (chunk) => {
        if (chunk.data instanceof Uint8Array) return chunk.data;
        throw new SnakepitError(
          'INVALID_ARGUMENTS',
          `${tool} answered ${chunk.data === null ? 'null' : typeof chunk.data}, not bytes: call it through POST /api/execute`,
          {
            details: { tool, field: 'result' },
          },
        );
      },
      failed: (res) => res.destroy(),
    });
  }

  /**
   * Writes a call's chunks to the Node response directly (a Fastify reply
   * sends one payload), waiting for 'drain' while the client's socket is full.
   * A failure before the first chunk answers its status with the JSON error body.
   */
  private async pipe(
    reply: FastifyReply,
    tool: string,
    args: unknown,
    options: ExecuteOptions,
    write: {
      contentType: string;
      chunk: (chunk: StreamChunk) => string | Uint8Array;
      end?: string;
      failed: (res: FastifyReply['raw'], errorBody: string) => void;
    },
  ): Promise<void> {
    reply.hijack();
    const res = reply.raw;
    // A client that leaves cancels the call at once, even while the generator is between chunks.
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    const start = () => {
      if (!res.headersSent) res.writeHead(200, { 'content-type': write.contentType, 'cache-control': 'no-cache', connection: 'keep-alive' });
    };
    try {
      for await (const chunk of this.pools.stream(tool, args, { ...options, signal: gone.signal })) {
        const data = write.chunk(chunk);
        start();
        if (!res.write(data)) await once(res, 'drain', { signal: gone.signal });
      }
      start();
      res.end(write.end);
    } catch (error) {
      if (gone.signal.aborted) return; // the client left: nobody to tell
      const failure = error instanceof SnakepitError ? error : new SnakepitError('INTERNAL', String(error));
      const errorBody = JSON.stringify(failure.toBody(this.errorOptions));
      if (!res.headersSent) {
        res.writeHead(failure.httpStatus, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(errorBody) });
        res.end(errorBody);
        return;
      }
      write.failed(res, errorBody);
    }
  }
}

/**
 * A request body up to `limit` bytes. Over it: PAYLOAD_TOO_LARGE naming the
 * setting, and the rest is left unread (Fastify closes the connection after
 * answering, as its own parsers do). Not Fastify's own reader (`parseAs`): it
 * reads before the parser sees the route, and its 413 would be answered with
 * the JSON body limit; raw-body would be one more dependency for these lines.
 */
function readBody(payload: Readable, limit: number, contentLength: string | undefined): Promise<Buffer> {
  const tooLarge = () =>
    new SnakepitError('PAYLOAD_TOO_LARGE', `The request body exceeds ${limit} bytes (BINARY_BODY_LIMIT_BYTES)`, {
      details: { limitBytes: limit, option: 'BINARY_BODY_LIMIT_BYTES' },
    });
  if (Number(contentLength) > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    // The 'error' listener stays: a client that leaves later is no one's concern but Fastify's.
    const stop = () => {
      payload.off('data', onData);
      payload.off('end', onEnd);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) {
        stop();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks, received));
    };
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.once('error', reject);
  });
}

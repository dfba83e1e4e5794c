import { Metadata } from '@grpc/grpc-js';
import { Catch, type ArgumentsHost, type ExceptionFilter, type HttpServer } from '@nestjs/common';
import { throwError, type Observable } from 'rxjs';
import { SnakepitError, type SnakepitErrorBody } from './snakepit-error';
import { SnakepitLogger } from '../logging/snakepit-logger';

export interface SnakepitExceptionFilterOptions {
  /** Include Python tracebacks in responses (on in development, off in production). */
  exposeTracebacks: boolean;
}

/** The gRPC status a SnakepitError becomes; its code and body travel in trailing metadata. */
export interface SnakepitGrpcStatus {
  code: number;
  message: string;
  details: string;
  metadata: Metadata;
}

/**
 * Bounds that keep an error's trailers far below the 8 KiB metadata limit of
 * C-core clients (Python, C++, Ruby...), which count encoded bytes: the body's
 * UTF-8 JSON (base64 on the wire: 4/3 of it) and the status message after
 * grpc-js percent-encodes it (up to 9 bytes per CJK character).
 */
export const GRPC_ERROR_BODY_MAX_BYTES = 3072;
export const GRPC_STATUS_MESSAGE_MAX_BYTES = 1024;
const PYTHON_TYPE_MAX_CHARS = 200;
const PRINTABLE_ASCII = /^[ -~]*$/;

/**
 * Never throws, whatever text the error carries: grpc-js refuses anything but
 * printable ASCII in a non `-bin` value, so the body rides in the binary
 * `snakepit-error-body-bin` trailer as UTF-8 JSON (the same body as over HTTP,
 * one JSON.parse away; google.rpc.Status in grpc-status-details-bin would need
 * Google's protos and a registry of detail types in every client).
 */
export function toGrpcStatus(error: SnakepitError, options: SnakepitExceptionFilterOptions): SnakepitGrpcStatus {
  const metadata = new Metadata();
  metadata.set('snakepit-error-code', error.code);
  metadata.set('snakepit-error-body-bin', Buffer.from(JSON.stringify(fitBody(jsonSafe(error.toBody(options)), GRPC_ERROR_BODY_MAX_BYTES))));
  // A Python type name may be non-ASCII (identifiers are Unicode); the body always has it.
  const pythonType = error.python?.type;
  if (pythonType && pythonType.length <= PYTHON_TYPE_MAX_CHARS && PRINTABLE_ASCII.test(pythonType)) metadata.set('snakepit-python-type', pythonType);
  const message = clipStatusMessage(error.message, GRPC_STATUS_MESSAGE_MAX_BYTES);
  return { code: error.grpcStatus, message, details: message, metadata };
}

/**
 * The body shortened until its JSON fits in maxBytes, least useful part first:
 * the traceback (keeping its end, which names the exception), the chain, the
 * messages to a quarter of maxBytes each, details entries largest first, then
 * the longest of the texts left. Marked `truncated`.
 */
export function fitBody(body: SnakepitErrorBody, maxBytes: number): SnakepitErrorBody {
  const over = (candidate: SnakepitErrorBody) => Buffer.byteLength(JSON.stringify(candidate)) - maxBytes;
  if (over(body) <= 0) return body;
  const python = body.error.python && { ...body.error.python };
  const error: SnakepitErrorBody['error'] = { ...body.error, details: { ...body.error.details }, ...(python ? { python } : {}), truncated: true };
  const shortened = { error };
  const traceback = python?.traceback;
  if (python && traceback !== undefined) {
    python.traceback = '';
    // JSON escapes (newlines, quotes) grow the text: a third of the room is left as margin.
    const room = Math.floor((-over(shortened) * 2) / 3);
    if (room > 256) python.traceback = clipUtf8(traceback, room, 'tail');
    if (!python.traceback || over(shortened) > 0) delete python.traceback;
  }
  if (python?.chain && over(shortened) > 0) delete python.chain;
  // A message over a quarter of the room would push out every detail; the status message has its start anyway.
  const share = maxBytes >> 2;
  if (over(shortened) > 0) {
    error.message = clipUtf8(error.message, share);
    if (python) python.message = clipUtf8(python.message, share);
  }
  const bySize = Object.entries(error.details).map(([key, value]) => ({ key, bytes: Buffer.byteLength(JSON.stringify(value) ?? '') }));
  for (const { key } of bySize.sort((a, b) => b.bytes - a.bytes)) {
    if (over(shortened) <= 0) break;
    delete error.details[key];
  }
  // Left: small fields and at most three texts; halving the longest ends within a few dozen steps.
  for (let step = 0; step < 64 && over(shortened) > 0; step++) {
    const texts = [
      { bytes: Buffer.byteLength(error.message), clip: (n: number) => (error.message = clipUtf8(error.message, n)) },
      ...(python
        ? [
            { bytes: Buffer.byteLength(python.message), clip: (n: number) => (python.message = clipUtf8(python.message, n)) },
            { bytes: Buffer.byteLength(python.type), clip: (n: number) => (python.type = clipUtf8(python.type, n)) },
          ]
        : []),
    ];
    const longest = texts.reduce((a, b) => (b.bytes > a.bytes ? b : a));
    longest.clip(longest.bytes >> 1);
  }
  return shortened;
}

/** Details built in process may hold what JSON cannot carry (a BigInt, a cycle): then they are left out. */
function jsonSafe(body: SnakepitErrorBody): SnakepitErrorBody {
  try {
    JSON.stringify(body);
    return body;
  } catch {
    return { error: { ...body.error, details: {}, truncated: true } };
  }
}

/** The status message, clipped so that grpc-js's percent-encoding of it (encodeURI) stays within maxBytes. */
function clipStatusMessage(message: string, maxBytes: number): string {
  // Through UTF-8 and back: lone surrogates become U+FFFD, which encodeURI (and so grpc-js) would throw on.
  const text = Buffer.from(message).toString();
  if (encodeURI(text).length <= maxBytes) return text;
  let clipped = '';
  let encodedBytes = ELLIPSIS_ENCODED_BYTES;
  for (const char of text) {
    encodedBytes += encodeURI(char).length;
    if (encodedBytes > maxBytes) break;
    clipped += char;
  }
  return `${clipped}${ELLIPSIS}`;
}

const ELLIPSIS = '…';
const ELLIPSIS_ENCODED_BYTES = encodeURI(ELLIPSIS).length;

/** At most maxBytes of UTF-8 from the head or the tail of text, cut between characters, marked with an ellipsis. */
function clipUtf8(text: string, maxBytes: number, keep: 'head' | 'tail' = 'head'): string {
  const bytes = Buffer.from(text);
  if (bytes.length <= maxBytes) return text;
  const room = Math.max(0, maxBytes - Buffer.byteLength(ELLIPSIS));
  // A UTF-8 continuation byte is 10xxxxxx: a cut moves past those to land between characters.
  const isContinuation = (index: number) => (bytes[index] & 0xc0) === 0x80;
  if (keep === 'head') {
    let end = room;
    while (end > 0 && isContinuation(end)) end--;
    return `${bytes.subarray(0, end).toString()}${ELLIPSIS}`;
  }
  let start = bytes.length - room;
  while (start < bytes.length && isContinuation(start)) start++;
  return `${ELLIPSIS}${bytes.subarray(start).toString()}`;
}

/**
 * Maps a SnakepitError to the transport it was thrown in: an HTTP status with
 * the body `{ error: { code, numericCode, message, details, python? } }`, or a
 * gRPC status carrying the same body (size-capped) in the `snakepit-error-body-bin`
 * trailer. Without `exposeTracebacks` the body is the public one (SnakepitErrorBody).
 *
 * HTTP answers go through the app's HTTP adapter when it is given
 * (`app.getHttpAdapter()`), as Nest's own BaseExceptionFilter does. Without
 * it the filter answers with `response.status(code).send(body)`, which Express
 * responses and Fastify replies both understand, so `new SnakepitExceptionFilter(options)`
 * keeps working on either platform.
 */
@Catch(SnakepitError)
export class SnakepitExceptionFilter implements ExceptionFilter<SnakepitError> {
  private readonly logger = new SnakepitLogger('Snakepit');

  constructor(
    private readonly options: SnakepitExceptionFilterOptions,
    private readonly httpAdapter?: HttpServer,
  ) {}

  catch(error: SnakepitError, host: ArgumentsHost): Observable<never> | void {
    if (error.python && !this.options.exposeTracebacks) this.logHidden(error);
    if (host.getType() === 'rpc') return throwError(() => toGrpcStatus(error, this.options));
    const response: unknown = host.switchToHttp().getResponse();
    const body = error.toBody(this.options);
    if (this.httpAdapter) {
      if (this.httpAdapter.isHeadersSent(response)) this.httpAdapter.end(response);
      else this.httpAdapter.reply(response, body, error.httpStatus);
      return;
    }
    const reply = response as PlatformResponse;
    // Express says headersSent, Fastify says sent (and ends through its Node response); only ending is left.
    if (reply.headersSent || reply.sent) (reply.raw ?? reply).end?.();
    else reply.status(error.httpStatus).send(body);
  }

  /** A tool's exception whose traceback and chain the client is not shown: the log keeps them, with the worker. */
  private logHidden(error: SnakepitError): void {
    const { pool, tool, workerId, pid, requestId, sessionId } = error.details;
    this.logger.error({
      msg: 'tool raised an exception (traceback hidden from the client)',
      error_code: error.code,
      pool,
      tool,
      worker_id: workerId,
      pid,
      request_id: requestId,
      session_id: sessionId,
      python_type: error.python?.type,
      python_message: error.python?.message,
      chain: error.python?.chain,
      traceback: error.python?.traceback,
    });
  }
}

/** What Express responses and Fastify replies have in common. */
interface PlatformResponse {
  headersSent?: boolean;
  sent?: boolean;
  end?: () => void;
  raw?: { end(): void };
  status(code: number): { send(body: unknown): unknown };
}

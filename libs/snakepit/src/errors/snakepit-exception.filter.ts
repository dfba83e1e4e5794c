import { Metadata } from '@grpc/grpc-js';
import { Catch, type ArgumentsHost, type ExceptionFilter, type HttpServer } from '@nestjs/common';
import { throwError, type Observable } from 'rxjs';
import { SnakepitError } from './snakepit-error';

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

export function toGrpcStatus(error: SnakepitError, options: SnakepitExceptionFilterOptions): SnakepitGrpcStatus {
  const metadata = new Metadata();
  metadata.set('snakepit-error-code', error.code);
  metadata.set('snakepit-error-body', JSON.stringify(error.toBody(options)));
  if (error.python) metadata.set('snakepit-python-type', error.python.type);
  return { code: error.grpcStatus, message: error.message, details: error.message, metadata };
}

/**
 * Maps a SnakepitError to the transport it was thrown in: an HTTP status with
 * the body `{ error: { code, numericCode, message, details, python? } }`, or a
 * gRPC status carrying the same body in the `snakepit-error-body` trailer.
 *
 * HTTP answers go through the app's HTTP adapter when it is given
 * (`app.getHttpAdapter()`), as Nest's own BaseExceptionFilter does. Without
 * it the filter answers with `response.status(code).send(body)`, which Express
 * responses and Fastify replies both understand, so `new SnakepitExceptionFilter(options)`
 * keeps working on either platform.
 */
@Catch(SnakepitError)
export class SnakepitExceptionFilter implements ExceptionFilter<SnakepitError> {
  constructor(
    private readonly options: SnakepitExceptionFilterOptions,
    private readonly httpAdapter?: HttpServer,
  ) {}

  catch(error: SnakepitError, host: ArgumentsHost): Observable<never> | void {
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
}

/** What Express responses and Fastify replies have in common. */
interface PlatformResponse {
  headersSent?: boolean;
  sent?: boolean;
  end?: () => void;
  raw?: { end(): void };
  status(code: number): { send(body: unknown): unknown };
}

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
 * HTTP answers go through the app's HTTP adapter (`app.getHttpAdapter()`), as
 * Nest's own BaseExceptionFilter does, so the filter works on any platform
 * (Express, Fastify). An app with no HTTP server may leave it out.
 */
@Catch(SnakepitError)
export class SnakepitExceptionFilter implements ExceptionFilter<SnakepitError> {
  constructor(
    private readonly options: SnakepitExceptionFilterOptions,
    private readonly httpAdapter?: HttpServer,
  ) {}

  catch(error: SnakepitError, host: ArgumentsHost): Observable<never> | void {
    if (host.getType() === 'rpc') return throwError(() => toGrpcStatus(error, this.options));
    if (!this.httpAdapter) {
      throw new Error('SnakepitExceptionFilter answers HTTP errors through the HTTP adapter: new SnakepitExceptionFilter(options, app.getHttpAdapter())');
    }
    const response: unknown = host.switchToHttp().getResponse();
    if (this.httpAdapter.isHeadersSent(response)) {
      this.httpAdapter.end(response);
      return;
    }
    this.httpAdapter.reply(response, error.toBody(this.options), error.httpStatus);
  }
}

import { Metadata } from '@grpc/grpc-js';
import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
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
 */
@Catch(SnakepitError)
export class SnakepitExceptionFilter implements ExceptionFilter<SnakepitError> {
  constructor(private readonly options: SnakepitExceptionFilterOptions) {}

  catch(error: SnakepitError, host: ArgumentsHost): Observable<never> | void {
    if (host.getType() === 'rpc') return throwError(() => toGrpcStatus(error, this.options));
    const response = host.switchToHttp().getResponse<Response>();
    if (response.headersSent) {
      response.end();
      return;
    }
    response.status(error.httpStatus).json(error.toBody(this.options));
  }
}

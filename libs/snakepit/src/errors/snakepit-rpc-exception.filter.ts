import { Metadata } from '@grpc/grpc-js';
import { Catch, type ArgumentsHost, type RpcExceptionFilter } from '@nestjs/common';
import { throwError, type Observable } from 'rxjs';
import { SnakepitError } from './snakepit-error';

/** The gRPC status a SnakepitError becomes; codes and Python type travel in trailing metadata. */
export interface SnakepitGrpcStatus {
  code: number;
  message: string;
  details: string;
  metadata: Metadata;
}

export function toGrpcStatus(error: SnakepitError, options: { exposeTracebacks: boolean }): SnakepitGrpcStatus {
  const metadata = new Metadata();
  metadata.set('snakepit-error-code', error.code);
  metadata.set('snakepit-error-body', JSON.stringify(error.toBody(options)));
  if (error.python) metadata.set('snakepit-python-type', error.python.type);
  return { code: error.grpcStatus, message: error.message, details: error.message, metadata };
}

/** Turns a SnakepitError thrown in a gRPC handler into a gRPC status with structured metadata. */
@Catch(SnakepitError)
export class SnakepitRpcExceptionFilter implements RpcExceptionFilter<SnakepitError> {
  constructor(private readonly options: { exposeTracebacks: boolean }) {}

  catch(error: SnakepitError, _host: ArgumentsHost): Observable<never> {
    return throwError(() => toGrpcStatus(error, this.options));
  }
}

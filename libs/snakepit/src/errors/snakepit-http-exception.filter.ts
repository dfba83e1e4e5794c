import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { SnakepitError } from './snakepit-error';

/**
 * Answers a SnakepitError thrown in an HTTP handler with its status and the
 * structured body `{ error: { code, numericCode, message, details, python? } }`.
 */
@Catch(SnakepitError)
export class SnakepitHttpExceptionFilter implements ExceptionFilter<SnakepitError> {
  constructor(private readonly options: { exposeTracebacks: boolean }) {}

  catch(error: SnakepitError, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    if (response.headersSent) {
      response.end();
      return;
    }
    response.status(error.httpStatus).json(error.toBody(this.options));
  }
}

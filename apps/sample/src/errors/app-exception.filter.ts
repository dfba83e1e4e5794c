import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { SnakepitError, SnakepitExceptionFilter, type SnakepitExceptionFilterOptions } from '@snakepit/nestjs';
import type { Response } from 'express';
import type { Observable } from 'rxjs';

export const ERROR_BODY_OPTIONS = Symbol('ERROR_BODY_OPTIONS');

/**
 * Every error leaves the app structured: SnakepitErrors through the library's
 * filter, Nest's HttpExceptions (unknown route, ...) in the same body shape,
 * anything else as INTERNAL after being logged with its stack.
 */
@Catch()
export class AppExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('AppExceptionFilter');
  private readonly snakepit: SnakepitExceptionFilter;

  constructor(options: SnakepitExceptionFilterOptions) {
    this.snakepit = new SnakepitExceptionFilter(options);
  }

  catch(exception: unknown, host: ArgumentsHost): Observable<never> | void {
    if (exception instanceof SnakepitError) return this.snakepit.catch(exception, host);
    if (exception instanceof HttpException && host.getType() === 'http') {
      const status = exception.getStatus();
      host
        .switchToHttp()
        .getResponse<Response>()
        .status(status)
        .json({ error: { code: `HTTP_${status}`, numericCode: status, message: exception.message, details: {} } });
      return;
    }
    this.logger.error({ msg: 'unhandled error', err: exception instanceof Error ? { message: exception.message, stack: exception.stack } : exception });
    const internal = new SnakepitError('INTERNAL', 'Internal error', { details: {} });
    return this.snakepit.catch(internal, host);
  }
}

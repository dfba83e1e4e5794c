import { Catch, HttpException, HttpStatus, Logger, type ArgumentsHost, type ExceptionFilter, type HttpServer } from '@nestjs/common';
import { SnakepitError, SnakepitExceptionFilter, type SnakepitExceptionFilterOptions } from '@snakepit/nestjs';
import type { Observable } from 'rxjs';

export const ERROR_BODY_OPTIONS = Symbol('ERROR_BODY_OPTIONS');

export interface AppExceptionFilterOptions extends SnakepitExceptionFilterOptions {
  /** The HTTP body limit, named in PAYLOAD_TOO_LARGE answers. */
  bodyLimitBytes: number;
}

/**
 * Every error leaves the app structured: SnakepitErrors through the library's
 * filter, Nest's HttpExceptions (unknown route, ...) in the same body shape,
 * anything else as INTERNAL after being logged with its stack. Answers go
 * through the HTTP adapter, so the filter does not depend on the platform.
 */
@Catch()
export class AppExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('AppExceptionFilter');
  private readonly snakepit: SnakepitExceptionFilter;

  constructor(
    private readonly options: AppExceptionFilterOptions,
    private readonly httpAdapter: HttpServer,
  ) {
    this.snakepit = new SnakepitExceptionFilter(options, httpAdapter);
  }

  catch(exception: unknown, host: ArgumentsHost): Observable<never> | void {
    if (exception instanceof SnakepitError) return this.snakepit.catch(exception, host);
    if (exception instanceof HttpException && host.getType() === 'http') {
      const bodyError = this.requestBodyError(exception);
      if (bodyError) return this.snakepit.catch(bodyError, host);
      const status = exception.getStatus();
      const body = { error: { code: `HTTP_${status}`, numericCode: status, message: exception.message, details: {} } };
      this.httpAdapter.reply(host.switchToHttp().getResponse(), body, status);
      return;
    }
    this.logger.error({ msg: 'unhandled error', err: exception instanceof Error ? { message: exception.message, stack: exception.stack } : exception });
    const internal = new SnakepitError('INTERNAL', 'Internal error', { details: {} });
    return this.snakepit.catch(internal, host);
  }

  /**
   * The HTTP platform refuses a body before any handler runs (over the limit,
   * not JSON, an unsupported media type) and Nest hands that on as an
   * HttpException with the platform's status: answered as the API's codes.
   */
  private requestBodyError(exception: HttpException): SnakepitError | undefined {
    const { bodyLimitBytes } = this.options;
    // getStatus() is typed number; the platform's statuses are HttpStatus values.
    switch (exception.getStatus() as HttpStatus) {
      case HttpStatus.PAYLOAD_TOO_LARGE:
        return new SnakepitError('PAYLOAD_TOO_LARGE', `The request body exceeds ${bodyLimitBytes} bytes (BODY_LIMIT_BYTES)`, {
          details: { limitBytes: bodyLimitBytes, option: 'BODY_LIMIT_BYTES' },
        });
      case HttpStatus.BAD_REQUEST:
      case HttpStatus.UNSUPPORTED_MEDIA_TYPE:
        return new SnakepitError('INVALID_ARGUMENTS', `Bad request body: ${exception.message}`, { details: { field: 'body' } });
      default:
        return undefined;
    }
  }
}

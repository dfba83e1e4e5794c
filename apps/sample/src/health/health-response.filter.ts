import { Catch, ServiceUnavailableException, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';

/**
 * Answers a failed health check with Terminus' own body (`status`, `info`,
 * `error`, `details`) and 503, instead of the app's generic error shape, so
 * the failing indicator and its details reach the prober.
 */
@Catch(ServiceUnavailableException)
export class HealthResponseFilter implements ExceptionFilter<ServiceUnavailableException> {
  catch(exception: ServiceUnavailableException, host: ArgumentsHost): void {
    host.switchToHttp().getResponse<Response>().status(exception.getStatus()).json(exception.getResponse());
  }
}

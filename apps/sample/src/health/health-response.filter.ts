import { Catch, ServiceUnavailableException, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';

/**
 * Answers a failed health check with Terminus' own body (`status`, `info`,
 * `error`, `details`) and 503, instead of the app's generic error shape, so
 * the failing indicator and its details reach the prober.
 */
@Catch(ServiceUnavailableException)
export class HealthResponseFilter implements ExceptionFilter<ServiceUnavailableException> {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: ServiceUnavailableException, host: ArgumentsHost): void {
    this.adapterHost.httpAdapter.reply(host.switchToHttp().getResponse(), exception.getResponse(), exception.getStatus());
  }
}

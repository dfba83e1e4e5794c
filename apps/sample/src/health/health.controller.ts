import { Controller, Get, UseFilters } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { EventLoopHealthIndicator } from './event-loop.health';
import { HealthResponseFilter } from './health-response.filter';
import { Readiness } from './readiness';

/** Longest event-loop block between two liveness checks before the process counts as unhealthy. */
const MAX_BLOCKED_MS = 5_000;

/** Kubernetes-style probes: 200 when healthy, 503 with the failing indicators' details otherwise. */
@Controller('health')
@UseFilters(HealthResponseFilter)
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly eventLoop: EventLoopHealthIndicator,
    private readonly readiness: Readiness,
  ) {}

  /** The process is alive and its event loop is not stuck: a failure here warrants a restart. */
  @Get('live')
  @HealthCheck()
  live(): Promise<HealthCheckResult> {
    return this.health.check([() => this.eventLoop.check('event_loop', MAX_BLOCKED_MS)]);
  }

  /** The app can serve calls now: a failure here takes it out of load balancing, not a restart. */
  @Get('ready')
  @HealthCheck()
  ready(): Promise<HealthCheckResult> {
    return this.health.check(this.readiness.indicators);
  }
}

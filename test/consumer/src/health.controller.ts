import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { PoolsHealthIndicator, WorkersHealthIndicator } from '@snakepit/nestjs/health';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly pools: PoolsHealthIndicator,
    private readonly workers: WorkersHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.pools.isHealthy('pools'), () => this.workers.isHealthy('workers')]);
  }
}

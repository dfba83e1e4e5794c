import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorFunction } from '@nestjs/terminus';
import { PoolsHealthIndicator, SessionStoreHealthIndicator, WorkersHealthIndicator } from '@snakepit/nestjs/health';

/**
 * What "able to serve now" means for this app: not shutting down, every pool
 * serving (a ready worker, no crash loop, circuit not open), the session store
 * answering. GET /health/ready and the gRPC health status both follow it.
 */
@Injectable()
export class Readiness implements OnModuleDestroy {
  private stopping = false;

  readonly indicators: HealthIndicatorFunction[] = [
    () => this.lifecycle(),
    () => this.pools.isHealthy('pools'),
    () => this.workers.isHealthy('workers'),
    () => this.sessions.pingCheck('sessions'),
  ];

  constructor(
    private readonly health: HealthIndicatorService,
    private readonly pools: PoolsHealthIndicator,
    private readonly sessions: SessionStoreHealthIndicator,
    private readonly workers: WorkersHealthIndicator,
  ) {}

  /** Whether every indicator is up; quiet, unlike HealthCheckService, which logs each failure. */
  async isReady(): Promise<boolean> {
    // An indicator answers a result or a promise of one.
    const results = await Promise.all(this.indicators.map((indicator) => Promise.resolve(indicator())));
    return results.every((result) => Object.values(result).every((entry) => entry.status === 'up'));
  }

  /** The first shutdown hook: from here on the app drains and must receive no new traffic. */
  onModuleDestroy(): void {
    this.stopping = true;
  }

  private lifecycle() {
    const indicator = this.health.check('lifecycle');
    return this.stopping ? indicator.down({ message: 'shutting down' }) : indicator.up();
  }
}

import { Module } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { PoolService } from '../pool/pool.service';
import { PoolsHealthIndicator } from './pools.health';
import { SessionStoreHealthIndicator } from './sessions.health';
import { SNAKEPIT_WORKER_HEALTH_PROBE, WorkersHealthIndicator } from './workers.health';

/**
 * Terminus health indicators for Snakepit, to compose in the application's own
 * health controller. Opt-in (import it with `TerminusModule`, and
 * `SnakepitModule.forRoot({ isGlobal: true, ... })`); it does not import
 * TerminusModule itself, so the application keeps a single Terminus instance.
 */
@Module({
  providers: [
    HealthIndicatorService,
    PoolsHealthIndicator,
    SessionStoreHealthIndicator,
    WorkersHealthIndicator,
    { provide: SNAKEPIT_WORKER_HEALTH_PROBE, useExisting: PoolService },
  ],
  exports: [PoolsHealthIndicator, SessionStoreHealthIndicator, WorkersHealthIndicator],
})
export class SnakepitHealthModule {}

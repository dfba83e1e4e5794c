/** `@snakepit/nestjs/health`: needs the optional peer `@nestjs/terminus`. */
import { requirePeers } from '../options/optional-peers';

// Before the exports below load the peers, so a missing one is named with its install
// command (the build is CommonJS, which keeps this statement order).
requirePeers('@snakepit/nestjs/health', ['@nestjs/terminus']);

export { SnakepitHealthModule } from './snakepit-health.module';
export { PoolsHealthIndicator } from './pools.health';
export { SessionStoreHealthIndicator, type SessionStorePingOptions } from './sessions.health';
export {
  SNAKEPIT_WORKER_HEALTH_PROBE,
  WorkersHealthIndicator,
  type WorkerHealthCheck,
  type WorkerHealthProbe,
  type WorkersHealthOptions,
} from './workers.health';

/** `@snakepit/nestjs/health`: needs the optional peer `@nestjs/terminus`. */
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

/** `@snakepit/nestjs/metrics`: needs the optional peers `@willsoto/nestjs-prometheus` and `prom-client`. */
export { SnakepitMetricsModule } from './snakepit-metrics.module';
export { SNAKEPIT_METRICS } from './metric-providers';
export { UNKNOWN_LABEL } from './call-metrics';
export { CIRCUIT_STATE_VALUES } from './pool-state-metrics';

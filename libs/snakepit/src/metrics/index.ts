/** `@snakepit/nestjs/metrics`: needs the optional peers `@willsoto/nestjs-prometheus` and `prom-client`. */
import { requirePeers } from '../options/optional-peers';

// Before the exports below load the peers, so a missing one is named with its install
// command (the build is CommonJS, which keeps this statement order).
requirePeers('@snakepit/nestjs/metrics', ['@willsoto/nestjs-prometheus', 'prom-client']);

export { SnakepitMetricsModule } from './snakepit-metrics.module';
export { SNAKEPIT_METRICS } from './metric-providers';
export { UNKNOWN_LABEL } from './call-metrics';
export { CIRCUIT_STATE_VALUES } from './pool-state-metrics';

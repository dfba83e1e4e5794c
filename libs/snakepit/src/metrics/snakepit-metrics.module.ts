import { Module } from '@nestjs/common';
import { CallMetrics } from './call-metrics';
import { ClusterMetrics } from './cluster-metrics';
import { METRIC_PROVIDERS } from './metric-providers';
import { PoolStateMetrics } from './pool-state-metrics';
import { QueueMetrics } from './queue-metrics';
import { WorkerMetrics } from './worker-metrics';

/**
 * Snakepit's Prometheus metrics, fed from its telemetry events. Opt-in: import
 * it next to `PrometheusModule.register()` (which serves `/metrics`), with
 * `SnakepitModule.forRoot({ isGlobal: true, ... })`. The metrics live in
 * prom-client's default registry, like every `@willsoto/nestjs-prometheus`
 * metric, and can be injected with `@InjectMetric(SNAKEPIT_METRICS.calls)`.
 */
@Module({
  providers: [...METRIC_PROVIDERS, CallMetrics, QueueMetrics, WorkerMetrics, PoolStateMetrics, ClusterMetrics],
  exports: METRIC_PROVIDERS,
})
export class SnakepitMetricsModule {}

import { Injectable } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import type { Counter, Gauge, Histogram } from 'prom-client';
import { PoolService } from '../pool/pool.service';
import { TelemetryService } from '../telemetry/telemetry.service';
import { SNAKEPIT_METRICS } from './metric-providers';

/** Queue depth, time spent waiting and refusals, from the `pool.queue_*` events. */
@Injectable()
export class QueueMetrics {
  constructor(
    telemetry: TelemetryService,
    pools: PoolService,
    @InjectMetric(SNAKEPIT_METRICS.queueDepth) depth: Gauge<string>,
    @InjectMetric(SNAKEPIT_METRICS.queueWait) wait: Histogram<string>,
    @InjectMetric(SNAKEPIT_METRICS.queueFull) full: Counter<string>,
  ) {
    for (const pool of pools.poolNames()) depth.set({ pool }, 0);
    telemetry.handle({
      'pool.queue_enter': (data) => depth.set({ pool: data.pool }, data.depth),
      'pool.queue_leave': (data) => {
        depth.set({ pool: data.pool }, data.depth);
        wait.observe({ pool: data.pool, outcome: data.outcome }, data.waitMs / 1000);
      },
      'pool.queue_full': (data) => full.inc({ pool: data.pool }),
    });
  }
}

import { Injectable } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import type { Counter, Histogram } from 'prom-client';
import { PoolService } from '../pool/pool.service';
import { TelemetryService } from '../telemetry/telemetry.service';
import { SNAKEPIT_METRICS } from './metric-providers';

/** The label value standing for any pool or tool name a caller made up. */
export const UNKNOWN_LABEL = 'unknown';

/**
 * Calls by pool, tool and outcome, from `call.stop`. Only the pools and tools
 * the workers offer become label values: names come from callers, and a made-up
 * one per request would otherwise create a new time series each time.
 */
@Injectable()
export class CallMetrics {
  /** Pool name -> the tools its workers described; refreshed whenever a worker becomes ready. */
  private known = new Map<string, Set<string>>();

  constructor(
    telemetry: TelemetryService,
    private readonly pools: PoolService,
    @InjectMetric(SNAKEPIT_METRICS.calls) calls: Counter<string>,
    @InjectMetric(SNAKEPIT_METRICS.callDuration) duration: Histogram<string>,
  ) {
    telemetry.handle({
      'worker.ready': () => this.refreshKnownTools(),
      'call.stop': (data) => {
        const known = this.known.get(data.pool);
        const labels = {
          pool: known ? data.pool : UNKNOWN_LABEL,
          tool: known?.has(data.tool) ? data.tool : UNKNOWN_LABEL,
          outcome: data.outcome === 'ok' ? 'ok' : (data.errorCode ?? 'error'),
        };
        calls.inc(labels);
        duration.observe(labels, data.durationMs / 1000);
      },
    });
  }

  private refreshKnownTools(): void {
    this.known = new Map(this.pools.listTools().map((entry) => [entry.pool, new Set(entry.tools.map((tool) => tool.name))]));
  }
}

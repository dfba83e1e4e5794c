import { Injectable } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import type { Counter } from 'prom-client';
import { TelemetryService } from '../telemetry/telemetry.service';
import { SNAKEPIT_METRICS } from './metric-providers';

/** Cluster mode's security counters, from the `cluster.*` events; they stay at zero on a single node. */
@Injectable()
export class ClusterMetrics {
  constructor(
    telemetry: TelemetryService,
    @InjectMetric(SNAKEPIT_METRICS.clusterRecordsIgnored) recordsIgnored: Counter<string>,
    @InjectMetric(SNAKEPIT_METRICS.clusterCallsRefused) callsRefused: Counter<string>,
  ) {
    telemetry.handle({
      'cluster.record_ignored': (data) => recordsIgnored.inc({ reason: data.reason }),
      'cluster.call_refused': (data) => callsRefused.inc({ reason: data.reason }),
    });
  }
}

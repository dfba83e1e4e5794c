import { Injectable } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import type { Counter, Gauge } from 'prom-client';
import { TelemetryService } from '../telemetry/telemetry.service';
import { SNAKEPIT_METRICS } from './metric-providers';

/** Crashes, recycles, failed starts, missed heartbeats and memory of workers, from the `worker.*` events. */
@Injectable()
export class WorkerMetrics {
  constructor(
    telemetry: TelemetryService,
    @InjectMetric(SNAKEPIT_METRICS.workerCrashes) crashes: Counter<string>,
    @InjectMetric(SNAKEPIT_METRICS.workerRecycles) recycles: Counter<string>,
    @InjectMetric(SNAKEPIT_METRICS.workerStartFailures) startFailures: Counter<string>,
    @InjectMetric(SNAKEPIT_METRICS.heartbeatMissed) heartbeatMissed: Counter<string>,
    @InjectMetric(SNAKEPIT_METRICS.workerMemory) memory: Gauge<string>,
  ) {
    // A gone worker's memory series is dropped, so worker ids (new with every replacement) do not pile up.
    const forget = (data: { pool: string; workerId: string }) => memory.remove({ pool: data.pool, worker_id: data.workerId });
    telemetry.handle({
      'worker.crash': (data) => {
        crashes.inc({ pool: data.pool, reason: data.reason });
        forget(data);
      },
      'worker.stop': forget,
      'worker.recycled': (data) => recycles.inc({ pool: data.pool, reason: data.reason }),
      'worker.start_failed': (data) => startFailures.inc({ pool: data.pool }),
      'worker.heartbeat_missed': (data) => heartbeatMissed.inc({ pool: data.pool }),
      'worker.memory': (data) => memory.set({ pool: data.pool, worker_id: data.workerId }, data.rssBytes),
    });
  }
}

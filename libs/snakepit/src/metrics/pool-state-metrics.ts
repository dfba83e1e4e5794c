import { Injectable } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import type { Gauge } from 'prom-client';
import { PoolService } from '../pool/pool.service';
import { TelemetryService } from '../telemetry/telemetry.service';
import { SNAKEPIT_METRICS } from './metric-providers';

/** `snakepit_circuit_state` values, ordered by severity. */
export const CIRCUIT_STATE_VALUES = { closed: 0, half_open: 1, open: 2 } as const;

/** Each pool's circuit and crash-loop state, from the `circuit.*` and `pool.crash_loop*` events. */
@Injectable()
export class PoolStateMetrics {
  constructor(
    telemetry: TelemetryService,
    pools: PoolService,
    @InjectMetric(SNAKEPIT_METRICS.circuitState) circuit: Gauge<string>,
    @InjectMetric(SNAKEPIT_METRICS.crashLooping) crashLooping: Gauge<string>,
  ) {
    for (const pool of pools.poolNames()) {
      circuit.set({ pool }, CIRCUIT_STATE_VALUES.closed);
      crashLooping.set({ pool }, 0);
    }
    telemetry.handle({
      'circuit.closed': (data) => circuit.set({ pool: data.pool }, CIRCUIT_STATE_VALUES.closed),
      'circuit.half_open': (data) => circuit.set({ pool: data.pool }, CIRCUIT_STATE_VALUES.half_open),
      'circuit.opened': (data) => circuit.set({ pool: data.pool }, CIRCUIT_STATE_VALUES.open),
      'pool.crash_loop': (data) => crashLooping.set({ pool: data.pool }, 1),
      'pool.crash_loop_cleared': (data) => crashLooping.set({ pool: data.pool }, 0),
    });
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { PoolService } from '../pool/pool.service';

/** One worker's answer to a `grpc.health.v1.Health/Check` on its own socket. */
export interface WorkerHealthCheck {
  pool: string;
  workerId: string;
  pid: number;
  /** The serving status the worker answered (`SERVING` when healthy); absent when the check failed. */
  status?: string;
  /** Why the check failed: deadline exceeded, connection refused... */
  error?: string;
}

/**
 * Checks every live worker through the standard grpc.health.v1 protocol, over
 * the channel the host already holds to it and with the run's secret token
 * (workers refuse any RPC without it), so neither leaves the pool.
 */
export interface WorkerHealthProbe {
  checkWorkerHealth(timeoutMs: number): Promise<WorkerHealthCheck[]>;
}

/** Injection token of the WorkerHealthProbe (PoolService provides it). */
export const SNAKEPIT_WORKER_HEALTH_PROBE = Symbol('SNAKEPIT_WORKER_HEALTH_PROBE');

export interface WorkersHealthOptions {
  /** How long each worker may take to answer (default 1 000 ms). */
  timeoutMs?: number;
}

/**
 * Asks every worker whether it is SERVING (grpc.health.v1). Up while every pool
 * has at least one serving worker; workers that did not answer SERVING are
 * listed under `failing` either way.
 */
@Injectable()
export class WorkersHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly pools: PoolService,
    @Inject(SNAKEPIT_WORKER_HEALTH_PROBE) private readonly probe: WorkerHealthProbe,
  ) {}

  async isHealthy<const Key extends string>(key: Key, { timeoutMs = 1000 }: WorkersHealthOptions = {}) {
    const indicator = this.health.check(key);
    const checks = await this.probe.checkWorkerHealth(timeoutMs);
    const pools = Object.fromEntries(
      this.pools.poolNames().map((pool) => {
        const workers = checks.filter((check) => check.pool === pool);
        return [pool, { serving: workers.filter(isServing).length, workers: workers.length }];
      }),
    );
    const failing = checks.filter((check) => !isServing(check));
    const data: { pools: typeof pools; failing?: WorkerHealthCheck[] } = failing.length > 0 ? { pools, failing } : { pools };
    return Object.values(pools).every((pool) => pool.serving > 0) ? indicator.up(data) : indicator.down(data);
  }
}

function isServing(check: WorkerHealthCheck): boolean {
  return check.status === 'SERVING';
}

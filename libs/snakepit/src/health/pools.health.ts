import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { PoolService } from '../pool/pool.service';
import type { PoolInfo } from '../pool/worker-pool';

/**
 * Whether every pool can serve: it has a ready worker, is not crash-looping and
 * its circuit is not open. Reads the pools' own state, so it costs no I/O and
 * suits a readiness probe polled every few seconds.
 */
@Injectable()
export class PoolsHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly pools: PoolService,
  ) {}

  /** `up({ pools })`, or `down({ pools, failing: { <pool>: [problems] } })`. */
  isHealthy<const Key extends string>(key: Key) {
    const indicator = this.health.check(key);
    const infos = this.pools.poolInfo();
    const pools = Object.fromEntries(infos.map((info) => [info.name, summary(info)]));
    const failing = Object.fromEntries(infos.map((info): [string, string[]] => [info.name, problems(info)]).filter(([, found]) => found.length > 0));
    return Object.keys(failing).length === 0 ? indicator.up({ pools }) : indicator.down({ pools, failing });
  }
}

function summary(info: PoolInfo) {
  return {
    ready: info.ready,
    size: info.size,
    busy: info.busy,
    queueDepth: info.queueDepth,
    circuit: info.circuit,
    crashLooping: info.crashLooping,
  };
}

function problems(info: PoolInfo): string[] {
  const found: string[] = [];
  if (info.ready === 0) found.push('no ready worker');
  if (info.crashLooping) found.push('crash-looping');
  if (info.circuit === 'open') found.push('circuit open');
  return found;
}

import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * Liveness beyond "it answered": the longest the event loop was blocked since
 * the previous check. A process that keeps blocking for seconds (a synchronous
 * loop, a deadlock between callbacks) is down and worth restarting; a stuck one
 * does not answer at all, which the probe's timeout reports.
 */
@Injectable()
export class EventLoopHealthIndicator implements OnModuleDestroy {
  private readonly delay = monitorEventLoopDelay({ resolution: 20 });

  constructor(private readonly health: HealthIndicatorService) {
    this.delay.enable();
  }

  check<const Key extends string>(key: Key, maxBlockedMs: number) {
    const blockedMs = Math.round(this.delay.max / 1e6);
    this.delay.reset();
    const indicator = this.health.check(key);
    return blockedMs > maxBlockedMs ? indicator.down({ blockedMs, maxBlockedMs }) : indicator.up({ blockedMs });
  }

  onModuleDestroy(): void {
    this.delay.disable();
  }
}

import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { SessionService } from '../session/session.service';

export interface SessionStorePingOptions {
  /** How long the store may take to answer (default 1 000 ms). */
  timeoutMs?: number;
}

/** Whether the session store answers a ping in time (a distributed store may be unreachable). */
@Injectable()
export class SessionStoreHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly sessions: SessionService,
  ) {}

  async pingCheck<const Key extends string>(key: Key, { timeoutMs = 1000 }: SessionStorePingOptions = {}) {
    const indicator = this.health.check(key);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the session store did not answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.sessions.ping(), timeout]);
      return indicator.up();
    } catch (error) {
      return indicator.down({ message: (error as Error).message });
    } finally {
      clearTimeout(timer);
    }
  }
}

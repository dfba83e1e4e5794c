import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import { Readiness } from './readiness';

/** The services the app's gRPC port reports on: the server as a whole ('') and the public API. */
const SERVICES = ['', 'snakepit.v1.Snakepit'];
/** How often readiness is re-evaluated for gRPC health clients (they cannot ask Terminus). */
const PUBLISH_INTERVAL_MS = 2_000;

/**
 * Serves `grpc.health.v1.Health` on the app's gRPC port with the same verdict
 * as GET /health/ready: SERVING while ready, NOT_SERVING otherwise and from
 * the first moment of shutdown, so load balancers stop routing before the drain.
 */
@Injectable()
export class GrpcHealthPublisher implements OnModuleDestroy {
  private readonly health = new HealthImplementation(Object.fromEntries(SERVICES.map((service) => [service, 'NOT_SERVING'])));
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly readiness: Readiness) {}

  addToServer(server: Parameters<HealthImplementation['addToServer']>[0]): void {
    this.health.addToServer(server);
  }

  /** Publishes readiness now, then on an interval until shutdown. */
  async start(): Promise<void> {
    this.timer = setInterval(() => void this.publish(), PUBLISH_INTERVAL_MS).unref();
    await this.publish();
  }

  onModuleDestroy(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.setStatus('NOT_SERVING');
  }

  private async publish(): Promise<void> {
    const ready = await this.readiness.isReady().catch(() => false);
    // A check that began before shutdown must not flip the status back.
    if (!this.stopped) this.setStatus(ready ? 'SERVING' : 'NOT_SERVING');
  }

  private setStatus(status: ServingStatus): void {
    for (const service of SERVICES) this.health.setStatus(service, status);
  }
}

import { Injectable, Logger } from '@nestjs/common';
import { filter, Subject, type Observable, type Subscription } from 'rxjs';
import type { TelemetryEvent, TelemetryEventMap, TelemetryEventName, TelemetryHandlers } from './telemetry-events';

/**
 * One typed stream of Snakepit lifecycle events; subscribe to build metrics,
 * logs or alerts. The stream never completes: the shutdown's own events
 * (drained calls, `worker.stop`) come after Nest's first shutdown hook, and
 * subscribers go away with the application.
 */
@Injectable()
export class TelemetryService {
  private readonly logger = new Logger('Snakepit');
  private readonly subject = new Subject<TelemetryEvent>();
  /** Every event, as it happens. */
  readonly events$: Observable<TelemetryEvent> = this.subject.asObservable();

  emit<N extends TelemetryEventName>(name: N, data: TelemetryEventMap[N]): void {
    if (this.subject.observed) this.subject.next({ name, time: Date.now(), data } as TelemetryEvent);
  }

  /** Events with one of the given names, typed by name. */
  on<N extends TelemetryEventName>(...names: N[]): Observable<TelemetryEvent<N>> {
    const wanted = new Set<string>(names);
    return this.events$.pipe(filter((event) => wanted.has(event.name))) as unknown as Observable<TelemetryEvent<N>>;
  }

  /**
   * Runs each handler with its event's payload, synchronously, as the event is
   * emitted. A handler that throws is logged and skipped: handlers run inside
   * the pool's own code, and RxJS would rethrow their errors on a timer, which
   * would bring the whole process down.
   */
  handle(handlers: TelemetryHandlers): Subscription {
    const names = Object.keys(handlers) as TelemetryEventName[];
    return this.on(...names).subscribe((event) => {
      const handler = handlers[event.name] as (data: TelemetryEvent['data']) => void;
      try {
        handler(event.data);
      } catch (error) {
        this.logger.error({ msg: 'telemetry handler failed', event: event.name, error: (error as Error).message });
      }
    });
  }
}

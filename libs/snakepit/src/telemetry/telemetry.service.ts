import { Injectable } from '@nestjs/common';
import { filter, Subject, Subscription, type Observable } from 'rxjs';
import type { TelemetryEvent, TelemetryEventMap, TelemetryEventName, TelemetryHandlers } from './telemetry-events';
import { SnakepitLogger } from '../logging/snakepit-logger';

/**
 * One typed stream of Snakepit lifecycle events; subscribe to build metrics,
 * logs or alerts. The stream never completes: the shutdown's own events
 * (drained calls, `worker.stop`) come after Nest's first shutdown hook, and
 * subscribers go away with the application.
 */
@Injectable()
export class TelemetryService {
  private readonly logger = new SnakepitLogger('Snakepit');
  private readonly subject = new Subject<TelemetryEvent>();
  /**
   * `handle()` handlers by event name: an event reaches only its own handlers,
   * instead of passing every subscriber's filter (several events per call, and
   * the metrics module alone registers four handler sets).
   */
  private readonly handlers = new Map<TelemetryEventName, Array<(data: TelemetryEvent['data']) => void>>();
  /** Every event, as it happens. */
  readonly events$: Observable<TelemetryEvent> = this.subject.asObservable();

  emit<N extends TelemetryEventName>(name: N, data: TelemetryEventMap[N]): void {
    const handlers = this.handlers.get(name);
    if (handlers) for (const handler of handlers) this.run(handler, name, data);
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
    const entries = Object.entries(handlers) as Array<[TelemetryEventName, (data: TelemetryEvent['data']) => void]>;
    for (const [name, handler] of entries) this.handlers.set(name, [...(this.handlers.get(name) ?? []), handler]);
    return new Subscription(() => {
      for (const [name, handler] of entries) {
        const remaining = (this.handlers.get(name) ?? []).filter((registered) => registered !== handler);
        if (remaining.length > 0) this.handlers.set(name, remaining);
        else this.handlers.delete(name);
      }
    });
  }

  private run(handler: (data: TelemetryEvent['data']) => void, name: TelemetryEventName, data: TelemetryEvent['data']): void {
    try {
      handler(data);
    } catch (error) {
      this.logger.error({ msg: 'telemetry handler failed', event: name, error: (error as Error).message });
    }
  }
}

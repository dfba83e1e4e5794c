import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { filter, Subject, type Observable } from 'rxjs';
import type { TelemetryEvent, TelemetryEventMap, TelemetryEventName } from './telemetry-events';

/** One typed stream of Snakepit lifecycle events; subscribe to build metrics, logs or alerts. */
@Injectable()
export class TelemetryService implements OnModuleDestroy {
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

  onModuleDestroy(): void {
    this.subject.complete();
  }
}

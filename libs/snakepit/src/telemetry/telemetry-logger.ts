import { Inject, Injectable } from '@nestjs/common';
import { isSpanContextValid, trace } from '@opentelemetry/api';
import type { TelemetryEventMap, TelemetryEventName } from './telemetry-events';
import type { ResolvedOptions } from '../options/resolve-options';
import { SNAKEPIT_RESOLVED_OPTIONS } from '../options/tokens';
import { TelemetryService } from './telemetry.service';
import { SnakepitLogger } from '../logging/snakepit-logger';

type LogLevel = 'debug' | 'log' | 'warn' | 'error';

/**
 * The events logged from telemetry, at their level. Lines with more context
 * than an event carries (a crash's exit status is in the event, but a failed
 * start's output is not) are written by the pool itself; the two never log
 * the same event. Per-call lines are debug: at info the library stays quiet.
 */
const TELEMETRY_LOG_LINES: Partial<Record<TelemetryEventName, { level: LogLevel; msg: string }>> = {
  'call.stop': { level: 'debug', msg: 'call finished' },
  'pool.queue_full': { level: 'debug', msg: 'queue full: call refused' },
  'worker.stop': { level: 'debug', msg: 'worker stopped' },
  'worker.restart_scheduled': { level: 'debug', msg: 'worker replacement scheduled' },
  'worker.recycled': { level: 'log', msg: 'worker recycled: its replacement serves, it finishes its calls and stops' },
  'circuit.half_open': { level: 'log', msg: 'circuit half-open: one probe call goes through' },
  'session.created': { level: 'debug', msg: 'session created' },
  'session.expired': { level: 'debug', msg: 'session expired' },
  'session.deleted': { level: 'debug', msg: 'session deleted' },
};

/**
 * Writes Snakepit's telemetry events to the application's logger (pino through
 * nestjs-pino in the sample app) as structured lines: the payload's fields as
 * snake_case keys (`worker_id`, `duration_ms`, `error_code`...), plus
 * `trace_id`/`span_id` when the event happens inside a recorded span.
 */
@Injectable()
export class TelemetryLogger {
  private readonly logger = new SnakepitLogger('Snakepit');

  constructor(telemetry: TelemetryService, @Inject(SNAKEPIT_RESOLVED_OPTIONS) options: ResolvedOptions) {
    const handlers: Record<string, (data: TelemetryEventMap[TelemetryEventName]) => void> = {};
    for (const [name, line] of Object.entries(TELEMETRY_LOG_LINES)) {
      // The per-call line is built for every call whatever the logger then keeps: only when asked for.
      if (name === 'call.stop' && !options.logCalls) continue;
      handlers[name] = (data) => this.logger[line.level]({ msg: line.msg, ...logFields(data), ...traceFields() });
    }
    telemetry.handle(handlers);
  }
}

/** Payload keys in snake_case, converted once each: this runs for every call, even when debug is off. */
const snakeCaseKeys = new Map<string, string>();

/** An event payload as log fields: camelCase keys become snake_case, absent values are left out. */
function logFields(data: object): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    if (value === undefined) continue;
    let field = snakeCaseKeys.get(key);
    if (field === undefined) {
      field = key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
      snakeCaseKeys.set(key, field);
    }
    fields[field] = value;
  }
  return fields;
}

function traceFields(): { trace_id?: string; span_id?: string } {
  const spanContext = trace.getActiveSpan()?.spanContext();
  return spanContext && isSpanContextValid(spanContext) ? { trace_id: spanContext.traceId, span_id: spanContext.spanId } : {};
}

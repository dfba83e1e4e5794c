import { context, isSpanContextValid, propagation, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';
import { SnakepitError } from '../errors/snakepit-error';

/** The instrumentation scope of Snakepit's spans. */
export const TRACER_NAME = '@snakepit/nestjs';

/** What a call is, as known before it runs. */
export interface TracedCall {
  pool: string;
  tool: string;
  sessionId?: string;
  stream: boolean;
  /** The caller's metadata for the tool; the trace context is added to a copy of it. */
  metadata?: Record<string, string>;
}

/** Where a call ran, as its result tells. */
export interface CallPlacement {
  workerId: string;
  pid: number;
}

/**
 * One span per call through `@opentelemetry/api`: a no-op until the
 * application registers an OpenTelemetry SDK. The span's context travels to the
 * worker in the call's metadata (`traceparent`/`tracestate` with the usual W3C
 * propagator), so a Python tool can continue the trace from `ctx.metadata`.
 */
export class CallTracer {
  // A proxy tracer: it starts recording once an SDK registers, even if that happens later.
  private readonly tracer = trace.getTracer(TRACER_NAME);

  /**
   * Runs `run` inside the call's span, handing it the metadata to send to the
   * worker. The span ends when `run` settles and records where the call ran,
   * or its error code and message.
   */
  trace<T extends CallPlacement>(call: TracedCall, run: (metadata: Record<string, string>) => Promise<T>): Promise<T> {
    const attributes: Attributes = { 'snakepit.pool': call.pool, 'snakepit.tool': call.tool, 'snakepit.stream': call.stream };
    if (call.sessionId) attributes['snakepit.session_id'] = call.sessionId;
    const span = this.tracer.startSpan(`snakepit.execute ${call.tool}`, { kind: SpanKind.CLIENT, attributes });
    // Without an SDK (and no trace to continue) the span records nothing and has
    // nothing to propagate: the call runs without the context bookkeeping.
    if (!span.isRecording() && !isSpanContextValid(span.spanContext())) return run(call.metadata ?? {});
    return context.with(trace.setSpan(context.active(), span), async () => {
      const metadata = { ...call.metadata };
      // From the span itself, not context.active(): without a context manager the latter is always empty.
      propagation.inject(trace.setSpan(context.active(), span), metadata);
      try {
        const result = await run(metadata);
        span.setAttributes(placementAttributes(result));
        return result;
      } catch (error) {
        recordFailure(span, error);
        throw error;
      } finally {
        span.end();
      }
    });
  }
}

function placementAttributes(placement: { workerId?: unknown; pid?: unknown }): Attributes {
  const attributes: Attributes = {};
  if (typeof placement.workerId === 'string') attributes['snakepit.worker_id'] = placement.workerId;
  if (typeof placement.pid === 'number') attributes['snakepit.worker_pid'] = placement.pid;
  return attributes;
}

function recordFailure(span: Span, error: unknown): void {
  const failure = error instanceof Error ? error : new Error(String(error));
  span.recordException(failure);
  span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
  if (error instanceof SnakepitError) {
    // `error.type` is OpenTelemetry's attribute for a low-cardinality failure class.
    span.setAttributes({ 'error.type': error.code, ...placementAttributes(error.details) });
    if (error.python) span.setAttribute('snakepit.python.exception_type', error.python.type);
  }
}

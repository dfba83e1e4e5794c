import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { SnakepitError } from '../errors/snakepit-error';
import { CallTracer, TRACER_NAME } from './call-tracer';

const placement = { workerId: 'default-1', pid: 4242 };

describe('CallTracer without an OpenTelemetry SDK', () => {
  it('runs the call and adds nothing to its metadata', async () => {
    const seen: Array<Record<string, string>> = [];
    const result = await new CallTracer().trace({ pool: 'default', tool: 'add', stream: false, metadata: { a: 'b' } }, (metadata) => {
      seen.push(metadata);
      return Promise.resolve({ ...placement, value: 3 });
    });
    expect(result.value).toBe(3);
    expect(seen).toEqual([{ a: 'b' }]);
  });

  it("still hands on a caller's trace it continues (propagation without a tracer SDK)", async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    try {
      const parent = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 };
      let sent: Record<string, string> = {};
      await context.with(trace.setSpanContext(context.active(), parent), () =>
        new CallTracer().trace({ pool: 'default', tool: 'add', stream: false }, (metadata) => {
          sent = metadata;
          return Promise.resolve(placement);
        }),
      );
      expect(sent.traceparent).toBe(`00-${parent.traceId}-${parent.spanId}-01`);
    } finally {
      propagation.disable();
      context.disable();
    }
  });
});

describe('CallTracer with an OpenTelemetry SDK', () => {
  const exporter = new InMemorySpanExporter();
  const contextManager = new AsyncLocalStorageContextManager();
  // Created before the SDK registers, as PoolService's is: the proxy tracer must pick the SDK up.
  const tracer = new CallTracer();

  beforeAll(() => {
    context.setGlobalContextManager(contextManager.enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  });

  afterEach(() => exporter.reset());

  afterAll(() => {
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it('records one client span per call, with where it ran', async () => {
    await tracer.trace({ pool: 'default', tool: 'add', sessionId: 'sess_1', stream: false }, () => Promise.resolve(placement));
    const [span] = exporter.getFinishedSpans();
    expect(span.name).toBe('snakepit.execute add');
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.instrumentationScope.name).toBe(TRACER_NAME);
    expect(span.attributes).toEqual({
      'snakepit.pool': 'default',
      'snakepit.tool': 'add',
      'snakepit.stream': false,
      'snakepit.session_id': 'sess_1',
      'snakepit.worker_id': 'default-1',
      'snakepit.worker_pid': 4242,
    });
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("sends the span's W3C trace context to the worker, keeping the caller's metadata", async () => {
    let sent: Record<string, string> = {};
    await tracer.trace({ pool: 'default', tool: 'add', stream: false, metadata: { 'x-request-id': 'r1' } }, (metadata) => {
      sent = metadata;
      return Promise.resolve(placement);
    });
    const { traceId, spanId } = exporter.getFinishedSpans()[0].spanContext();
    expect(sent['x-request-id']).toBe('r1');
    expect(sent.traceparent).toBe(`00-${traceId}-${spanId}-01`);
  });

  it("joins the caller's trace", async () => {
    const parent = trace.getTracer('test').startSpan('POST /api/execute');
    await context.with(trace.setSpan(context.active(), parent), () =>
      tracer.trace({ pool: 'default', tool: 'add', stream: false }, () => Promise.resolve(placement)),
    );
    parent.end();
    const [call] = exporter.getFinishedSpans();
    expect(call.spanContext().traceId).toBe(parent.spanContext().traceId);
    expect(call.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
  });

  it('marks a failed call as an error with its code, worker and Python exception type', async () => {
    const failure = new SnakepitError('PYTHON_EXCEPTION', 'ValueError: boom', {
      details: { workerId: 'default-2', pid: 7 },
      python: { type: 'ValueError', message: 'boom', traceback: '', chain: [] },
    });
    await expect(tracer.trace({ pool: 'default', tool: 'fail', stream: false }, () => Promise.reject(failure))).rejects.toBe(failure);
    const [span] = exporter.getFinishedSpans();
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'ValueError: boom' });
    expect(span.attributes).toMatchObject({
      'error.type': 'PYTHON_EXCEPTION',
      'snakepit.worker_id': 'default-2',
      'snakepit.worker_pid': 7,
      'snakepit.python.exception_type': 'ValueError',
    });
    expect(span.events.map((event) => event.name)).toEqual(['exception']);
  });
});

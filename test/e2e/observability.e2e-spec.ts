import type { SnakepitErrorBody } from '@snakepit/nestjs';
import { HealthClient } from '../helpers/health-client';
import { eventually, startSampleApp, type HealthBody, type SampleApp } from '../helpers/sample-app';

jest.setTimeout(90_000);

/**
 * What an operator sees of a live deployment, black-box against the built
 * sample app with real Python workers: GET /metrics, GET /health/{live,ready},
 * grpc.health.v1 on the gRPC port, and the JSON log lines on stdout.
 */

type Labels = Record<string, string>;

/** A sample of Prometheus' text format, or undefined when the series is absent. */
function metric(text: string, name: string, labels: Labels = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map(([, key, value]) => [key, value]));
    if (Object.keys(found).length === Object.keys(labels).length && Object.entries(labels).every(([key, value]) => found[key] === value)) {
      return Number(match[3]);
    }
  }
  return undefined;
}

async function scrape(app: SampleApp): Promise<string> {
  const response = await app.request('GET', '/metrics');
  expect(response.status).toBe(200);
  return response.text;
}

/** The app's log lines that are JSON objects (pino writes one per line). */
function jsonLogs(app: SampleApp): Array<Record<string, unknown>> {
  return app.logs.flatMap((line): Array<Record<string, unknown>> => {
    try {
      const parsed: unknown = JSON.parse(line);
      return parsed && typeof parsed === 'object' ? [parsed as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });
}

const readyWorker = (app: SampleApp) => eventually(async () => (await app.workers()).find((w) => w.state === 'ready'));
const busyWorker = (app: SampleApp) => eventually(async () => (await app.workers()).find((w) => w.busy > 0));

/** Waits until GET /health/ready answers `status` (and, if given, `when` holds of its body), and returns that answer. */
const readiness = (app: SampleApp, status: number, timeoutMs?: number, when: (body: HealthBody) => boolean | undefined = () => true) =>
  eventually(async () => {
    const response = await app.request<HealthBody>('GET', '/health/ready');
    return response.status === status && when(response.body) ? response : undefined;
  }, timeoutMs);

/** Waits until the gRPC port's grpc.health.v1 status for the whole server is `status`. */
const grpcStatus = (client: HealthClient, status: string) => eventually(async () => ((await client.check('')) === status ? status : undefined));

describe('observability: metrics, health and logs of the sample app', () => {
  let app: SampleApp;
  let grpcHealth: HealthClient;

  beforeAll(async () => {
    // One worker and a queue of one, so two calls fill the pool and a third overflows.
    app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1', SNAKEPIT_MAX_QUEUE: '1', LOG_LEVEL: 'debug' });
    grpcHealth = new HealthClient(app.grpcAddress);
  });

  afterAll(async () => {
    grpcHealth?.close();
    await app?.stop();
  });

  it('answers the liveness and readiness probes with what they checked', async () => {
    const live = await app.request('GET', '/health/live');
    expect(live.status).toBe(200);
    expect(live.body).toMatchObject({ status: 'ok', info: { event_loop: { status: 'up' } } });
    const ready = await app.request<HealthBody>('GET', '/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.info).toMatchObject({
      lifecycle: { status: 'up' },
      pools: { status: 'up', pools: { default: { ready: 1, size: 1, circuit: 'closed', crashLooping: false } } },
      sessions: { status: 'up' },
    });
    expect(await grpcHealth.check('')).toBe('SERVING');
    expect(await grpcHealth.check('snakepit.v1.Snakepit')).toBe('SERVING');
  });

  it('serves Prometheus metrics that move with every call', async () => {
    const response = await app.request('GET', '/metrics');
    expect(response.headers.get('content-type')).toContain('text/plain');
    const ok = { pool: 'default', tool: 'add', outcome: 'ok' };
    const before = metric(response.text, 'snakepit_calls_total', ok) ?? 0;
    expect((await app.execute('add', { a: 1, b: 2 })).status).toBe(200);
    expect((await app.execute('no_such_tool')).status).toBe(404);
    const after = await scrape(app);
    expect(metric(after, 'snakepit_calls_total', ok)).toBe(before + 1);
    expect(metric(after, 'snakepit_call_duration_seconds_count', ok)).toBe(before + 1);
    expect(metric(after, 'snakepit_calls_total', { pool: 'default', tool: 'unknown', outcome: 'TOOL_NOT_FOUND' })).toBe(1);
    expect(metric(after, 'snakepit_workers', { pool: 'default', state: 'idle' })).toBe(1);
    expect(metric(after, 'snakepit_circuit_state', { pool: 'default' })).toBe(0);
    expect(metric(after, 'snakepit_sessions_active')).toBe(0);
    expect(metric(after, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });

  it('counts a crashed worker by reason and logs the crash with the worker context', async () => {
    const worker = await readyWorker(app);
    const crashed = await app.execute<SnakepitErrorBody>('crash');
    expect(crashed.status).toBe(502);
    expect(crashed.body.error.code).toBe('WORKER_CRASHED');
    const text = await eventually(async () => {
      const scraped = await scrape(app);
      return metric(scraped, 'snakepit_worker_crashes_total', { pool: 'default', reason: 'exit' }) === 1 ? scraped : undefined;
    });
    expect(metric(text, 'snakepit_calls_total', { pool: 'default', tool: 'crash', outcome: 'WORKER_CRASHED' })).toBe(1);
    expect(metric(text, 'snakepit_worker_memory_bytes', { pool: 'default', worker_id: worker.id })).toBeUndefined();
    const crashLine = jsonLogs(app).find((line) => line.level === 50 && line.worker_id === worker.id);
    expect(crashLine).toMatchObject({ context: 'Snakepit', pool: 'default', pid: worker.pid, reason: 'exit', exit_code: 1 });
    await readyWorker(app);
  });

  it('refuses a call beyond the queue with 429 and counts it', async () => {
    await readyWorker(app);
    const running = app.execute('sleep', { ms: 1500 });
    await busyWorker(app);
    const queued = app.execute('sleep', { ms: 10 });
    await eventually(async () => (metric(await scrape(app), 'snakepit_queue_depth', { pool: 'default' }) === 1 ? true : undefined));
    const refused = await app.execute<SnakepitErrorBody>('ping');
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('QUEUE_FULL');
    expect([(await running).status, (await queued).status]).toEqual([200, 200]);
    const text = await scrape(app);
    expect(metric(text, 'snakepit_queue_full_total', { pool: 'default' })).toBe(1);
    expect(metric(text, 'snakepit_queue_depth', { pool: 'default' })).toBe(0);
    expect(metric(text, 'snakepit_queue_wait_seconds_count', { pool: 'default', outcome: 'dispatched' })).toBe(1);
  });

  it("relays the worker's own log lines with its context, at the level Python chose", async () => {
    const worker = await readyWorker(app);
    const started = jsonLogs(app).find((line) => line.stream === 'stderr' && line.msg === 'worker ready' && line.worker_id === worker.id);
    expect(started).toMatchObject({ level: 30, python_level: 'info', context: 'Snakepit', pool: 'default', pid: worker.pid, logger: 'snakepit.worker' });
    expect(started?.adapter).toContain('ShowcaseAdapter');
    expect((await app.execute('noisy', { text: 'printed by a tool' })).status).toBe(200);
    const printed = await eventually(() => jsonLogs(app).find((line) => line.msg === 'printed by a tool'));
    expect(printed).toMatchObject({ level: 30, stream: 'stdout', pool: 'default', worker_id: worker.id, pid: worker.pid });
  });

  it('logs every call at debug with its context and the HTTP request id', async () => {
    const { body } = await app.execute('add', { a: 2, b: 2 });
    const line = await eventually(() =>
      jsonLogs(app).find((entry) => entry.msg === 'call finished' && entry.tool === 'add' && entry.worker_id === body.workerId),
    );
    expect(line).toMatchObject({ level: 20, context: 'Snakepit', pool: 'default', outcome: 'ok' });
    // Fastify's request id, which pino-http adopts for the request's logger.
    expect(line.reqId).toMatch(/^req-[0-9a-z]+$/);
    expect(typeof line.duration_ms).toBe('number');
  });

  it('stops being ready the moment shutdown starts, while running calls drain', async () => {
    await readyWorker(app);
    const draining = app.execute('sleep', { ms: 3000 });
    await busyWorker(app);
    app.child.kill('SIGTERM');
    const notReady = await readiness(app, 503);
    // Whichever notices first: Terminus's own shutdown flag, or the app's lifecycle indicator.
    const shuttingDown = notReady.body.status === 'shutting_down' || notReady.body.error?.lifecycle?.message === 'shutting down';
    expect(shuttingDown).toBe(true);
    expect(await grpcHealth.check('')).toBe('NOT_SERVING');
    expect((await draining).status).toBe(200);
    await app.stop();
    // Telemetry keeps flowing through the shutdown: the worker's stop is still logged.
    expect(jsonLogs(app).find((line) => line.msg === 'worker stopped')).toMatchObject({ pool: 'default', reason: 'shutdown' });
  });
});

describe('observability: readiness through a crash loop', () => {
  let app: SampleApp;

  beforeAll(async () => {
    // Two deaths before a first answer make a crash loop; restarts then slow to one per cooldown.
    app = await startSampleApp({
      SNAKEPIT_POOL_SIZE: '1',
      SNAKEPIT_CRASH_LOOP_THRESHOLD: '2',
      SNAKEPIT_CRASH_LOOP_COOLDOWN_MS: '5000',
    });
  });

  afterAll(async () => {
    await app?.stop();
  });

  it('turns 503 while every worker of the pool crash-loops, and 200 again when it recovers', async () => {
    const grpcHealth = new HealthClient(app.grpcAddress);
    try {
      for (let crash = 0; crash < 2; crash++) {
        await readyWorker(app);
        expect((await app.execute('crash')).status).toBe(502);
      }
      // The pool notices the crash loop when the worker's exit is reported, a moment after the call failed.
      const down = await readiness(app, 503, undefined, (body) => body.error?.pools?.failing?.default?.includes('crash-looping'));
      expect(down.body.error?.pools).toMatchObject({ status: 'down', failing: { default: ['no ready worker', 'crash-looping'] } });
      expect(metric(await scrape(app), 'snakepit_pool_crash_looping', { pool: 'default' })).toBe(1);
      await grpcStatus(grpcHealth, 'NOT_SERVING');

      const up = await readiness(app, 200, 30_000);
      expect(up.body.info?.pools?.pools?.default).toMatchObject({ ready: 1, crashLooping: false });
      expect(metric(await scrape(app), 'snakepit_pool_crash_looping', { pool: 'default' })).toBe(0);
      expect(metric(await scrape(app), 'snakepit_worker_crashes_total', { pool: 'default', reason: 'exit' })).toBe(2);
      await grpcStatus(grpcHealth, 'SERVING');
    } finally {
      grpcHealth.close();
    }
  });
});

import { expect } from '@jest/globals';
import type { SessionInfo, SnakepitErrorBody } from '@snakepit/nestjs';
import {
  eventually,
  isAlive,
  parseSse,
  sleep,
  workerPids,
  type ExecuteOutcome,
  type HealthBody,
  type JsonResponse,
  type SampleApp,
  type ToolList,
} from '../helpers/sample-app';
import { ClusterNodes, HEARTBEAT_MS, NODE_TTL_MS } from './cluster-nodes';
import { RedisServer } from './redis-server';

jest.setTimeout(60_000);

// The test clusters' short failure-detection window keeps the suite quick; production defaults are 1 s / 3 s.
/** The detection window (deadline + the next sync of a surviving node), with room for a loaded 2-core machine. */
const DETECTION_WINDOW_MS = NODE_TTL_MS + 2 * HEARTBEAT_MS + 3_000;

/**
 * Three sample-app nodes on one real redis-server, on loopback:
 *   node-a: default:1     node-b: default:1, batch:1     node-c: inference:1
 * The destructive cases (a fourth node stopping, SIGKILL of node-b, the Redis outage) run last.
 */
describe('cluster mode (three nodes, one Redis)', () => {
  let redis: RedisServer;
  let a: SampleApp;
  let b: SampleApp;
  let c: SampleApp;
  const nodes = new ClusterNodes(() => redis.url);
  const node = (nodeId: string, pools: string) => nodes.start(nodeId, pools);

  async function toolsOf(app: SampleApp): Promise<Record<string, string[]>> {
    const { body } = await app.request<ToolList>('GET', '/api/tools');
    // Cluster mode lists the nodes that serve each pool.
    const pools = body.pools.map((p): [string, string[]] => [p.pool, p.nodes!]);
    return Object.fromEntries(pools.sort(([x], [y]) => x.localeCompare(y)));
  }

  async function createSession(app: SampleApp): Promise<string> {
    const created = await app.request<SessionInfo>('POST', '/api/sessions', { ttlSeconds: 600 });
    expect(created.status).toBe(201);
    return created.body.sessionId;
  }

  const put = (app: SampleApp, sessionId: string, key: string, value: unknown, pool = 'default') =>
    app.execute<ExecuteOutcome>('session_put', { key, value }, { sessionId, pool });

  beforeAll(async () => {
    redis = await RedisServer.start();
    [a, b, c] = await Promise.all([node('node-a', 'default:1'), node('node-b', 'default:1,batch:1'), node('node-c', 'inference:1')]);
    const complete = JSON.stringify({ batch: ['node-b'], default: ['node-a', 'node-b'], inference: ['node-c'] });
    for (const app of [a, b, c]) {
      await eventually(async () => (JSON.stringify(await toolsOf(app)) === complete ? true : undefined), 30_000).catch((error: Error) => {
        throw new Error(`the cluster did not form: ${error.message}\n${app.logs.slice(-20).join('\n')}`);
      });
    }
  }, 120_000);

  afterAll(async () => {
    await nodes.stopAll();
    await redis?.dispose();
  });

  it('lists every pool of the cluster on every node, with the nodes that serve it', async () => {
    const { body } = await c.request<ToolList>('GET', '/api/tools');
    const inference = body.pools.find((p) => p.pool === 'inference');
    const onA = (await a.request<ToolList>('GET', '/api/tools')).body.pools.find((p) => p.pool === 'inference');
    expect(onA).toEqual(inference);
    expect(onA?.tools.map((t) => t.name)).toEqual(expect.arrayContaining(['add', 'count', 'fail', 'session_put']));
  });

  it('shares a session across nodes: created and written on A, read and updated on B and C', async () => {
    const sessionId = await createSession(a);
    expect((await put(a, sessionId, 'from_a', 1)).status).toBe(200);

    const onB = await b.request<SessionInfo>('GET', `/api/sessions/${sessionId}`);
    expect(onB.body.state).toEqual({ from_a: 1 });
    expect((await put(b, sessionId, 'from_b', { n: 2 })).status).toBe(200);
    // C has no `default` pool: the call runs on A or B, the state comes from Redis.
    const fromC = await put(c, sessionId, 'from_c', [3]);
    expect(fromC.status).toBe(200);
    const defaultWorkers = [...(await a.workers()), ...(await b.workers())].map((worker) => worker.pid);
    expect(defaultWorkers).toContain(fromC.body.pid);

    const onC = await c.request<SessionInfo>('GET', `/api/sessions/${sessionId}`);
    expect(onC.body).toMatchObject({ state: { from_a: 1, from_b: { n: 2 }, from_c: [3] }, version: 3 });
    expect((await a.execute('session_get', { key: 'from_c' }, { sessionId })).body.result).toEqual([3]);
  });

  it('loses no update when nodes write one session concurrently: each write is stored or refused with SESSION_CONFLICT', async () => {
    const sessionId = await createSession(b);
    const writes = [a, b, c].flatMap((app, n) => Array.from({ length: 6 }, (_, i) => ({ app, key: `n${n}_${i}`, i })));
    const answers = await Promise.all(writes.map(({ app, key, i }) => put(app, sessionId, key, i)));
    for (const answer of answers) if (answer.status !== 200) expect(answer.body.error).toMatchObject({ code: 'SESSION_CONFLICT', details: { sessionId } });
    const stored = writes
      .filter((_, j) => answers[j].status === 200)
      .map(({ key }) => key)
      .sort();
    expect(stored.length).toBeGreaterThan(0);
    const { body } = await a.request<SessionInfo>('GET', `/api/sessions/${sessionId}`);
    expect(Object.keys(body.state).sort()).toEqual(stored);
    expect(body.version).toBe(stored.length);
  });

  it("runs a pool only C has when A is asked, on C's worker", async () => {
    const answer = await a.execute('whoami', {}, { pool: 'inference' });
    expect(answer.status).toBe(200);
    const [worker] = await c.workers('inference');
    expect(answer.body).toMatchObject({ pool: 'inference', workerId: worker.id, pid: worker.pid, result: { pid: worker.pid, worker_id: worker.id } });
  });

  it("brings a Python exception raised on C to A's client exactly as C reports it, type and traceback included", async () => {
    const args = { type: 'KeyError', message: 'no such model', chained: true };
    const remote = await a.execute<SnakepitErrorBody>('fail', args, { pool: 'inference' });
    const local = await c.execute<SnakepitErrorBody>('fail', args, { pool: 'inference' });
    expect(remote.status).toBe(500);
    expect(remote.body.error).toMatchObject({ code: 'PYTHON_EXCEPTION', details: { node: 'node-c' }, python: { type: 'KeyError' } });
    expect(remote.body.error.python?.traceback).toMatch(/KeyError: 'no such model'/);
    expect(remote.body.error.python?.traceback).toMatch(/showcase\.py/);
    const { node, ...remoteDetails } = remote.body.error.details;
    expect(node).toBe('node-c');
    expect({ ...remote.body.error, details: undefined }).toEqual({ ...local.body.error, details: undefined });
    // The same details; only per-call values (the worker stream's request id) differ between two calls.
    const { workerId, pid, pool, tool } = local.body.error.details;
    expect(Object.keys(remoteDetails).sort()).toEqual(Object.keys(local.body.error.details).sort());
    expect(remoteDetails).toMatchObject({ workerId, pid, pool, tool });
  });

  it('streams from C through A, and cancelling on A stops the generator on C', async () => {
    const streamed = await a.request('POST', '/api/stream', { tool: 'count', args: { n: 5 }, pool: 'inference' });
    expect(streamed.status).toBe(200);
    const events = parseSse(streamed.text);
    expect(events.filter((e) => e.event === 'message').map((e) => e.data)).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })));
    expect(events.at(-1)?.event).toBe('end');

    const abort = new AbortController();
    const response = await fetch(`${a.baseUrl}/api/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tool: 'count', args: { n: 10_000, delay_ms: 50 }, pool: 'inference' }),
      signal: abort.signal,
    });
    const reader = response.body!.getReader();
    let received = '';
    while ((received.match(/^data:/gm) ?? []).length < 3) received += new TextDecoder().decode((await reader.read()).value as Uint8Array | undefined);
    expect((await c.workers('inference'))[0].busy).toBe(1);
    abort.abort();
    await eventually(async () => ((await c.workers('inference'))[0].busy === 0 ? true : undefined), 10_000);
  });

  it('lets a node that stops gracefully finish the calls forwarded to it, then forgets its pools', async () => {
    const d = await node('node-d', 'gpu:1');
    await eventually(async () => ((await toolsOf(a)).gpu ? true : undefined));
    const running = a.execute('sleep', { ms: 1_500 }, { pool: 'gpu' });
    await eventually(async () => ((await d.workers('gpu'))[0].busy === 1 ? true : undefined), 10_000, 20);
    const stopped = d.stop('SIGTERM');
    expect((await running).body).toMatchObject({ result: 1_500, workerId: 'gpu-1', pool: 'gpu' });
    await stopped;
    await eventually(async () => ((await toolsOf(a)).gpu === undefined ? true : undefined));
    const gone = (await a.execute<SnakepitErrorBody>('add', { a: 1, b: 1 }, { pool: 'gpu' })).body.error;
    // The error lists the pools the cluster does serve, the other nodes' included.
    expect(gone).toMatchObject({ code: 'POOL_NOT_FOUND', details: { pool: 'gpu' } });
    expect([...(gone.details.pools as string[])].sort()).toEqual(['batch', 'default', 'inference']);
  });

  it('survives SIGKILL of B under load: no call hangs, its sessions live on, its pools leave the registry', async () => {
    const sessionId = await createSession(a);
    expect((await put(b, sessionId, 'last_by_b', 42)).status).toBe(200);
    const bWorkers = workerPids(b.pid);

    // A call still unanswered after 20 s counts as hung.
    const guarded = (call: Promise<JsonResponse<ExecuteOutcome>>) => {
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<JsonResponse<ExecuteOutcome>>((resolve) => {
        timer = setTimeout(() => resolve({ status: -1, body: {}, text: 'hung', headers: new Headers() }), 20_000);
      });
      return Promise.race([call, hung]).finally(() => clearTimeout(timer));
    };
    const load = [
      ...Array.from({ length: 6 }, () => guarded(a.execute<ExecuteOutcome>('sleep', { ms: 300 }, { pool: 'batch' }))),
      ...Array.from({ length: 6 }, () => guarded(c.execute<ExecuteOutcome>('sleep', { ms: 200 }, { pool: 'default' }))),
    ];
    await sleep(150);
    await b.stop('SIGKILL');

    const answers = await Promise.all(load);
    for (const answer of answers) {
      expect(answer.status === 200 || answer.body.error?.code === 'WORKER_UNAVAILABLE').toBe(true);
      if (answer.status !== 200) expect(answer.body.error?.details).toMatchObject({ node: 'node-b' });
    }

    for (const app of [a, c]) {
      expect((await app.request<SessionInfo>('GET', `/api/sessions/${sessionId}`)).body.state).toEqual({ last_by_b: 42 });
    }
    const remaining = { default: ['node-a'], inference: ['node-c'] };
    for (const app of [a, c]) {
      await eventually(async () => (JSON.stringify(await toolsOf(app)) === JSON.stringify(remaining) ? true : undefined), DETECTION_WINDOW_MS, 50);
    }
    expect((await a.execute<SnakepitErrorBody>('add', { a: 1, b: 1 }, { pool: 'batch' })).body.error.code).toBe('POOL_NOT_FOUND');
    expect((await c.execute('session_get', { key: 'last_by_b' }, { sessionId })).body).toMatchObject({ result: 42, workerId: 'default-1' });
    // B's workers follow their host (stdin lifeline): nothing is left behind.
    await eventually(() => (bWorkers.every((pid) => !isAlive(pid)) ? true : undefined), 10_000);
  });

  it('keeps local calls working while Redis is down, fails session and remote calls clearly, reports not ready, and recovers by itself', async () => {
    const sessionId = await createSession(a);
    expect((await put(a, sessionId, 'before', 'outage')).status).toBe(200);

    await redis.stop();
    for (let i = 0; i < 3; i++) expect((await a.execute('add', { a: i, b: 1 })).body.result).toBe(i + 1);
    expect((await c.execute('add', { a: 2, b: 2 }, { pool: 'inference' })).body.result).toBe(4);

    const sessionCall = await put(a, sessionId, 'during', 'outage');
    expect(sessionCall.status).toBe(503);
    expect(sessionCall.body.error).toMatchObject({ code: 'WORKER_UNAVAILABLE', details: { reason: 'redis_unreachable' } });
    expect(sessionCall.body.error?.message).toMatch(/Redis is unreachable/);
    expect((await a.request('POST', '/api/sessions', {})).status).toBe(503);
    const readiness = await a.request<HealthBody>('GET', '/health/ready');
    expect(readiness.status).toBe(503);
    expect(readiness.body.error).toHaveProperty('sessions');
    const remote = await eventually(
      async () => {
        const answer = await a.execute<SnakepitErrorBody>('add', { a: 1, b: 2 }, { pool: 'inference' });
        return answer.status === 503 ? answer : undefined;
      },
      DETECTION_WINDOW_MS,
      50,
    );
    expect(remote.body.error).toMatchObject({ code: 'WORKER_UNAVAILABLE', details: { reason: 'redis_unreachable', pool: 'inference' } });

    await redis.resume();
    await eventually(async () => ((await put(a, sessionId, 'after', 'outage')).status === 200 ? true : undefined), 15_000, 100);
    // Each node reconnects on its own back-off (up to 1 s apart): C answers once its own connection is back.
    const seen = await eventually(
      async () => {
        const answer = await c.request<SessionInfo>('GET', `/api/sessions/${sessionId}`);
        return answer.status === 200 ? answer.body : undefined;
      },
      15_000,
      100,
    );
    expect(seen.state).toEqual({ before: 'outage', after: 'outage' });
    await eventually(async () => ((await a.execute('add', { a: 1, b: 2 }, { pool: 'inference' })).body.result === 3 ? true : undefined), 15_000, 100);
    await eventually(async () => ((await a.request('GET', '/health/ready')).status === 200 ? true : undefined), 15_000, 100);
  });
});

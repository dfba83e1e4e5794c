import { expect } from '@jest/globals';
import type { SessionInfo } from '@snakepit/nestjs';
import { eventually, freePort, type ExecuteOutcome, type JsonResponse, type SampleApp, type ToolList } from '../helpers/sample-app';
import { TcpProxy, type CutMode } from '../helpers/tcp-proxy';
import { ClusterNodes } from './cluster-nodes';
import { RedisServer } from './redis-server';

jest.setTimeout(90_000);

// The test clusters' short failure-detection window keeps the suite quick (keepalive pings every heartbeat, answered within the TTL).
/** Every forwarded call in this file carries this budget. */
const BUDGET_MS = 4_000;
/**
 * A call unanswered after this long counts as hung: its budget, the calling node's 2 s slack past it, and room
 * for a loaded 2-core machine. It bounds the test's wait; how fast a call settles is never asserted.
 */
const HUNG_MS = BUDGET_MS + 2_000 + 4_000;
/** How long the nodes get to forward to each other again once the path is back. */
const HEAL_WITHIN_MS = 20_000;

/** An answer, or `hung` when none came within HUNG_MS. */
type Settled = JsonResponse<ExecuteOutcome> | 'hung';

function guarded(call: Promise<JsonResponse<ExecuteOutcome>>): Promise<Settled> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), HUNG_MS);
  });
  return Promise.race([call, hung]).finally(() => clearTimeout(timer));
}

/**
 * A partition between cluster nodes while Redis stays reachable for all of them, on loopback:
 *   node-a: default:1                  (the node the tests call)
 *   node-b: default:1, inference:1     (reached by every other node only through a TcpProxy the test cuts)
 *   node-c: inference:1                (reached directly)
 */
describe('cluster mode under a network partition (A and C cut off from B, Redis reachable by all)', () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  let a: SampleApp;
  let b: SampleApp;
  let c: SampleApp;
  const nodes = new ClusterNodes(() => redis.url);
  let bWorkerPid: number;
  let cWorkerPid: number;

  const node = (nodeId: string, pools: string, env: Record<string, string> = {}) => nodes.start(nodeId, pools, env);

  async function nodesOf(app: SampleApp, pool: string): Promise<string[] | undefined> {
    const { body } = await app.request<ToolList>('GET', '/api/tools');
    return body.pools.find((p) => p.pool === pool)?.nodes;
  }

  /** A forwarded call from A to the inference pool (on B or C), non-idempotent unless asked. */
  const forward = (tool: string, args: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    guarded(a.execute<ExecuteOutcome>(tool, args, { pool: 'inference', timeoutMs: BUDGET_MS, ...extra }));

  /** Each answer ran (on one of `pids`) or failed with a structured error naming B: never hung, never anonymous. */
  function expectSurvived(answers: Settled[], pids: number[]): { ran: number; failed: number } {
    let ran = 0;
    for (const answer of answers) {
      expect(answer).not.toBe('hung');
      if (answer === 'hung') continue;
      if (answer.status === 200) {
        expect(pids).toContain(answer.body.pid);
        ran++;
        continue;
      }
      expect(['WORKER_UNAVAILABLE', 'TIMEOUT']).toContain(answer.body.error?.code);
      expect(answer.body.error?.details).toMatchObject({ node: 'node-b', reason: expect.stringMatching(/^node_/) });
    }
    return { ran, failed: answers.length - ran };
  }

  /** After heal(): A runs a call on B's worker again, with no restart (bounded; each try is its own call). */
  async function expectForwardsToBAgain(): Promise<void> {
    await eventually(
      async () => {
        const answer = await forward('whoami', {}, { idempotent: true });
        return answer !== 'hung' && answer.status === 200 && answer.body.pid === bWorkerPid ? true : undefined;
      },
      HEAL_WITHIN_MS,
      100,
    );
  }

  async function withCut<T>(mode: CutMode, run: () => Promise<T>): Promise<T> {
    proxy.cut(mode);
    try {
      return await run();
    } finally {
      proxy.heal();
    }
  }

  beforeAll(async () => {
    redis = await RedisServer.start();
    // B's internal service listens on a port chosen here, and is advertised at the proxy in front of it.
    const bClusterPort = await freePort();
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: bClusterPort });
    [a, b, c] = await Promise.all([
      node('node-a', 'default:1'),
      node('node-b', 'default:1,inference:1', { SNAKEPIT_CLUSTER_PORT: String(bClusterPort), SNAKEPIT_CLUSTER_ADVERTISE: proxy.address }),
      node('node-c', 'inference:1'),
    ]);
    for (const app of [a, b, c]) {
      await eventually(async () => ((await nodesOf(app, 'inference'))?.length === 2 && (await nodesOf(app, 'default'))?.length === 2) || undefined, 30_000);
    }
    [bWorkerPid, cWorkerPid] = [(await b.workers('inference'))[0].pid, (await c.workers('inference'))[0].pid];
    // The path through the proxy works before any cut.
    await expectForwardsToBAgain();
  }, 150_000);

  afterAll(async () => {
    await nodes.stopAll();
    await proxy?.dispose();
    await redis?.dispose();
  });

  it('with the path reset: calls from A fail over to C or fail with a structured error, none hangs; then A forwards to B again', async () => {
    const answers = await withCut('reset', () => Promise.all(Array.from({ length: 8 }, (_, i) => forward('add', { a: i, b: 1 }))));
    const { ran } = expectSurvived(answers, [cWorkerPid]);
    // B is unreachable, not dead: a call that never reached it runs on C, whether idempotent or not.
    expect(ran).toBeGreaterThan(0);
    // Membership (through Redis) still lists B the whole time: the partition is between the nodes only.
    expect(await nodesOf(a, 'inference')).toEqual(['node-b', 'node-c']);
    await expectForwardsToBAgain();
  });

  it('with the path blackholed: calls in flight to B settle (keepalive or deadline), new calls fail over to C; then A forwards to B again', async () => {
    // Keep both inference workers busy so that A has a call in flight on each node when the path goes silent.
    const inFlight = [forward('sleep', { ms: 2_500 }), forward('sleep', { ms: 2_500 })];
    await eventually(
      async () => ((await b.workers('inference'))[0].busy === 1 || undefined) && ((await c.workers('inference'))[0].busy === 1 || undefined),
      10_000,
      20,
    );
    const answers = await withCut('blackhole', async () => {
      const later = Array.from({ length: 4 }, (_, i) => forward('add', { a: i, b: 2 }));
      return Promise.all([...inFlight, ...later]);
    });
    expect(proxy.dropped).toBeGreaterThan(0);
    expectSurvived(answers, [cWorkerPid]);
    // The call that was running on B never returns to A (its answer went into the hole): it failed, structured.
    const onB = answers.slice(0, 2).filter((answer) => answer !== 'hung' && answer.status !== 200);
    expect(onB).toHaveLength(1);
    // B's own keepalive finds A silent too and cancels the call it was running for A: its worker is free again.
    await eventually(async () => (await b.workers('inference'))[0].busy === 0 || undefined, 10_000, 50);
    const { text } = await b.request('GET', '/metrics');
    expect(text).toMatch(/^snakepit_calls_total\{pool="inference",tool="sleep",outcome="CANCELLED"\} 1$/m);
    await expectForwardsToBAgain();
  });

  it('keeps a session consistent when both sides write it during a cut: every success counted, every failure structured', async () => {
    const created = await a.request<SessionInfo>('POST', '/api/sessions', { ttlSeconds: 600 });
    expect(created.status).toBe(201);
    const sessionId = created.body.sessionId;
    const incr = (app: SampleApp) => guarded(app.execute<ExecuteOutcome>('session_incr', { key: 'n' }, { sessionId, pool: 'default', timeoutMs: BUDGET_MS }));

    const answers = await withCut('blackhole', async () => {
      // A and B run `default` themselves (each side of the cut, both on Redis); C has no `default` and forwards
      // to A or B, and what it sends to B is swallowed before B could run it.
      const writes = [a, b, c].flatMap((app) => Array.from({ length: 5 }, () => incr(app)));
      return Promise.all(writes);
    });

    let successes = 0;
    for (const answer of answers) {
      expect(answer).not.toBe('hung');
      if (answer === 'hung') continue;
      if (answer.status === 200) {
        successes++;
        continue;
      }
      const error = answer.body.error!;
      expect(['SESSION_CONFLICT', 'WORKER_UNAVAILABLE', 'TIMEOUT']).toContain(error.code);
      if (error.code === 'SESSION_CONFLICT') expect(error.details).toMatchObject({ sessionId });
      else expect(error.details).toMatchObject({ node: 'node-b' });
    }
    expect(successes).toBeGreaterThan(0);
    // The no-lost-update rule across the partition: the counter is exactly the number of increments that succeeded.
    const stored = await a.request<SessionInfo>('GET', `/api/sessions/${sessionId}`);
    expect(stored.body.state).toEqual({ n: successes });
    expect(stored.body.version).toBe(successes);
    expect((await b.request<SessionInfo>('GET', `/api/sessions/${sessionId}`)).body.state).toEqual({ n: successes });
    await expectForwardsToBAgain();
  });
});

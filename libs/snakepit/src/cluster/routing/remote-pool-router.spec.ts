import { firstValueFrom, Observable, throwError, toArray } from 'rxjs';
import { SnakepitError } from '../../errors/snakepit-error';
import type { StreamChunk } from '../../pool/pool.service';
import { resolveClusterOptions } from '../cluster-options';
import type { ClusterMembership } from '../membership/cluster-membership';
import type { AdvertisedPool, NodeRecord } from '../membership/node-record';
import { NODE_LOST, NODE_UNREACHABLE, NODE_UNRESPONSIVE, type ClusterClient } from '../transport/cluster-client';
import type { ForwardedCall, ForwardedResult__Output } from '../transport/cluster-messages';
import { RemotePoolRouter } from './remote-pool-router';

const tool = { name: 'add', description: '', streaming: false, idempotent: true, parameters: [] };

function node(id: string, pools: Record<string, number>): NodeRecord {
  const advertised = Object.entries(pools).map(([name, available]): AdvertisedPool => ({
    name,
    size: 2,
    ready: 2,
    available,
    queueDepth: 0,
    timeoutMs: 1000,
    maxPayloadBytes: 1024,
    tools: [tool],
  }));
  return { id, address: `${id}:1`, version: 'test', startedAt: 0, pools: advertised };
}

const lost = (nodeId: string) => new SnakepitError('WORKER_UNAVAILABLE', `Node ${nodeId} was lost`, { details: { node: nodeId, reason: NODE_LOST } });
const unreachable = (nodeId: string) => () =>
  new SnakepitError('WORKER_UNAVAILABLE', `Node ${nodeId} is unreachable`, { details: { node: nodeId, reason: NODE_UNREACHABLE } });
const unresponsive = (nodeId: string) => () =>
  new SnakepitError('TIMEOUT', `Node ${nodeId} did not answer`, { details: { node: nodeId, reason: NODE_UNRESPONSIVE } });

/** A ClusterClient whose nodes answer as `behaviour` says, recording where each call went. */
class FakeClient {
  readonly calls: Array<{ node: string; call: ForwardedCall }> = [];
  constructor(private readonly behaviour: Record<string, () => ForwardedResult__Output | SnakepitError>) {}

  inflightTo(): number {
    return 0;
  }

  execute(target: NodeRecord, call: ForwardedCall): Promise<ForwardedResult__Output> {
    this.calls.push({ node: target.id, call });
    const outcome = this.behaviour[target.id]();
    return outcome instanceof SnakepitError ? Promise.reject(outcome) : Promise.resolve(outcome);
  }

  stream(target: NodeRecord, call: ForwardedCall): Observable<StreamChunk> {
    this.calls.push({ node: target.id, call });
    const outcome = this.behaviour[target.id]();
    return outcome instanceof SnakepitError ? throwError(() => outcome) : new Observable((s) => (s.next({ data: target.id, seq: 0 }), s.complete()));
  }
}

function router(peers: NodeRecord[], behaviour: Record<string, () => ForwardedResult__Output | SnakepitError>, fresh = true) {
  const membership = { fresh, livePeers: () => (fresh ? peers : []), knownRemotePools: () => new Set(peers.flatMap((n) => n.pools.map((p) => p.name))) };
  const client = new FakeClient(behaviour);
  const cluster = resolveClusterOptions({ redis: 'redis://r', secret: 'a-secret-of-16-chars', nodeId: 'self', heartbeatIntervalMs: 100, nodeTtlMs: 400 });
  return { router: new RemotePoolRouter(cluster, membership as unknown as ClusterMembership, client as unknown as ClusterClient), client };
}

const ok = (workerId: string) => (): ForwardedResult__Output => ({ value: { json: Buffer.from('3'), blobs: [] }, workerId, pid: 7 });

describe('RemotePoolRouter', () => {
  it('forwards to the least loaded node that has the pool and answers like a local call', async () => {
    const { router: r, client } = router([node('b', { p: 1 }), node('c', { p: 2, q: 1 })], { b: ok('p-1'), c: ok('p-2') });
    expect(r.has('q')).toBe(true);
    expect(r.has('zzz')).toBe(false);
    const answer = await r.execute('add', { a: 1, b: 2 }, { pool: 'p', timeoutMs: 5000, sessionId: 's1', metadata: { m: '1' } });
    expect(answer).toMatchObject({ result: 3, workerId: 'p-2', pid: 7, pool: 'p' });
    expect(client.calls[0]).toMatchObject({ node: 'c', call: { tool: 'add', pool: 'p', sessionId: 's1', metadata: { m: '1' }, originNode: 'self' } });
    expect(client.calls[0].call.timeoutMs).toBeGreaterThan(4000);
  });

  it('keeps a session on the node that served it last while that node has room', async () => {
    const { router: r, client } = router([node('b', { p: 1 }), node('c', { p: 1 })], { b: ok('p-1'), c: ok('p-2') });
    await r.execute('add', {}, { pool: 'p' }); // equal nodes take turns: b
    await r.execute('add', {}, { pool: 'p', sessionId: 's1' }); // then c
    await r.execute('add', {}, { pool: 'p', sessionId: 's1' }); // b's turn, but the session was last on c
    expect(client.calls.map((c) => c.node)).toEqual(['b', 'c', 'c']);
  });

  it('retries a lost call once elsewhere only when it is idempotent, and avoids the lost node afterwards', async () => {
    const { router: r, client } = router([node('b', { p: 5 }), node('c', { p: 1 })], { b: () => lost('b'), c: ok('p-1') });
    await expect(r.execute('add', {}, { pool: 'p' })).rejects.toMatchObject({ code: 'WORKER_UNAVAILABLE', details: { node: 'b' } });
    expect(client.calls.map((c) => c.node)).toEqual(['b']);
    // b is now suspect: the next call goes to c although b advertises more room.
    await expect(r.execute('add', {}, { pool: 'p' })).resolves.toMatchObject({ workerId: 'p-1' });

    const fresh = router([node('b', { p: 5 }), node('c', { p: 1 })], { b: () => lost('b'), c: ok('p-1') });
    await expect(fresh.router.execute('add', {}, { pool: 'p', idempotent: true })).resolves.toMatchObject({ workerId: 'p-1' });
    expect(fresh.client.calls.map((c) => c.node)).toEqual(['b', 'c']);
  });

  it('retries a call a stopping node refused, since it never ran', async () => {
    const refused = () => new SnakepitError('SHUTTING_DOWN', 'stopping', { details: { node: 'b' } });
    const { router: r, client } = router([node('b', { p: 5 }), node('c', { p: 1 })], { b: refused, c: ok('p-1') });
    await expect(r.execute('add', {}, { pool: 'p' })).resolves.toMatchObject({ workerId: 'p-1' });
    expect(client.calls.map((c) => c.node)).toEqual(['b', 'c']);
  });

  it("never retries this node's own shutdown elsewhere", async () => {
    const stopping = new SnakepitError('SHUTTING_DOWN', 'Snakepit is shutting down', { details: { pool: 'p' } });
    const { router: r, client } = router([node('b', { p: 5 }), node('c', { p: 1 })], { b: () => stopping, c: ok('p-1') });
    await expect(r.execute('add', {}, { pool: 'p' })).rejects.toBe(stopping);
    expect(client.calls).toHaveLength(1);
  });

  it('passes a tool error through untouched and never retries it', async () => {
    const failure = new SnakepitError('PYTHON_EXCEPTION', 'ValueError: x', { details: { node: 'b' } });
    const { router: r, client } = router([node('b', { p: 5 }), node('c', { p: 1 })], { b: () => failure, c: ok('p-1') });
    await expect(r.execute('add', {}, { pool: 'p', idempotent: true })).rejects.toBe(failure);
    expect(client.calls).toHaveLength(1);
  });

  it('fails clearly when the cluster view is unknown or nobody serves the pool', async () => {
    await expect(router([node('b', { p: 1 })], { b: ok('p-1') }, false).router.execute('add', {}, { pool: 'p' })).rejects.toMatchObject({
      code: 'WORKER_UNAVAILABLE',
      details: { reason: 'redis_unreachable' },
    });
    await expect(router([node('b', { q: 1 })], {}).router.execute('add', {}, { pool: 'p' })).rejects.toMatchObject({
      code: 'WORKER_UNAVAILABLE',
      details: { reason: 'no_live_node' },
    });
  });

  it('retries a stream only before its first chunk', async () => {
    const { router: r, client } = router([node('b', { p: 5 }), node('c', { p: 1 })], { b: () => lost('b'), c: ok('p-1') });
    const chunks = await firstValueFrom(r.executeStream('count', {}, { pool: 'p', idempotent: true }).pipe(toArray()));
    expect(chunks).toEqual([{ data: 'c', seq: 0 }]);
    expect(client.calls.map((c) => c.node)).toEqual(['b', 'c']);
  });

  describe('under a partition (a peer that keeps failing)', () => {
    beforeEach(() => jest.useFakeTimers());
    afterEach(() => jest.useRealTimers());

    it('tries every other node for a call that never reached its node, idempotent or not', async () => {
      const { router: r, client } = router([node('b', { p: 5 }), node('c', { p: 3 }), node('d', { p: 1 })], {
        b: unreachable('b'),
        c: unreachable('c'),
        d: ok('p-1'),
      });
      await expect(r.execute('add', {}, { pool: 'p' })).resolves.toMatchObject({ workerId: 'p-1' });
      expect(client.calls.map((c) => c.node)).toEqual(['b', 'c', 'd']);
    });

    it('fails fast while the only node is backed off, then probes it, with a window that doubles per failure', async () => {
      let answer: () => ForwardedResult__Output | SnakepitError = unreachable('b');
      const { router: r, client } = router([node('b', { p: 5 })], { b: () => answer() });
      await expect(r.execute('add', {}, { pool: 'p' })).rejects.toMatchObject({ code: 'WORKER_UNAVAILABLE', details: { node: 'b', reason: NODE_UNREACHABLE } });
      // Not sent again while its window (one heartbeat) runs.
      await expect(r.execute('add', {}, { pool: 'p' })).rejects.toMatchObject({
        code: 'WORKER_UNAVAILABLE',
        details: { pool: 'p', node: 'b', reason: 'node_backoff', retryAfterMs: 100, failures: 1 },
      });
      expect(client.calls).toHaveLength(1);
      jest.advanceTimersByTime(100);
      await expect(r.execute('add', {}, { pool: 'p' })).rejects.toMatchObject({ details: { reason: NODE_UNREACHABLE } });
      expect(client.calls).toHaveLength(2);
      await expect(r.execute('add', {}, { pool: 'p' })).rejects.toMatchObject({ details: { reason: 'node_backoff', retryAfterMs: 200, failures: 2 } });
      // The path returns: the next probe succeeds and the node is used as before.
      answer = ok('p-1');
      jest.advanceTimersByTime(200);
      await expect(r.execute('add', {}, { pool: 'p' })).resolves.toMatchObject({ workerId: 'p-1' });
      await expect(r.execute('add', {}, { pool: 'p' })).resolves.toMatchObject({ workerId: 'p-1' });
      expect(client.calls).toHaveLength(4);
    });

    it('sends to the other nodes while one is backed off, and back to it once its window ends', async () => {
      let bAnswers: () => ForwardedResult__Output | SnakepitError = () => lost('b');
      const { router: r, client } = router([node('b', { p: 5 }), node('c', { p: 1 })], { b: () => bAnswers(), c: ok('p-2') });
      await expect(r.execute('add', {}, { pool: 'p' })).rejects.toMatchObject({ details: { node: 'b', reason: NODE_LOST } });
      for (let i = 0; i < 3; i++) await expect(r.execute('add', {}, { pool: 'p' })).resolves.toMatchObject({ workerId: 'p-2' });
      bAnswers = ok('p-1');
      jest.advanceTimersByTime(100);
      await expect(r.execute('add', {}, { pool: 'p' })).resolves.toMatchObject({ workerId: 'p-1' });
      expect(client.calls.map((c) => c.node)).toEqual(['b', 'c', 'c', 'c', 'b']);
    });

    it('never retries a call that was sent and went unanswered (it may have run), but backs its node off', async () => {
      const { router: r, client } = router([node('b', { p: 5 }), node('c', { p: 1 })], { b: unresponsive('b'), c: ok('p-2') });
      await expect(r.execute('add', {}, { pool: 'p', idempotent: true })).rejects.toMatchObject({ code: 'TIMEOUT', details: { reason: NODE_UNRESPONSIVE } });
      expect(client.calls.map((c) => c.node)).toEqual(['b']);
      await expect(r.execute('add', {}, { pool: 'p' })).resolves.toMatchObject({ workerId: 'p-2' });
    });

    it("counts a tool's own error as an answer: the node is not backed off", async () => {
      const failure = () => new SnakepitError('PYTHON_EXCEPTION', 'ValueError: x', { details: { node: 'b' } });
      const { router: r, client } = router([node('b', { p: 5 }), node('c', { p: 1 })], { b: failure, c: ok('p-2') });
      await expect(r.execute('add', {}, { pool: 'p' })).rejects.toMatchObject({ code: 'PYTHON_EXCEPTION' });
      await expect(r.execute('add', {}, { pool: 'p' })).rejects.toMatchObject({ code: 'PYTHON_EXCEPTION' });
      expect(client.calls.map((c) => c.node)).toEqual(['b', 'b']);
    });

    it('ends a retried stream with TIMEOUT when the budget ran out on the way (never a throw past the subscriber)', async () => {
      const slowUnreachable = () => {
        jest.advanceTimersByTime(600); // the failed connection attempt took the whole budget
        return unreachable('b')();
      };
      const { router: r, client } = router([node('b', { p: 5 }), node('c', { p: 1 })], { b: slowUnreachable, c: ok('p-2') });
      const chunks = firstValueFrom(r.executeStream('count', {}, { pool: 'p', timeoutMs: 500 }).pipe(toArray()));
      await expect(chunks).rejects.toMatchObject({ code: 'TIMEOUT', details: { pool: 'p', tool: 'count', timeoutMs: 500 } });
      expect(client.calls.map((c) => c.node)).toEqual(['b']);
    });
  });

  it('lists local pools first, then the others by name, each with the nodes that serve it', () => {
    const { router: r } = router([node('c', { z: 1, p: 1 }), node('b', { a: 1, p: 1 })], {});
    const local = [{ pool: 'p', tools: [] }];
    expect(r.listTools(local).map((entry) => [entry.pool, entry.nodes])).toEqual([
      ['p', ['b', 'c', 'self']],
      ['a', ['b']],
      ['z', ['c']],
    ]);
    expect(r.listTools(local)[0].tools).toEqual([]);
  });
});

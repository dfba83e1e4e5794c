import { Logger } from '@nestjs/common';
import { resolveClusterOptions } from '../../libs/snakepit/src/cluster/cluster-options';
import { ClusterMembership } from '../../libs/snakepit/src/cluster/membership/cluster-membership';
import type { NodeRecord } from '../../libs/snakepit/src/cluster/membership/node-record';
import { RedisConnection } from '../../libs/snakepit/src/cluster/redis/redis-connection';
import { RedisKeys } from '../../libs/snakepit/src/cluster/redis/redis-keys';
import { eventually } from '../helpers/sample-app';
import { RedisServer } from './redis-server';

jest.setTimeout(30_000);
Logger.overrideLogger(['error']);

const NODE_TTL_MS = 600;

/** Membership on its own against a real redis-server: each ClusterMembership plays one node. */
describe('ClusterMembership', () => {
  let redis: RedisServer;
  const connections: RedisConnection[] = [];

  async function node(id: string, keyPrefix: string): Promise<{ membership: ClusterMembership; record: NodeRecord; departed: string[] }> {
    const options = resolveClusterOptions({
      redis: redis.url,
      secret: 'test-cluster-secret',
      nodeId: id,
      keyPrefix,
      heartbeatIntervalMs: 200,
      nodeTtlMs: NODE_TTL_MS,
    });
    const connection = new RedisConnection(options);
    connections.push(connection);
    await connection.onModuleInit();
    const membership = new ClusterMembership(connection, new RedisKeys(options.keyPrefix), options);
    await membership.watch();
    const departed: string[] = [];
    membership.departures$.subscribe(({ nodeId, graceful }) => departed.push(`${nodeId} ${graceful ? 'left' : 'lost'}`));
    const record: NodeRecord = { id, address: `127.0.0.1:1${id.length}`, version: 'test', startedAt: Date.now(), pools: [] };
    return { membership, record, departed };
  }

  beforeAll(async () => {
    redis = await RedisServer.start();
  });

  afterAll(async () => {
    await Promise.all(connections.map((connection) => connection.onApplicationShutdown()));
    await redis?.dispose();
  });

  it('learns joins through pub/sub, drops a node that stops refreshing, and sees a leave at once', async () => {
    const a = await node('a', 'joins:');
    const b = await node('bb', 'joins:');
    const c = await node('ccc', 'joins:');
    await a.membership.heartbeat(a.record);
    await b.membership.heartbeat(b.record);
    await c.membership.heartbeat(c.record);
    // A has not synced since B and C joined: the join announcements alone bring them in.
    await eventually(() => (a.membership.livePeers().length === 2 ? true : undefined), 5_000, 20);
    expect(a.membership.knownRemotePools()).toEqual(new Set());

    // B stops refreshing (as after SIGKILL): the next sync past its deadline removes it for everyone.
    const beating = setInterval(() => {
      void a.membership.heartbeat(a.record).catch(() => undefined);
      void c.membership.heartbeat(c.record).catch(() => undefined);
    }, 100);
    try {
      await eventually(
        () =>
          a.membership
            .livePeers()
            .map((n) => n.id)
            .join() === 'ccc'
            ? true
            : undefined,
        5_000,
        20,
      );
      await eventually(
        () =>
          c.membership
            .livePeers()
            .map((n) => n.id)
            .join() === 'a'
            ? true
            : undefined,
        5_000,
        20,
      );
      expect(a.departed).toEqual(['bb lost']);

      await c.membership.leave();
      await eventually(() => (a.membership.livePeers().length === 0 ? true : undefined), 5_000, 20);
      expect(a.departed).toEqual(['bb lost', 'ccc left']);
    } finally {
      clearInterval(beating);
    }
  });

  it('offers no peer while Redis cannot be read, and recovers by itself', async () => {
    const a = await node('a', 'outage:');
    const b = await node('b', 'outage:');
    await b.membership.heartbeat(b.record);
    await a.membership.heartbeat(a.record);
    expect(a.membership.livePeers().map((n) => n.id)).toEqual(['b']);

    await redis.stop();
    await expect(a.membership.heartbeat(a.record)).rejects.toMatchObject({ code: 'WORKER_UNAVAILABLE', details: { reason: 'redis_unreachable' } });
    await eventually(() => (a.membership.fresh ? undefined : true), 5_000, 20);
    expect(a.membership.livePeers()).toEqual([]);
    expect(a.membership.knownRemotePools()).toEqual(new Set());

    await redis.resume();
    await eventually(async () => {
      await b.membership.heartbeat(b.record);
      await a.membership.heartbeat(a.record);
      return a.membership.livePeers().length === 1 || undefined;
    }, 10_000);
  });
});

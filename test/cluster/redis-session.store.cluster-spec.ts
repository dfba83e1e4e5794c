import { Logger } from '@nestjs/common';
import { SnakepitError } from '@snakepit/nestjs';
import { resolveClusterOptions } from '../../libs/snakepit/src/cluster/cluster-options';
import { RedisConnection } from '../../libs/snakepit/src/cluster/redis/redis-connection';
import { RedisKeys } from '../../libs/snakepit/src/cluster/redis/redis-keys';
import { RedisSessionStore } from '../../libs/snakepit/src/cluster/session/redis-session.store';
import { eventually, sleep } from '../helpers/sample-app';
import { RedisServer } from './redis-server';

jest.setTimeout(30_000);
Logger.overrideLogger(['error']);

/** The Redis session store on its own, against a real redis-server: two connections play two nodes. */
describe('RedisSessionStore', () => {
  let redis: RedisServer;
  const connections: RedisConnection[] = [];
  let nodeA: RedisSessionStore;
  let nodeB: RedisSessionStore;
  let keys: RedisKeys;

  async function connect(nodeId: string): Promise<RedisSessionStore> {
    const options = resolveClusterOptions({ redis: redis.url, secret: 'test-cluster-secret', nodeId, keyPrefix: 'store-test:' });
    const connection = new RedisConnection(options);
    connections.push(connection);
    await connection.onModuleInit();
    keys = new RedisKeys(options.keyPrefix);
    return new RedisSessionStore(connection, keys);
  }

  beforeAll(async () => {
    redis = await RedisServer.start();
    nodeA = await connect('a');
    nodeB = await connect('b');
  });

  afterAll(async () => {
    await Promise.all(connections.map((connection) => connection.onApplicationShutdown()));
    await redis?.dispose();
  });

  it('stores a session written on one node for every other node, with the in-memory store semantics', async () => {
    const created = await nodeA.create({ id: 'sess_semantics', ttlSeconds: 60, metadata: { user: 'ada', nested: { n: 1 } } });
    expect(created).toMatchObject({ id: 'sess_semantics', ttlSeconds: 60, metadata: { user: 'ada', nested: { n: 1 } }, state: {}, version: 0 });
    expect(created.expiresAt - created.createdAt).toBe(60_000);

    const written = await nodeB.applyDelta('sess_semantics', { set: { a: '1', b: '"two"' }, deleted: [] }, 'default-1');
    expect(written).toMatchObject({ state: { a: '1', b: '"two"' }, version: 1, lastWorkerId: 'default-1' });

    const changed = await nodeA.applyDelta('sess_semantics', { set: { c: '[3]' }, deleted: ['a'] });
    expect(changed).toMatchObject({ state: { b: '"two"', c: '[3]' }, version: 2, lastWorkerId: 'default-1' });

    const touched = await nodeB.touch('sess_semantics', 'default-2');
    expect(touched).toMatchObject({ version: 2, lastWorkerId: 'default-2' });
    expect(await nodeA.get('sess_semantics')).toEqual(touched);
    expect(await nodeA.count()).toBeGreaterThanOrEqual(1);

    expect(await nodeB.delete('sess_semantics')).toBe(true);
    expect(await nodeA.delete('sess_semantics')).toBe(false);
    for (const store of [nodeA, nodeB]) {
      expect(await store.get('sess_semantics')).toBeNull();
      expect(await store.touch('sess_semantics')).toBeNull();
      expect(await store.applyDelta('sess_semantics', { set: { x: '1' }, deleted: [] })).toBeNull();
    }
  });

  it('merges concurrent deltas from two nodes key by key: no update is lost and every change bumps the version', async () => {
    await nodeA.create({ id: 'sess_concurrent', ttlSeconds: 60, metadata: {} });
    const writes = Array.from({ length: 100 }, (_, i) =>
      (i % 2 === 0 ? nodeA : nodeB).applyDelta('sess_concurrent', { set: { [`k${i}`]: String(i) }, deleted: [] }),
    );
    await Promise.all(writes);
    const record = await nodeB.get('sess_concurrent');
    expect(Object.keys(record!.state)).toHaveLength(100);
    expect(record!.state.k99).toBe('99');
    expect(record!.version).toBe(100);
  });

  it('keeps the TTL in Redis, slides it on every use and reports each expiry once', async () => {
    const created = await nodeA.create({ id: 'sess_ttl', ttlSeconds: 1, metadata: {} });
    const client = connections[0].client;
    expect(await client.pttl(keys.session('sess_ttl'))).toBeGreaterThan(0);
    await sleep(600);
    const slid = await nodeB.touch('sess_ttl');
    expect(slid!.expiresAt).toBeGreaterThan(created.expiresAt);
    expect(await client.pttl(keys.session('sess_ttl'))).toBeGreaterThan(600);

    await eventually(async () => (await nodeA.get('sess_ttl')) === null || undefined, 5_000);
    const reported = [...(await nodeA.sweep()), ...(await nodeB.sweep())];
    expect(reported.filter((id) => id === 'sess_ttl')).toHaveLength(1);
  });

  it('fails fast with a clear error while Redis is down, and recovers with the data when it returns', async () => {
    await nodeA.create({ id: 'sess_outage', ttlSeconds: 600, metadata: {} });
    await nodeA.applyDelta('sess_outage', { set: { kept: 'true' }, deleted: [] });
    await redis.stop();

    const failure = await nodeA.get('sess_outage').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(SnakepitError);
    expect(failure).toMatchObject({ code: 'WORKER_UNAVAILABLE', details: { reason: 'redis_unreachable', operation: 'session.get' } });
    expect((failure as Error).message).toMatch(/Redis is unreachable/);
    await expect(nodeB.applyDelta('sess_outage', { set: { lost: '1' }, deleted: [] }, 'w')).rejects.toMatchObject({ code: 'WORKER_UNAVAILABLE' });
    await expect(nodeB.ping()).rejects.toBeInstanceOf(SnakepitError);

    await redis.resume();
    const record = await eventually(() => nodeB.get('sess_outage').catch(() => undefined), 10_000);
    expect(record).toMatchObject({ state: { kept: 'true' }, version: 1 });
    await eventually(() => nodeA.ping().then(() => true).catch(() => undefined), 10_000);
  });
});

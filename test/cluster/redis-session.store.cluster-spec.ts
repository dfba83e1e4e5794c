import { Logger } from '@nestjs/common';
import { SnakepitError } from '@snakepit/nestjs';
import { resolveClusterOptions } from '../../libs/snakepit/src/cluster/cluster-options';
import { RedisConnection } from '../../libs/snakepit/src/cluster/redis/redis-connection';
import { RedisKeys } from '../../libs/snakepit/src/cluster/redis/redis-keys';
import { RedisSessionStore } from '../../libs/snakepit/src/cluster/session/redis-session.store';
import { sessionState, type SessionDelta, type SessionLimits } from '../../libs/snakepit/src/session/session-store';
import { eventually, sleep } from '../helpers/sample-app';
import { RedisServer } from './redis-server';

jest.setTimeout(30_000);
Logger.overrideLogger(['error']);

const roomy: SessionLimits = { maxBytes: 1024 * 1024, maxKeys: 1024 };
const delta = (set: Record<string, string>, deleted: string[] = []): SessionDelta => ({ set: sessionState(Object.entries(set)), deleted });

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

    const written = await nodeB.commit('sess_semantics', delta({ a: '1', b: '"two"' }), { lastWorkerId: 'default-1', limits: roomy });
    expect(written).toEqual({ status: 'committed', version: 1 });
    expect(await nodeA.get('sess_semantics')).toMatchObject({ state: { a: '1', b: '"two"' }, version: 1, lastWorkerId: 'default-1' });

    expect(await nodeA.commit('sess_semantics', delta({ c: '[3]' }, ['a']), { expectedVersion: 1, limits: roomy })).toEqual({
      status: 'committed',
      version: 2,
    });
    expect(await nodeB.get('sess_semantics')).toMatchObject({ state: { b: '"two"', c: '[3]' }, version: 2, lastWorkerId: 'default-1' });

    const touched = await nodeB.touch('sess_semantics', 'default-2');
    expect(touched).toMatchObject({ version: 2, lastWorkerId: 'default-2' });
    expect(await nodeA.get('sess_semantics')).toEqual(touched);
    expect(await nodeA.count()).toBeGreaterThanOrEqual(1);

    expect(await nodeB.delete('sess_semantics')).toBe(true);
    expect(await nodeA.delete('sess_semantics')).toBe(false);
    for (const store of [nodeA, nodeB]) {
      expect(await store.get('sess_semantics')).toBeNull();
      expect(await store.touch('sess_semantics')).toBeNull();
      expect(await store.commit('sess_semantics', delta({ x: '1' }), { limits: roomy })).toEqual({ status: 'not_found' });
    }
  });

  it('compares versions across nodes: of two commits from one snapshot, the second writes nothing and reports the version', async () => {
    await nodeA.create({ id: 'sess_versions', ttlSeconds: 60, metadata: {} });
    const snapshot = (await nodeA.touch('sess_versions'))!;
    expect(await nodeA.commit('sess_versions', delta({ n: '6' }), { expectedVersion: snapshot.version, lastWorkerId: 'a-1', limits: roomy })).toEqual({
      status: 'committed',
      version: 1,
    });
    expect(
      await nodeB.commit('sess_versions', delta({ n: '6', mine: 'true' }), { expectedVersion: snapshot.version, lastWorkerId: 'b-1', limits: roomy }),
    ).toEqual({
      status: 'conflict',
      actualVersion: 1,
    });
    expect(await nodeB.get('sess_versions')).toMatchObject({ state: { n: '6' }, version: 1, lastWorkerId: 'a-1' });
  });

  it('loses no increment when two nodes read-modify-write one key, retrying each conflict on a fresh snapshot', async () => {
    await nodeA.create({ id: 'sess_increments', ttlSeconds: 60, metadata: {} });
    let conflicts = 0;
    const increment = async (store: RedisSessionStore): Promise<void> => {
      for (let attempt = 0; attempt < 200; attempt++) {
        const { state, version } = (await store.touch('sess_increments'))!;
        const next = String(Number(state.n ?? '0') + 1);
        const result = await store.commit('sess_increments', delta({ n: next }), { expectedVersion: version, limits: roomy });
        if (result.status === 'committed') return;
        expect(result.status).toBe('conflict');
        conflicts++;
      }
      throw new Error('no commit in 200 attempts');
    };
    await Promise.all(Array.from({ length: 40 }, (_, i) => increment(i % 2 === 0 ? nodeA : nodeB)));
    expect(await nodeA.get('sess_increments')).toMatchObject({ state: { n: '40' }, version: 40 });
    // Forty concurrent read-modify-writes from one snapshot generation: most had to retry.
    expect(conflicts).toBeGreaterThan(0);
  });

  it('checks maxKeys and maxBytes in the same atomic step, writing nothing past either', async () => {
    await nodeA.create({ id: 'sess_caps', ttlSeconds: 60, metadata: {} });
    const limits: SessionLimits = { maxBytes: 20, maxKeys: 2 };
    // 'é' is two bytes in UTF-8, in Redis as in the in-memory store: 2 + 4, then 1 + 2.
    expect((await nodeA.commit('sess_caps', delta({ é: '"é"', b: '12' }), { limits })).status).toBe('committed');
    expect(await nodeB.commit('sess_caps', delta({ c: '1' }), { limits })).toEqual({ status: 'too_large', limit: 'maxKeys', bytes: 11, keys: 3 });
    expect((await nodeB.commit('sess_caps', delta({ b: '"12345678901"' }), { limits })).status).toBe('committed');
    expect(await nodeA.commit('sess_caps', delta({ b: '"123456789012"' }), { limits })).toEqual({ status: 'too_large', limit: 'maxBytes', bytes: 21, keys: 2 });
    expect((await nodeA.commit('sess_caps', delta({ c: '1' }, ['b']), { limits })).status).toBe('committed');
    expect(await nodeB.get('sess_caps')).toMatchObject({ state: { é: '"é"', c: '1' }, version: 3 });

    // A session written before the counters existed is counted once, then capped the same way.
    const client = connections[0].client;
    await client.hdel(keys.session('sess_caps'), 'b', 'n');
    expect(await nodeA.commit('sess_caps', delta({ d: '1' }), { limits })).toEqual({ status: 'too_large', limit: 'maxKeys', bytes: 10, keys: 3 });
    expect((await nodeA.commit('sess_caps', delta({ c: '22' }), { limits })).status).toBe('committed');
    expect(await client.hmget(keys.session('sess_caps'), 'b', 'n')).toEqual(['9', '2']);
  });

  it('stores __proto__ like any other key', async () => {
    await nodeA.create({ id: 'sess_proto', ttlSeconds: 60, metadata: {} });
    await nodeA.commit('sess_proto', delta({ ['__proto__']: '{"admin":true}', constructor: '1' }), { limits: roomy });
    for (const record of [await nodeB.get('sess_proto'), await nodeB.touch('sess_proto')]) {
      expect(Object.keys(record!.state).sort()).toEqual(['__proto__', 'constructor']);
      expect(record!.state['__proto__']).toBe('{"admin":true}');
      expect(Object.getPrototypeOf(record!.state)).toBeNull();
    }
    await nodeB.commit('sess_proto', delta({}, ['__proto__']), { limits: roomy });
    expect(Object.keys((await nodeA.get('sess_proto'))!.state)).toEqual(['constructor']);
  });

  it('merges concurrent blind deltas from two nodes key by key: no update is lost and every change bumps the version', async () => {
    await nodeA.create({ id: 'sess_concurrent', ttlSeconds: 60, metadata: {} });
    const writes = Array.from({ length: 100 }, (_, i) =>
      (i % 2 === 0 ? nodeA : nodeB).commit('sess_concurrent', delta({ [`k${i}`]: String(i) }), { limits: roomy }),
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
    await nodeA.commit('sess_outage', delta({ kept: 'true' }), { limits: roomy });
    await redis.stop();

    const failure = await nodeA.get('sess_outage').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(SnakepitError);
    expect(failure).toMatchObject({ code: 'WORKER_UNAVAILABLE', details: { reason: 'redis_unreachable', operation: 'session.get' } });
    expect((failure as Error).message).toMatch(/Redis is unreachable/);
    await expect(nodeB.commit('sess_outage', delta({ lost: '1' }), { lastWorkerId: 'w', limits: roomy })).rejects.toMatchObject({
      code: 'WORKER_UNAVAILABLE',
      details: { operation: 'session.commit' },
    });
    await expect(nodeB.ping()).rejects.toBeInstanceOf(SnakepitError);

    await redis.resume();
    const record = await eventually(() => nodeB.get('sess_outage').catch(() => undefined), 10_000);
    expect(record).toMatchObject({ state: { kept: 'true' }, version: 1 });
    await eventually(
      () =>
        nodeA
          .ping()
          .then(() => true)
          .catch(() => undefined),
      10_000,
    );
  });
});

import * as grpc from '@grpc/grpc-js';
import { Logger } from '@nestjs/common';
import { expect } from '@jest/globals';
import type { SnakepitErrorBody } from '@snakepit/nestjs';
import Redis from 'ioredis';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { resolveClusterOptions, type ClusterOptions } from '../../libs/snakepit/src/cluster/cluster-options';
import type { NodeRecord } from '../../libs/snakepit/src/cluster/membership/node-record';
import { RedisConnection } from '../../libs/snakepit/src/cluster/redis/redis-connection';
import { CALL_WINDOW_MS } from '../../libs/snakepit/src/cluster/security/call-auth';
import { signRecord } from '../../libs/snakepit/src/cluster/security/signed-record';
import { ClusterClient } from '../../libs/snakepit/src/cluster/transport/cluster-client';
import type { ForwardedCall, ForwardedReply__Output } from '../../libs/snakepit/src/cluster/transport/cluster-messages';
import { clusterMethod, sendAsIs, signedRequest } from '../../libs/snakepit/src/cluster/transport/cluster-proto';
import { encodeArgs } from '../../libs/snakepit/src/bridge/payload';
import { eventually, type ExecuteOutcome, type SampleApp, type ToolList } from '../helpers/sample-app';
import { TestPki, type Issued } from '../helpers/test-pki';
import { ClusterNodes } from './cluster-nodes';
import { RedisServer } from './redis-server';

jest.setTimeout(60_000);
Logger.overrideLogger(['error']);

const OLD_SECRET = 'old-cluster-secret-0001';
const NEW_SECRET = 'new-cluster-secret-0002';
const UNKNOWN_SECRET = 'unknown-secret-00000003';
const USER = { name: 'snakepit-node', password: 'node-password-1' };
const KEY_PREFIX = 'snakepit:';

/**
 * Two sample-app nodes over mutual TLS, with a Redis reached over TLS as an
 * ACL user, in the middle of a secret rotation:
 *   node-a: default:1, secret OLD, accepts NEW      node-b: inference:1, secret NEW, accepts OLD
 * The test process plays the attacker: it writes to Redis directly and dials
 * the nodes' internal service with raw gRPC clients.
 */
describe('cluster security (mTLS, signed records and calls, Redis TLS and ACL)', () => {
  let pki: TestPki;
  let foreignPki: TestPki;
  let redis: RedisServer;
  let admin: Redis;
  let a: SampleApp;
  let b: SampleApp;
  let client: Issued;
  const nodes = new ClusterNodes(() => redis.url);

  const node = (nodeId: string, pools: string, secret: string, accepted: string) => {
    const cert = pki.issue(nodeId);
    const redisClient = redis.clientCertificate!;
    return nodes.start(nodeId, pools, {
      SNAKEPIT_REDIS_TLS_CA: pki.ca,
      SNAKEPIT_REDIS_TLS_CERT: redisClient.cert,
      SNAKEPIT_REDIS_TLS_KEY: redisClient.key,
      // The name in Redis's certificate: Node warns when asked to check an IP address through SNI.
      SNAKEPIT_REDIS_TLS_SERVERNAME: 'localhost',
      SNAKEPIT_CLUSTER_SECRET: secret,
      SNAKEPIT_CLUSTER_ACCEPTED_SECRETS: accepted,
      SNAKEPIT_CLUSTER_TLS_CA: pki.ca,
      SNAKEPIT_CLUSTER_TLS_CERT: cert.cert,
      SNAKEPIT_CLUSTER_TLS_KEY: cert.key,
    });
  };

  /** The records the nodes registered, as Redis holds them (the admin connection reads what an attacker could). */
  async function addressOf(nodeId: string): Promise<string> {
    const stored = await admin.hget(`${KEY_PREFIX}nodes:record`, nodeId);
    return (JSON.parse((JSON.parse(stored!) as { payload: string }).payload) as NodeRecord).address;
  }

  async function metric(app: SampleApp, name: string, reason: string): Promise<number> {
    const { text } = await app.request('GET', '/metrics');
    const line = text.split('\n').find((entry) => entry.startsWith(`${name}{reason="${reason}"}`));
    return line ? Number(line.split(' ').at(-1)) : 0;
  }

  /** A raw grpc-js client of the internal service, with the given TLS material. */
  function rawClient(address: string, credentials: grpc.ChannelCredentials): grpc.Client {
    return new grpc.Client(address, credentials);
  }

  function unary(raw: grpc.Client, bytes: Buffer, metadata: grpc.Metadata): Promise<ForwardedReply__Output> {
    const method = clusterMethod('Execute');
    const deserialize = method.responseDeserialize as (bytes: Buffer) => ForwardedReply__Output;
    return new Promise((resolve, reject) =>
      raw.makeUnaryRequest(method.path, sendAsIs, deserialize, bytes, metadata, { deadline: Date.now() + 5_000 }, (error, reply) =>
        error ? reject(error) : resolve(reply!),
      ),
    );
  }

  const addCall = (x: number): ForwardedCall => ({ tool: 'add', args: encodeArgs({ a: x, b: 1 }, 1024), pool: 'inference', originNode: 'node-a' });
  const trusted = () => grpc.credentials.createSsl(readFileSync(pki.ca), readFileSync(client.key), readFileSync(client.cert));

  beforeAll(async () => {
    pki = TestPki.create();
    foreignPki = TestPki.create('another-ca');
    client = pki.issue('node-test');
    redis = await RedisServer.start({ pki, user: USER });
    const redisClient = redis.clientCertificate!;
    admin = new Redis(redis.url, {
      tls: { ca: readFileSync(pki.ca), cert: readFileSync(redisClient.cert), key: readFileSync(redisClient.key), servername: 'localhost' },
      maxRetriesPerRequest: 1,
    });
    [a, b] = await Promise.all([node('node-a', 'default:1', OLD_SECRET, NEW_SECRET), node('node-b', 'inference:1', NEW_SECRET, OLD_SECRET)]);
    const complete = JSON.stringify(['default', 'inference']);
    for (const app of [a, b]) {
      await eventually(async () => {
        const { body } = await app.request<ToolList>('GET', '/api/tools');
        return JSON.stringify(body.pools.map((p) => p.pool).sort()) === complete || undefined;
      }, 30_000).catch((error: Error) => {
        throw new Error(`the cluster did not form: ${error.message}\n${app.logs.slice(-20).join('\n')}`);
      });
    }
  }, 120_000);

  afterAll(async () => {
    await nodes.stopAll();
    admin?.disconnect();
    await redis?.dispose();
    pki?.dispose();
    foreignPki?.dispose();
  });

  it('forwards both ways over mutual TLS while the nodes are mid-rotation (each signs with its own secret, accepts the other)', async () => {
    const toB = await a.execute<ExecuteOutcome>('add', { a: 2, b: 3 }, { pool: 'inference' });
    expect(toB.body).toMatchObject({ result: 5, pool: 'inference', workerId: 'inference-1', pid: (await b.workers('inference'))[0].pid });
    const toA = await b.execute<ExecuteOutcome>('add', { a: 4, b: 3 }, { pool: 'default' });
    expect(toA.body).toMatchObject({ result: 7, pool: 'default', pid: (await a.workers('default'))[0].pid });
    expect(a.logs.join('\n')).toMatch(/cluster service listening.*"tls":"mutual"/);
  });

  it('ignores node records that are unsigned or signed with an unknown secret, counts them, and sends them no call', async () => {
    let connections = 0;
    const trap: Server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(trap.address() as { port: number }).port}`;
    const pool = (name: string) => ({
      name,
      size: 1000,
      ready: 1000,
      available: 1_000_000,
      capacity: 1_000_000,
      queueDepth: 0,
      timeoutMs: 30_000,
      maxPayloadBytes: 1 << 20,
      tools: [],
    });
    const forged: NodeRecord = { id: 'evil', address, version: '0.1.0', startedAt: Date.now(), pools: [pool('inference'), pool('gpu')] };
    const before = {
      unsigned: await metric(a, 'snakepit_cluster_records_ignored_total', 'unsigned'),
      forged: await metric(a, 'snakepit_cluster_records_ignored_total', 'forged'),
    };
    try {
      // Written as a node with Redis access but no secret would: a live deadline and a record claiming all capacity.
      const deadline = Date.now() + 3_600_000;
      await admin.zadd(`${KEY_PREFIX}nodes:deadline`, deadline, 'evil', deadline, 'evil-2');
      await admin.hset(`${KEY_PREFIX}nodes:record`, 'evil', JSON.stringify(forged), 'evil-2', signRecord({ ...forged, id: 'evil-2' }, UNKNOWN_SECRET));
      await eventually(async () => ((await metric(a, 'snakepit_cluster_records_ignored_total', 'forged')) > before.forged ? true : undefined), 10_000, 100);
      expect(await metric(a, 'snakepit_cluster_records_ignored_total', 'unsigned')).toBeGreaterThan(before.unsigned);

      const calls = await Promise.all(Array.from({ length: 6 }, (_, i) => a.execute<ExecuteOutcome>('add', { a: i, b: 1 }, { pool: 'inference' })));
      expect(calls.map((call) => call.body.result)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(new Set(calls.map((call) => call.body.workerId))).toEqual(new Set(['inference-1']));
      expect((await a.execute<SnakepitErrorBody>('add', { a: 1, b: 1 }, { pool: 'gpu' })).body.error.code).toBe('POOL_NOT_FOUND');
      const { body } = await a.request<ToolList>('GET', '/api/tools');
      expect(body.pools.flatMap((p) => p.nodes)).not.toContain('evil');
      expect(connections).toBe(0);
      expect(a.logs.join('\n')).toMatch(/ignored a node record from Redis.*"reason":"forged".*"node":"evil-2"/);
    } finally {
      await admin.zrem(`${KEY_PREFIX}nodes:deadline`, 'evil', 'evil-2');
      await admin.hdel(`${KEY_PREFIX}nodes:record`, 'evil', 'evil-2');
      trap.close();
    }
  });

  it('refuses a replayed call, a call made for another node, a stale one and one with another secret (UNAUTHENTICATED), and counts them', async () => {
    const addressOfB = await addressOf('node-b');
    const raw = rawClient(addressOfB, trusted());
    try {
      // What node-a would send node-b, byte for byte: accepted once, refused when the same bytes and metadata come again.
      const captured = signedRequest('Execute', addCall(40), OLD_SECRET, { from: 'node-a', to: 'node-b' });
      expect(JSON.parse((await unary(raw, captured.bytes, captured.metadata)).result!.value!.json!.toString())).toBe(41);
      await expect(unary(raw, captured.bytes, captured.metadata)).rejects.toMatchObject({
        code: grpc.status.UNAUTHENTICATED,
        details: 'cluster call refused: replayed',
      });

      const forA = signedRequest('Execute', addCall(1), OLD_SECRET, { from: 'node-b', to: 'node-a' });
      await expect(unary(raw, forA.bytes, forA.metadata)).rejects.toMatchObject({ details: 'cluster call refused: bad_mac' });
      const stale = signedRequest('Execute', addCall(1), OLD_SECRET, { from: 'node-a', to: 'node-b' }, Date.now() - CALL_WINDOW_MS - 1_000);
      await expect(unary(raw, stale.bytes, stale.metadata)).rejects.toMatchObject({ details: 'cluster call refused: outside_window' });
      const tampered = signedRequest('Execute', addCall(1), OLD_SECRET, { from: 'node-a', to: 'node-b' });
      await expect(
        unary(raw, signedRequest('Execute', addCall(2), OLD_SECRET, { from: 'node-a', to: 'node-b' }).bytes, tampered.metadata),
      ).rejects.toMatchObject({
        details: 'cluster call refused: bad_mac',
      });
      await expect(unary(raw, captured.bytes, new grpc.Metadata())).rejects.toMatchObject({ details: 'cluster call refused: missing_proof' });
    } finally {
      raw.close();
    }
    expect(await metric(b, 'snakepit_cluster_calls_refused_total', 'replayed')).toBe(1);
    expect(await metric(b, 'snakepit_cluster_calls_refused_total', 'bad_mac')).toBe(2);
    expect(await metric(b, 'snakepit_cluster_calls_refused_total', 'outside_window')).toBe(1);

    // A node that knows only another secret (right certificates, so TLS lets it in): refused, and the error says why.
    const stranger = new ClusterClient(clusterOptions({ secret: UNKNOWN_SECRET, nodeId: 'node-x' }));
    try {
      const peer: NodeRecord = { id: 'node-b', address: addressOfB, version: 'test', startedAt: 0, pools: [] };
      await expect(stranger.execute(peer, addCall(1), 5_000)).rejects.toMatchObject({
        code: 'WORKER_UNAVAILABLE',
        message: 'Node node-b refused the call: cluster call refused: bad_mac',
        details: { node: 'node-b', reason: 'cluster_secret_rejected' },
      });
    } finally {
      stranger.close();
    }
  });

  it('refuses a caller without a client certificate or with one from another CA, and a server certificate from another CA', async () => {
    const addressOfB = await addressOf('node-b');
    const foreign = foreignPki.issue('node-foreign');
    const call = signedRequest('Execute', addCall(1), OLD_SECRET, { from: 'node-a', to: 'node-b' });
    const attempts: Array<[string, grpc.ChannelCredentials]> = [
      ['no client certificate', grpc.credentials.createSsl(readFileSync(pki.ca))],
      ['a client certificate of another CA', grpc.credentials.createSsl(readFileSync(pki.ca), readFileSync(foreign.key), readFileSync(foreign.cert))],
      ['trusting only another CA', grpc.credentials.createSsl(readFileSync(foreignPki.ca), readFileSync(foreign.key), readFileSync(foreign.cert))],
    ];
    for (const [what, credentials] of attempts) {
      const raw = rawClient(addressOfB, credentials);
      try {
        await expect(unary(raw, call.bytes, call.metadata)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      } catch (error) {
        throw new Error(`${what}: ${(error as Error).message}`, { cause: error });
      } finally {
        raw.close();
      }
    }
    // The node itself, trusting another CA, refuses node-b's certificate: the call fails as unreachable, never sent.
    const foreignNode = new ClusterClient(
      clusterOptions({ secret: OLD_SECRET, nodeId: 'node-a', tls: { ca: foreignPki.ca, cert: foreign.cert, key: foreign.key } }),
    );
    try {
      const peer: NodeRecord = { id: 'node-b', address: addressOfB, version: 'test', startedAt: 0, pools: [] };
      await expect(foreignNode.execute(peer, addCall(1), 5_000)).rejects.toMatchObject({
        code: 'WORKER_UNAVAILABLE',
        details: { node: 'node-b', reason: 'node_unreachable' },
      });
    } finally {
      foreignNode.close();
    }
    // The same bytes with the right certificate go through: what failed above was the handshake.
    const raw = rawClient(addressOfB, trusted());
    try {
      expect((await unary(raw, call.bytes, call.metadata)).outcome).toBe('result');
    } finally {
      raw.close();
    }
  });

  it('fails start with a clear error when Redis refuses the password, its certificate is not signed by the configured CA, or it wants a client certificate', async () => {
    const tlsFiles = { ...redis.clientCertificate!, servername: 'localhost' };
    const attempt = async (options: Partial<ClusterOptions>) => {
      const connection = new RedisConnection(
        clusterOptions({ redis: redis.url, redisTls: { ...tlsFiles, ca: pki.ca }, redisCommandTimeoutMs: 500, ...options }),
      );
      try {
        await connection.onModuleInit();
        return 'connected';
      } catch (error) {
        return (error as Error).message;
      } finally {
        await connection.onApplicationShutdown();
      }
    };
    expect(await attempt({})).toBe('connected');
    expect(await attempt({ redis: redis.urlWith({ name: USER.name, password: 'wrong-password' }) })).toMatch(
      /cluster\.redis: Redis at rediss:\/\/\*\*\*@127\.0\.0\.1:\d+ refused this node: WRONGPASS/,
    );
    expect(await attempt({ redisTls: { ...tlsFiles, ca: foreignPki.ca } })).toMatch(/refused this node: .*(certificate|CERT)/i);
    expect(await attempt({ redisTls: { ca: pki.ca, servername: 'localhost' } })).toMatch(/refused this node: /);
  });

  function clusterOptions(overrides: Partial<ClusterOptions>) {
    return resolveClusterOptions({
      redis: redis.url,
      secret: OLD_SECRET,
      nodeId: 'node-test',
      tls: { ca: pki.ca, cert: client.cert, key: client.key },
      ...overrides,
    });
  }
});

import { expect } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { createServer, type Server, type Socket } from 'node:net';
import { firstValueFrom } from 'rxjs';
import { TcpProxy } from '../../../../../test/helpers/tcp-proxy';
import { eventually, freePort } from '../../../../../test/helpers/sample-app';
import { resolveClusterOptions } from '../cluster-options';
import type { NodeRecord } from '../membership/node-record';
import { ClusterClient, NODE_LOST, NODE_UNREACHABLE } from './cluster-client';
import type { ClusterNodeHandlers, ForwardedReply__Output } from './cluster-messages';
import { clusterNodeService } from './cluster-proto';

jest.setTimeout(20_000);

// A short heartbeat and window: keepalive pings every 100 ms, and a connection that cannot be made fails within 400 ms.
const options = () => resolveClusterOptions({ redis: 'redis://r', secret: 'a-secret-of-16-chars', nodeId: 'a', heartbeatIntervalMs: 100, nodeTtlMs: 400 });
const peer = (address: string): NodeRecord => ({ id: 'b', address, version: 'test', startedAt: 0, pools: [] });
/** A budget far past anything the test waits for: a call that settles did so for another reason than its deadline. */
const LONG_BUDGET_MS = 60_000;

describe('ClusterClient', () => {
  it('refuses new forwards once draining, as the local pools refuse new calls', async () => {
    const client = new ClusterClient(options());
    await expect(client.drain(1_000)).resolves.toBe(true);
    const refusal = { code: 'SHUTTING_DOWN', details: { pool: 'p' } };
    await expect(client.execute(peer('127.0.0.1:1'), { tool: 't', pool: 'p' }, 1_000)).rejects.toMatchObject(refusal);
    await expect(firstValueFrom(client.stream(peer('127.0.0.1:1'), { tool: 't', pool: 'p' }, 1_000))).rejects.toMatchObject(refusal);
    client.close();
  });

  describe('when the path to a node breaks', () => {
    const closers: Array<() => unknown> = [];
    afterEach(async () => {
      for (const close of closers.splice(0).reverse()) await close();
    });

    /** A real ClusterNode server: `quick` answers at once, `hang` never does (until the test ends). */
    async function nodeServer(): Promise<{ port: number; received: string[] }> {
      const received: string[] = [];
      const server = new grpc.Server();
      const reply: ForwardedReply__Output = { nodeId: 'b', result: { value: { json: Buffer.from('1'), blobs: [] }, workerId: 'p-1', pid: 1 } };
      const handlers: Partial<ClusterNodeHandlers> = {
        Execute: (call, callback) => {
          received.push(call.request.tool);
          if (call.request.tool === 'quick') callback(null, reply);
        },
      };
      server.addService(clusterNodeService().service, handlers as ClusterNodeHandlers);
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
      );
      closers.push(() => server.forceShutdown());
      return { port, received };
    }

    function clusterClient(): ClusterClient {
      const client = new ClusterClient(options());
      closers.push(() => client.close());
      return client;
    }

    it("relies on grpc-js's wording for a call it had no connection for (the pinned version's text)", async () => {
      const port = await freePort(); // released: nothing listens there
      const raw = new (clusterNodeService())(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      closers.push(() => raw.close());
      const error = await new Promise<grpc.ServiceError>((resolve) =>
        raw.Execute({ tool: 't', pool: 'p' }, { deadline: Date.now() + LONG_BUDGET_MS }, (e) => resolve(e!)),
      );
      expect(error.code).toBe(grpc.status.UNAVAILABLE);
      expect(error.details).toMatch(/^No connection established/);
    });

    it('fails a call to a port nobody listens on as unreachable: never sent', async () => {
      const port = await freePort();
      const call = clusterClient().execute(peer(`127.0.0.1:${port}`), { tool: 't', pool: 'p' }, LONG_BUDGET_MS);
      await expect(call).rejects.toMatchObject({ code: 'WORKER_UNAVAILABLE', details: { node: 'b', pool: 'p', tool: 't', reason: NODE_UNREACHABLE } });
    });

    it('fails a call as unreachable when the handshake goes unanswered, within the connect window rather than its budget', async () => {
      // Accepts and reads, never answers: a partition that swallows packets once the TCP handshake is done.
      const sockets = new Set<Socket>();
      const silent: Server = createServer((socket) => {
        sockets.add(socket);
        socket.resume();
      });
      const port = await new Promise<number>((resolve) => silent.listen(0, '127.0.0.1', () => resolve((silent.address() as { port: number }).port)));
      closers.push(() => new Promise((resolve) => silent.close(resolve)));
      closers.push(() => sockets.forEach((socket) => socket.destroy()));
      const call = clusterClient().execute(peer(`127.0.0.1:${port}`), { tool: 't', pool: 'p' }, LONG_BUDGET_MS);
      await expect(call).rejects.toMatchObject({
        code: 'WORKER_UNAVAILABLE',
        details: { reason: NODE_UNREACHABLE },
        message: expect.stringMatching(/not sent/),
      });
    });

    /** A node server reached through a TcpProxy, and a client that already made one call through it. */
    async function throughProxy() {
      const server = await nodeServer();
      const proxy = await TcpProxy.start({ host: '127.0.0.1', port: server.port });
      closers.push(() => proxy.dispose());
      const client = clusterClient();
      const node = peer(proxy.address);
      await expect(client.execute(node, { tool: 'quick', pool: 'p' }, LONG_BUDGET_MS)).resolves.toMatchObject({ workerId: 'p-1' });
      return { server, proxy, client, node };
    }

    it('notices a blackholed connection by keepalive: the call in flight fails as lost, long before its budget', async () => {
      const { server, proxy, client, node } = await throughProxy();

      const hanging = client.execute(node, { tool: 'hang', pool: 'p' }, LONG_BUDGET_MS);
      await eventually(() => server.received.includes('hang') || undefined, 5_000, 10);
      proxy.cut('blackhole');
      await expect(hanging).rejects.toMatchObject({ code: 'WORKER_UNAVAILABLE', details: { node: 'b', reason: NODE_LOST } });
      expect(proxy.dropped).toBeGreaterThan(0); // the pings went into the hole
      expect(client.inflightTo('b')).toBe(0);
    });

    it('fails calls at once while the path is reset, and forwards again after it heals, on the same client', async () => {
      const { proxy, client, node } = await throughProxy();

      proxy.cut('reset');
      const during = await Promise.allSettled([1, 2, 3].map(() => client.execute(node, { tool: 'quick', pool: 'p' }, LONG_BUDGET_MS)));
      for (const outcome of during) {
        expect(outcome.status).toBe('rejected');
        if (outcome.status === 'rejected')
          expect(outcome.reason).toMatchObject({ code: 'WORKER_UNAVAILABLE', details: { reason: expect.stringMatching(/^node_(unreachable|lost)$/) } });
      }
      proxy.heal();
      const after = await eventually(() => client.execute(node, { tool: 'quick', pool: 'p' }, LONG_BUDGET_MS).catch(() => undefined), 10_000, 100);
      expect(after).toMatchObject({ workerId: 'p-1' });
    });
  });
});

import * as grpc from '@grpc/grpc-js';
import { Observable } from 'rxjs';
import { decodePayload } from '../../bridge/payload';
import { workerChannelOptions } from '../../bridge/proto';
import { SnakepitError } from '../../errors/snakepit-error';
import type { StreamChunk } from '../../pool/pool.service';
import type { ResolvedClusterOptions } from '../cluster-options';
import type { NodeRecord } from '../membership/node-record';
import type { ClusterNodeClient, ForwardedCall, ForwardedFrame__Output, ForwardedResult__Output } from './cluster-messages';
import { clusterNodeService, secretMetadata } from './cluster-proto';
import { decodeError } from './wire-values';

/** Why a forwarded call failed without an answer from the node. */
export const NODE_LOST = 'node_lost';

/** A forwarded call in flight, cancellable when its node leaves the cluster. */
type LoseCall = () => void;

/**
 * The calling side of the internal ClusterNode service: one channel per peer,
 * calls forwarded with the cluster secret, answers turned back into results,
 * chunks and SnakepitErrors. A call whose node dies, leaves or cannot be
 * reached fails at once with WORKER_UNAVAILABLE (details.reason `node_lost`).
 */
export class ClusterClient {
  private readonly channels = new Map<string, { address: string; client: ClusterNodeClient }>();
  private readonly inflight = new Map<string, Set<LoseCall>>();
  private readonly retiring = new Set<string>();
  private draining = false;

  constructor(private readonly cluster: ResolvedClusterOptions) {}

  /**
   * Shutdown: refuses new calls with SHUTTING_DOWN, as the local pools do, and
   * waits up to `timeoutMs` for the calls in flight. Resolves whether they all finished.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.draining = true;
    const deadline = Date.now() + timeoutMs;
    while (this.inflight.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    return this.inflight.size === 0;
  }

  /** Calls forwarded to `nodeId` and not answered yet (a load signal fresher than the heartbeat). */
  inflightTo(nodeId: string): number {
    return this.inflight.get(nodeId)?.size ?? 0;
  }

  execute(node: NodeRecord, call: ForwardedCall, budgetMs: number, signal?: AbortSignal): Promise<ForwardedResult__Output> {
    return new Promise((resolve, reject) => {
      if (this.draining) return reject(shuttingDown(call));
      let lost = false;
      const rpc = this.client(node).Execute(call, secretMetadata(this.cluster.secret), { deadline: Date.now() + budgetMs }, (error, reply) => {
        untrack();
        signal?.removeEventListener('abort', cancel);
        if (error) reject(this.transportError(node, call, error, lost, signal));
        else if (reply!.outcome === 'result') resolve(reply!.result!);
        else reject(decodeError(reply!.error, reply!.nodeId || node.id));
      });
      const cancel = () => rpc.cancel();
      const untrack = this.track(node.id, () => {
        lost = true;
        rpc.cancel();
      });
      if (signal?.aborted) cancel();
      else signal?.addEventListener('abort', cancel, { once: true });
    });
  }

  /** Chunks of a forwarded streaming call; unsubscribing cancels it on the node that runs it. */
  stream(node: NodeRecord, call: ForwardedCall, budgetMs: number, signal?: AbortSignal): Observable<StreamChunk> {
    return new Observable<StreamChunk>((subscriber) => {
      if (this.draining) return subscriber.error(shuttingDown(call));
      let lost = false;
      let settled = false;
      const rpc = this.client(node).ExecuteStream(call, secretMetadata(this.cluster.secret), { deadline: Date.now() + budgetMs });
      const cancel = () => rpc.cancel();
      const untrack = this.track(node.id, () => {
        lost = true;
        rpc.cancel();
      });
      const settle = (finish: () => void) => {
        if (settled) return;
        settled = true;
        untrack();
        signal?.removeEventListener('abort', cancel);
        finish();
      };
      rpc.on('data', (frame: ForwardedFrame__Output) => {
        if (frame.kind === 'chunk') subscriber.next({ data: decodePayload(frame.chunk!.value), seq: frame.chunk!.seq });
        else settle(() => subscriber.error(decodeError(frame.error, node.id)));
      });
      rpc.on('error', (error: grpc.ServiceError) => settle(() => subscriber.error(this.transportError(node, call, error, lost, signal))));
      rpc.on('end', () => settle(() => subscriber.complete()));
      if (signal?.aborted) cancel();
      else signal?.addEventListener('abort', cancel, { once: true });
      return () => settle(cancel);
    });
  }

  /** The node died or restarted: fail its calls in flight now and drop its channel. */
  lose(nodeId: string): void {
    for (const lose of [...(this.inflight.get(nodeId) ?? [])]) lose();
    this.drop(nodeId);
  }

  /** The node deregistered and drains: its calls in flight finish, then its channel closes. */
  retire(nodeId: string): void {
    if (this.inflightTo(nodeId) === 0) this.drop(nodeId);
    else this.retiring.add(nodeId);
  }

  close(): void {
    for (const nodeId of [...this.channels.keys()]) this.lose(nodeId);
  }

  private drop(nodeId: string): void {
    this.retiring.delete(nodeId);
    this.channels.get(nodeId)?.client.close();
    this.channels.delete(nodeId);
  }

  private client(node: NodeRecord): ClusterNodeClient {
    this.retiring.delete(node.id); // routed to again: it is back
    const known = this.channels.get(node.id);
    if (known?.address === node.address) return known.client;
    known?.client.close();
    const client = new (clusterNodeService())(node.address, grpc.credentials.createInsecure(), {
      ...workerChannelOptions(-1), // size limits are the pools' business, checked on both sides
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2_000,
    });
    this.channels.set(node.id, { address: node.address, client });
    return client;
  }

  private track(nodeId: string, lose: LoseCall): () => void {
    let calls = this.inflight.get(nodeId);
    if (!calls) this.inflight.set(nodeId, (calls = new Set()));
    calls.add(lose);
    return () => {
      calls.delete(lose);
      if (calls.size > 0 || this.inflight.get(nodeId) !== calls) return;
      this.inflight.delete(nodeId);
      if (this.retiring.has(nodeId)) this.drop(nodeId);
    };
  }

  private transportError(node: NodeRecord, call: ForwardedCall, error: grpc.ServiceError, lost: boolean, signal?: AbortSignal): SnakepitError {
    const details = { node: node.id, pool: call.pool, tool: call.tool };
    if (signal?.aborted) return new SnakepitError('CANCELLED', `The caller cancelled ${call.tool}`, { details });
    if (lost) {
      return new SnakepitError('WORKER_UNAVAILABLE', `Node ${node.id} left the cluster during the call`, { details: { ...details, reason: NODE_LOST } });
    }
    if (error.code === grpc.status.DEADLINE_EXCEEDED) {
      return new SnakepitError('TIMEOUT', `Node ${node.id} did not answer within the call's budget`, { details, cause: error });
    }
    if (error.code === grpc.status.UNAUTHENTICATED) {
      return new SnakepitError('WORKER_UNAVAILABLE', `Node ${node.id} refused this node's cluster secret`, {
        details: { ...details, reason: 'cluster_secret_rejected' },
        cause: error,
      });
    }
    return new SnakepitError('WORKER_UNAVAILABLE', `Node ${node.id} was lost during the call: ${error.details || error.message}`, {
      details: { ...details, reason: NODE_LOST, grpcCode: error.code },
      cause: error,
    });
  }
}

function shuttingDown(call: ForwardedCall): SnakepitError {
  return new SnakepitError('SHUTTING_DOWN', 'Snakepit is shutting down', { details: { pool: call.pool } });
}

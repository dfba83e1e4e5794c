import * as grpc from '@grpc/grpc-js';
import { defer, from, Observable, switchMap, throwError } from 'rxjs';
import { decodePayload } from '../../bridge/payload';
import { workerChannelOptions } from '../../bridge/proto';
import { SnakepitError } from '../../errors/snakepit-error';
import type { StreamChunk } from '../../pool/pool.service';
import type { ResolvedClusterOptions } from '../cluster-options';
import type { NodeRecord } from '../membership/node-record';
import type { ClusterNodeClient, ForwardedCall, ForwardedFrame__Output, ForwardedReply__Output, ForwardedResult__Output } from './cluster-messages';
import { channelCredentials, channelTlsOptions } from '../security/tls';
import { clusterMethod, clusterNodeService, sendAsIs, signedRequest } from './cluster-proto';
import { decodeError } from './wire-values';

/** Why a forwarded call failed without an answer from the node. */
export const NODE_LOST = 'node_lost';
/** The call never reached the node (no connection could be made): safe to run elsewhere. */
export const NODE_UNREACHABLE = 'node_unreachable';
/** The call was sent but the node did not answer within the budget: it may have run. */
export const NODE_UNRESPONSIVE = 'node_unresponsive';

/** A forwarded call in flight, cancellable when its node leaves the cluster. */
type LoseCall = () => void;

/**
 * The calling side of the internal ClusterNode service: one channel per peer
 * (TLS when `cluster.tls` is set), each call signed (cluster-proto.ts), answers turned back into results,
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
    if (this.draining) return Promise.reject(shuttingDown(call));
    const deadline = Date.now() + budgetMs;
    return this.reach(node, call, deadline, signal).then(() => this.send(node, call, deadline - Date.now(), signal));
  }

  /** Chunks of a forwarded streaming call; unsubscribing cancels it on the node that runs it. */
  stream(node: NodeRecord, call: ForwardedCall, budgetMs: number, signal?: AbortSignal): Observable<StreamChunk> {
    return defer(() => {
      if (this.draining) return throwError(() => shuttingDown(call));
      const deadline = Date.now() + budgetMs;
      return from(this.reach(node, call, deadline, signal)).pipe(switchMap(() => this.open(node, call, deadline - Date.now(), signal)));
    });
  }

  private send(node: NodeRecord, call: ForwardedCall, budgetMs: number, signal?: AbortSignal): Promise<ForwardedResult__Output> {
    return new Promise((resolve, reject) => {
      if (this.draining) return reject(shuttingDown(call));
      let lost = false;
      const { bytes, metadata } = signedRequest('Execute', call, this.cluster.secret, { from: this.cluster.nodeId, to: node.id });
      const method = clusterMethod('Execute');
      const deserialize = method.responseDeserialize as (bytes: Buffer) => ForwardedReply__Output;
      const rpc = this.client(node).makeUnaryRequest(
        method.path,
        sendAsIs,
        deserialize,
        bytes,
        metadata,
        { deadline: Date.now() + budgetMs },
        (error, reply) => {
          untrack();
          signal?.removeEventListener('abort', cancel);
          if (error) reject(this.transportError(node, call, error, lost, signal));
          else if (reply!.outcome === 'result') resolve(reply!.result!);
          else reject(decodeError(reply!.error, reply!.nodeId || node.id));
        },
      );
      const cancel = () => rpc.cancel();
      const untrack = this.track(node.id, () => {
        lost = true;
        rpc.cancel();
      });
      if (signal?.aborted) cancel();
      else signal?.addEventListener('abort', cancel, { once: true });
    });
  }

  private open(node: NodeRecord, call: ForwardedCall, budgetMs: number, signal?: AbortSignal): Observable<StreamChunk> {
    return new Observable<StreamChunk>((subscriber) => {
      if (this.draining) return subscriber.error(shuttingDown(call));
      let lost = false;
      let settled = false;
      const { bytes, metadata } = signedRequest('ExecuteStream', call, this.cluster.secret, { from: this.cluster.nodeId, to: node.id });
      const method = clusterMethod('ExecuteStream');
      const deserialize = method.responseDeserialize as (bytes: Buffer) => ForwardedFrame__Output;
      const rpc = this.client(node).makeServerStreamRequest(method.path, sendAsIs, deserialize, bytes, metadata, { deadline: Date.now() + budgetMs });
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
    const client = new (clusterNodeService())(node.address, channelCredentials(this.cluster.tls), {
      ...workerChannelOptions(-1), // size limits are the pools' business, checked on both sides
      ...channelTlsOptions(this.cluster.tls),
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2_000,
      // A path that goes silent (a partition that drops packets) is noticed like a lost node: a ping every
      // heartbeat, and no answer within the failure-detection window drops the connection and fails its calls.
      'grpc.keepalive_time_ms': this.cluster.heartbeatIntervalMs,
      'grpc.keepalive_timeout_ms': this.cluster.nodeTtlMs,
      'grpc.keepalive_permit_without_calls': 1,
    });
    this.channels.set(node.id, { address: node.address, client });
    return client;
  }

  /**
   * Resolves once the channel to `node` is connected, so a call is sent only
   * over a working connection. When none can be made (the node refuses or is
   * down, the channel is backing off after a failed attempt, or a partition
   * swallows the handshake until the connect deadline) the call fails with
   * reason `node_unreachable`: it never reached the node, so it may run elsewhere.
   */
  private reach(node: NodeRecord, call: ForwardedCall, deadline: number, signal?: AbortSignal): Promise<void> {
    const channel = this.client(node).getChannel();
    const initial = channel.getConnectivityState(true);
    if (initial === grpc.connectivityState.READY) return Promise.resolve();
    // Never longer than one failure-detection window, so a retry elsewhere still has budget left.
    const connectBy = Math.min(deadline, Date.now() + this.cluster.nodeTtlMs);
    const waitMs = Math.max(0, connectBy - Date.now());
    const details = { node: node.id, pool: call.pool, tool: call.tool, reason: NODE_UNREACHABLE };
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (error?: SnakepitError) => {
        if (done) return;
        done = true;
        signal?.removeEventListener('abort', abort);
        if (error) reject(error);
        else resolve();
      };
      const abort = () =>
        finish(new SnakepitError('CANCELLED', `The caller cancelled ${call.tool}`, { details: { node: node.id, pool: call.pool, tool: call.tool } }));
      const unreachable = (why: string) =>
        finish(new SnakepitError('WORKER_UNAVAILABLE', `Node ${node.id} is unreachable (${why}); the call was not sent`, { details }));
      const watch = (state: grpc.connectivityState) => {
        if (state === grpc.connectivityState.READY) return finish();
        if (state === grpc.connectivityState.TRANSIENT_FAILURE) return unreachable('its last connection attempt failed');
        if (state === grpc.connectivityState.SHUTDOWN) return unreachable('it left the cluster');
        channel.watchConnectivityState(state, connectBy, (error?: Error) =>
          error ? unreachable(`no connection within ${waitMs} ms`) : watch(channel.getConnectivityState(true)),
        );
      };
      if (signal?.aborted) return abort();
      signal?.addEventListener('abort', abort, { once: true });
      watch(initial);
    });
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
      return new SnakepitError('TIMEOUT', `Node ${node.id} did not answer within the call's budget`, {
        details: { ...details, reason: NODE_UNRESPONSIVE },
        cause: error,
      });
    }
    if (error.code === grpc.status.UNAUTHENTICATED) {
      // The node did not accept the call's MAC (another secret), its time (clock skew) or its nonce (a replay).
      return new SnakepitError('WORKER_UNAVAILABLE', `Node ${node.id} refused the call: ${error.details}`, {
        details: { ...details, reason: 'cluster_secret_rejected' },
        cause: error,
      });
    }
    // grpc-js fails a call it could not give a connection with this text (pinned version; cluster-client.spec checks it).
    if (error.code === grpc.status.UNAVAILABLE && error.details.startsWith('No connection established')) {
      return new SnakepitError('WORKER_UNAVAILABLE', `Node ${node.id} is unreachable; the call was not sent: ${error.details}`, {
        details: { ...details, reason: NODE_UNREACHABLE, grpcCode: error.code },
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

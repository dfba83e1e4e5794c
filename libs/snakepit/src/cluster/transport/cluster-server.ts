import * as grpc from '@grpc/grpc-js';
import { decodePayload } from '../../bridge/payload';
import { toSnakepitError } from '../../errors/snakepit-error';
import type { ExecuteOptions, PoolService } from '../../pool/pool.service';
import { parseHostPort, type ResolvedClusterOptions } from '../cluster-options';
import type { ClusterNodeHandlers, ForwardedCall__Output } from './cluster-messages';
import { clusterNodeService, presentsSecret } from './cluster-proto';
import { encodeError, encodeValue } from './wire-values';
import { SnakepitLogger } from '../../logging/snakepit-logger';

/** Envelope allowance on top of the largest argument payload a local pool accepts. */
const ENVELOPE_BYTES = 1024 * 1024;

/**
 * This node's side of the internal ClusterNode service: runs calls other nodes
 * forward, on local pools only, and answers with the result or the error as
 * PoolService produced it. Cancelling the RPC cancels the call here.
 */
export class ClusterServer {
  private readonly logger = new SnakepitLogger('SnakepitCluster');
  private server?: grpc.Server;

  constructor(
    private readonly cluster: ResolvedClusterOptions,
    private readonly pools: PoolService,
    private readonly maxPayloadBytes: number,
  ) {}

  /** Starts serving on `cluster.listen`; resolves with the address other nodes should dial. */
  async start(): Promise<string> {
    // Channelz off: it costs per call and nothing here reads it.
    const server = new grpc.Server({ 'grpc.max_receive_message_length': this.maxPayloadBytes + ENVELOPE_BYTES, 'grpc.enable_channelz': 0 });
    server.addService(clusterNodeService().service, this.handlers());
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(this.cluster.listen, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    this.server = server;
    const advertised = this.cluster.advertiseAddress ?? `${parseHostPort(this.cluster.listen)!.host}:${port}`;
    this.logger.log({ msg: 'cluster service listening', node: this.cluster.nodeId, listen: this.cluster.listen, port, advertised });
    return advertised;
  }

  /** Lets forwarded calls still running finish (up to `graceMs`), then closes every connection. */
  async stop(graceMs: number): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private handlers(): ClusterNodeHandlers {
    const nodeId = this.cluster.nodeId;
    return {
      Execute: (call, callback) => {
        if (!this.authorized(call)) return callback(unauthenticated());
        const cancelled = new AbortController();
        call.on('cancelled', () => cancelled.abort());
        const { tool, args } = call.request;
        this.pools.execute(tool, decodePayload(args), this.localOptions(call.request, cancelled.signal)).then(
          (out) => callback(null, { nodeId, result: { value: encodeValue(out.result), workerId: out.workerId, pid: out.pid } }),
          (error: unknown) => callback(null, { nodeId, error: encodeError(toSnakepitError(error)) }),
        );
      },
      ExecuteStream: (call) => {
        if (!this.authorized(call)) {
          call.emit('error', unauthenticated());
          return;
        }
        const { tool, args } = call.request;
        const subscription = this.pools.executeStream(tool, decodePayload(args), this.localOptions(call.request)).subscribe({
          next: (chunk) => call.write({ chunk: { value: encodeValue(chunk.data), seq: chunk.seq } }),
          error: (error: unknown) => {
            call.write({ error: encodeError(toSnakepitError(error)) });
            call.end();
          },
          complete: () => call.end(),
        });
        // The calling node's subscriber went away: unsubscribing cancels the Python generator.
        call.on('cancelled', () => subscription.unsubscribe());
      },
    };
  }

  private authorized(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): boolean {
    if (presentsSecret(call.metadata, this.cluster.secret)) return true;
    this.logger.warn({ msg: 'refused a cluster call without the cluster secret', peer: call.getPeer() });
    return false;
  }

  private localOptions(request: ForwardedCall__Output, signal?: AbortSignal): ExecuteOptions {
    return {
      pool: request.pool,
      sessionId: request.sessionId || undefined,
      timeoutMs: request.timeoutMs,
      metadata: request.metadata,
      idempotent: request.idempotent,
      signal,
      localOnly: true,
    };
  }
}

function unauthenticated(): grpc.StatusObject {
  return { code: grpc.status.UNAUTHENTICATED, details: 'the cluster secret is missing or wrong', metadata: new grpc.Metadata() };
}

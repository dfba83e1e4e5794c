import * as grpc from '@grpc/grpc-js';
import { decodePayload } from '../../bridge/payload';
import { toSnakepitError } from '../../errors/snakepit-error';
import type { ExecuteOptions, PoolService } from '../../pool/pool.service';
import { parseHostPort, type ResolvedClusterOptions } from '../cluster-options';
import type { TelemetryService } from '../../telemetry/telemetry.service';
import { CallVerifier, type CallRefusal } from '../security/call-auth';
import { LogLimiter } from '../security/log-limiter';
import { serverCredentials } from '../security/tls';
import type { ClusterNodeHandlers, ForwardedCall__Output } from './cluster-messages';
import { clusterMethod, digestingServiceDefinition, digestOf, metadataReader, type ClusterMethod } from './cluster-proto';
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
  private readonly verifier: CallVerifier;
  private readonly refusalLogs = new LogLimiter();
  private server?: grpc.Server;

  constructor(
    private readonly cluster: ResolvedClusterOptions,
    private readonly pools: PoolService,
    private readonly maxPayloadBytes: number,
    private readonly telemetry?: TelemetryService,
  ) {
    this.verifier = new CallVerifier(cluster.nodeId, cluster.verifySecrets);
  }

  /** Starts serving on `cluster.listen`; resolves with the address other nodes should dial. */
  async start(): Promise<string> {
    const server = new grpc.Server({
      'grpc.max_receive_message_length': this.maxPayloadBytes + ENVELOPE_BYTES,
      // Channelz off: it costs per call and nothing here reads it.
      'grpc.enable_channelz': 0,
      // Pings to each calling node, as the client pings this one: a caller cut off (a partition, a dead host)
      // is detected within the failure window, and its calls here are cancelled instead of running on for nobody.
      'grpc.keepalive_time_ms': this.cluster.heartbeatIntervalMs,
      'grpc.keepalive_timeout_ms': this.cluster.nodeTtlMs,
    });
    server.addService(digestingServiceDefinition(), this.handlers());
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(this.cluster.listen, serverCredentials(this.cluster.tls), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    this.server = server;
    const listen = parseHostPort(this.cluster.listen)!;
    const advertised = this.cluster.advertiseAddress ?? `${listen.host}:${port}`;
    const tls = this.cluster.tls ? (this.cluster.tls.requireClientCert ? 'mutual' : 'server') : 'off';
    this.logger.log({ msg: 'cluster service listening', node: this.cluster.nodeId, listen: this.cluster.listen, port, advertised, tls });
    if (!this.cluster.tls && !LOOPBACK.has(listen.host)) {
      this.logger.warn({
        msg: 'the internal cluster service is plaintext on a non-loopback address: calls and results can be read on the network; set cluster.tls',
        listen: this.cluster.listen,
      });
    }
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
        const refusal = this.refusal(call, 'Execute');
        if (refusal) return callback(unauthenticated(refusal));
        const cancelled = new AbortController();
        call.on('cancelled', () => cancelled.abort());
        const { tool, args } = call.request;
        this.pools.execute(tool, decodePayload(args), this.localOptions(call.request, cancelled.signal)).then(
          (out) => callback(null, { nodeId, result: { value: encodeValue(out.result), workerId: out.workerId, pid: out.pid } }),
          (error: unknown) => callback(null, { nodeId, error: encodeError(toSnakepitError(error)) }),
        );
      },
      ExecuteStream: (call) => {
        const refusal = this.refusal(call, 'ExecuteStream');
        if (refusal) {
          call.emit('error', unauthenticated(refusal));
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

  /** Why the call is refused (its MAC, time window or nonce), or undefined when it is authentic and new. */
  private refusal(
    call: grpc.ServerUnaryCall<ForwardedCall__Output, unknown> | grpc.ServerWritableStream<ForwardedCall__Output, unknown>,
    method: ClusterMethod,
  ): CallRefusal | undefined {
    const verdict = this.verifier.verify(clusterMethod(method).path, digestOf(call.request), metadataReader(call.metadata));
    if (verdict.ok) return undefined;
    const peer = call.getPeer();
    this.telemetry?.emit('cluster.call_refused', { reason: verdict.reason, peer });
    if (this.refusalLogs.allow(`${peer.replace(/:\d+$/, '')} ${verdict.reason}`))
      this.logger.warn({ msg: 'refused a cluster call', reason: verdict.reason, peer });
    return verdict.reason;
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

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** The refusal the caller sees: UNAUTHENTICATED with the reason (nothing secret in it). */
function unauthenticated(reason: CallRefusal): grpc.StatusObject {
  return { code: grpc.status.UNAUTHENTICATED, details: `cluster call refused: ${reason}`, metadata: new grpc.Metadata() };
}

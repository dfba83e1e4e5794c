import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { SnakepitError } from '../errors/snakepit-error';
import type { CallRequest } from './generated/snakepit/bridge/v1/CallRequest';
import type { ErrorInfo } from './generated/snakepit/bridge/v1/ErrorInfo';
import type { HostCall__Output } from './generated/snakepit/bridge/v1/HostCall';
import type { Payload } from './generated/snakepit/bridge/v1/Payload';
import type { StreamCredit } from './generated/snakepit/bridge/v1/StreamCredit';
import type { ToolSpec } from './generated/snakepit/bridge/v1/ToolSpec';
import type { DescribeResponse__Output } from './generated/snakepit/bridge/v1/DescribeResponse';
import type { HostFrame } from './generated/snakepit/bridge/v1/HostFrame';
import type { HostMessage } from './generated/snakepit/bridge/v1/HostMessage';
import type { WorkerBridgeClient } from './generated/snakepit/bridge/v1/WorkerBridge';
import type { WorkerFrame__Output } from './generated/snakepit/bridge/v1/WorkerFrame';
import type { WorkerMessage__Output } from './generated/snakepit/bridge/v1/WorkerMessage';
import type { SharedPayloads } from '../shared-memory/shared-memory.interfaces';
import { errorInfoOf } from './error-info';
import { hostMessageBytes } from './frame-size';
import { loadBridgePackage, workerChannelOptions } from './proto';

/** Metadata key carrying the per-run secret every worker RPC must present. */
export const TOKEN_METADATA_KEY = 'x-snakepit-token';

interface HealthClient {
  Check(
    request: { service: string },
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response?: { status: string | number }) => void,
  ): void;
}

const HealthClientConstructor = grpc.makeGenericClientConstructor(healthService, 'grpc.health.v1.Health');

/** A running Python tool asks the host to run a host tool; `parentId` is that tool's call id. */
export type HostCallListener = (parentId: number, call: HostCall__Output) => void;

/** What the channel tells the owner of one call. */
export interface CallListener {
  /** A StreamChunk for this call (streaming tools only). */
  chunk(message: WorkerMessage__Output): void;
  /** The call's one terminal message: result, error or cancelled. */
  end(message: WorkerMessage__Output): void;
  /**
   * The stream broke before the terminal message arrived. `delivered` is
   * false when the call was still waiting in the outbox: it never left the
   * host, so it may run elsewhere.
   */
  broken(error: SnakepitError, delivered: boolean): void;
}

/**
 * The host end of one worker's multiplexed bidi stream. Calls get request ids;
 * messages written together are coalesced into HostFrames (gRPC's cost is per
 * message, so batching is what makes the stream fast under load), each kept
 * under the message limit: a burst of calls that would not fit one message is
 * split across several. A broken stream is marked unusable first, then fails
 * every call in flight on it at once.
 */
export class WorkerChannel {
  private readonly client: WorkerBridgeClient;
  private readonly health: HealthClient;
  private readonly metadata: grpc.Metadata;
  private stream?: grpc.ClientDuplexStream<HostFrame, WorkerFrame__Output>;
  private readonly inFlight = new Map<number, CallListener>();
  private outbox: HostMessage[] = [];
  /** Calls still in the outbox: if the stream breaks now, they never reached the worker. */
  private readonly unsent = new Set<number>();
  /** Credit messages still in the outbox, by call id, so later credits merge into them. */
  private readonly queuedCredit = new Map<number, StreamCredit>();
  /** The release message still in the outbox, so slots read later in the same tick join it. */
  private queuedRelease?: number[];
  private flushScheduled = false;
  private nextId = 1;
  private brokenWith?: SnakepitError;
  private onBroken?: (error: SnakepitError) => void;
  private onHostCall?: HostCallListener;

  /** `shared`: the worker's shared-memory regions, when its pool uses them. */
  constructor(
    address: string,
    token: string,
    private readonly maxMessageBytes: number,
    private readonly shared?: SharedPayloads,
  ) {
    const { WorkerBridge } = loadBridgePackage().snakepit.bridge.v1;
    this.client = new WorkerBridge(address, grpc.credentials.createInsecure(), workerChannelOptions(maxMessageBytes));
    this.metadata = new grpc.Metadata();
    this.metadata.set(TOKEN_METADATA_KEY, token);
    // The standard health service, over the same channel (and socket) as the data path.
    this.health = new HealthClientConstructor(address, grpc.credentials.createInsecure(), {
      channelOverride: this.client.getChannel(),
    }) as unknown as HealthClient;
  }

  /** One grpc.health.v1 check; resolves with the serving status ('SERVING' when healthy). */
  checkHealth(timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.health.Check({ service: '' }, this.metadata, { deadline: Date.now() + timeoutMs }, (error, response) => {
        if (error || !response) reject(error ?? new Error('empty health response'));
        else resolve(String(response.status));
      });
    });
  }

  /** The first round trip: who the worker is and which tools it has. */
  describe(timeoutMs: number): Promise<DescribeResponse__Output> {
    return new Promise((resolve, reject) => {
      this.client.Describe({}, this.metadata, { deadline: Date.now() + timeoutMs }, (error, response) => {
        if (error || !response) reject(error ?? new Error('empty Describe response'));
        else resolve(response);
      });
    });
  }

  /** Opens the data stream; `onBroken` runs once if it ever fails; `onHostCall` for every HostCall. */
  open(onBroken: (error: SnakepitError) => void, onHostCall: HostCallListener): void {
    this.onBroken = onBroken;
    this.onHostCall = onHostCall;
    const stream = this.client.Connect(this.metadata);
    this.stream = stream;
    stream.on('data', (frame: WorkerFrame__Output) => this.dispatch(frame));
    stream.on('error', (error: grpc.ServiceError) => this.breakWith(error.details || error.message));
    stream.on('end', () => this.breakWith('the worker closed its stream'));
  }

  get pendingCalls(): number {
    return this.inFlight.size;
  }

  get isBroken(): boolean {
    return this.brokenWith !== undefined;
  }

  /**
   * Sends a call; returns its request id (used to cancel it), or undefined on a
   * broken stream (nothing was sent). A call whose blobs the shared-memory
   * region cannot take ends, asynchronously like any answer, with RESOURCE_EXHAUSTED.
   */
  call(request: CallRequest, listener: CallListener): number | undefined {
    if (this.brokenWith) return undefined;
    const id = this.nextId++;
    this.inFlight.set(id, listener);
    let sent = request;
    try {
      if (this.shared) sent = { ...request, args: this.shared.place(id, request.args) };
    } catch (error) {
      const failure = error instanceof SnakepitError ? error : new SnakepitError('INTERNAL', (error as Error).message, { cause: error });
      queueMicrotask(() => {
        if (this.inFlight.delete(id)) listener.end({ id, kind: 'error', error: { error: errorInfoOf(failure), session: null } });
      });
      return id;
    }
    this.unsent.add(id);
    this.enqueue({ id, call: sent });
    return id;
  }

  /** Tells the worker which host tools its tools may call. */
  announceHostTools(tools: ToolSpec[]): void {
    this.enqueue({ id: 0, hostTools: { tools } });
  }

  /** Answers a HostCall made by the tool running call `parentId`. */
  replyHostCall(parentId: number, callId: number, outcome: { value: Payload } | { error: ErrorInfo }): void {
    if (!this.inFlight.has(parentId) || this.brokenWith) return;
    let reply = outcome;
    if (this.shared && 'value' in outcome) {
      try {
        // The reply's slots belong to the parent call: the tool may read them until it ends.
        reply = { value: this.shared.place(parentId, outcome.value) ?? outcome.value };
      } catch (error) {
        reply = { error: errorInfoOf(error as SnakepitError) };
      }
    }
    this.enqueue({ id: parentId, hostReply: { callId, ...reply } });
  }

  /**
   * Returns stream credit: the consumer of streaming call `id` took `chunks` more
   * chunks, so the worker may queue that many more (its generator blocks without).
   * Credits of one call queued in the same flush travel as one message.
   */
  credit(id: number, chunks: number): void {
    if (chunks <= 0 || !this.inFlight.has(id) || this.brokenWith) return;
    const queued = this.queuedCredit.get(id);
    if (queued) {
      queued.chunks = (queued.chunks ?? 0) + chunks;
      return;
    }
    const credit = { chunks };
    this.queuedCredit.set(id, credit);
    this.enqueue({ id, credit });
  }

  /** Asks the worker to stop a call; it answers with Cancelled once the tool really stopped. */
  cancel(id: number, reason: string): void {
    if (this.inFlight.has(id) && !this.brokenWith) this.enqueue({ id, cancel: { reason } });
  }

  /** Ends the stream and the channel; calls still in flight fail with `code` and `reason`. */
  close(reason: string, code: 'WORKER_CRASHED' | 'WORKER_UNAVAILABLE' = 'WORKER_UNAVAILABLE'): void {
    this.breakWith(reason, code);
    this.stream?.cancel();
    this.client.close();
  }

  private enqueue(message: HostMessage): void {
    this.outbox.push(message);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // An idle stream sends at the end of this tick (latency). A busy one waits for the
      // end of this event-loop turn, so calls started by other I/O callbacks of the turn
      // (HTTP requests arriving together on many sockets) share the frame (throughput).
      if (this.inFlight.size <= 1) queueMicrotask(this.flush);
      else setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const messages = this.outbox;
    this.outbox = [];
    this.unsent.clear();
    this.queuedCredit.clear();
    this.queuedRelease = undefined;
    if (messages.length === 0 || !this.stream || this.brokenWith) return;
    // Every message fits alone: the pool refuses calls over maxPayloadBytes, which leaves this limit room to spare.
    let frame: HostMessage[] = [];
    let bytes = 0;
    for (const message of messages) {
      const size = hostMessageBytes(message);
      if (frame.length > 0 && bytes + size > this.maxMessageBytes) {
        this.stream.write({ messages: frame });
        frame = [];
        bytes = 0;
      }
      frame.push(message);
      bytes += size;
    }
    this.stream.write({ messages: frame });
  };

  private dispatch(frame: WorkerFrame__Output): void {
    const released: number[] = [];
    for (let message of frame.messages) {
      // Every message's slots are read and released, also for a call already given up: the worker holds them until told.
      const refused = this.receiveShared(message, released);
      if (message.kind === 'hostCall') {
        if (!message.hostCall || !this.inFlight.has(message.id)) continue;
        if (refused) this.replyHostCall(message.id, message.hostCall.callId, { error: errorInfoOf(refused) });
        else this.onHostCall?.(message.id, message.hostCall);
        continue;
      }
      const listener = this.inFlight.get(message.id ?? 0);
      if (!listener) continue; // a late reply to a call already failed locally
      if (refused && message.kind !== 'error' && message.kind !== 'cancelled') {
        // A chunk or result that cannot be read ends its call; the worker is told to stop a stream.
        if (message.kind === 'chunk') this.cancel(message.id, refused.message);
        message = { id: message.id, kind: 'error', error: { error: errorInfoOf(refused), session: null } };
      }
      if (message.kind === 'chunk') {
        listener.chunk(message);
      } else {
        this.inFlight.delete(message.id ?? 0);
        this.shared?.releaseCall(message.id ?? 0);
        listener.end(message);
      }
    }
    if (released.length > 0) this.release(released);
  }

  /** Reads the message's shared-memory slots into its payload; the error when one is refused. */
  private receiveShared(message: WorkerMessage__Output, released: number[]): SnakepitError | undefined {
    if (!this.shared) return undefined;
    const payload = message.result?.value ?? message.chunk?.value ?? message.hostCall?.args;
    try {
      this.shared.receive(payload, released);
      return undefined;
    } catch (error) {
      return error instanceof SnakepitError ? error : new SnakepitError('SERIALIZATION_ERROR', (error as Error).message, { cause: error });
    }
  }

  /** Gives the worker back the slots of its region the host has read; one message per flush. */
  private release(offsets: number[]): void {
    if (this.brokenWith) return;
    if (this.queuedRelease) {
      this.queuedRelease.push(...offsets);
      return;
    }
    this.queuedRelease = offsets;
    this.enqueue({ id: 0, release: { offsets } });
  }

  private breakWith(reason: string, code: 'WORKER_CRASHED' | 'WORKER_UNAVAILABLE' = 'WORKER_CRASHED'): void {
    if (this.brokenWith) return;
    const error = new SnakepitError(code, `Worker stream broke: ${reason}`, { details: { reason } });
    this.brokenWith = error;
    // Unusable before anyone hears of it, so no listener can hand this worker another call.
    this.onBroken?.(error);
    const listeners = [...this.inFlight];
    this.inFlight.clear();
    for (const [id, listener] of listeners) {
      this.shared?.releaseCall(id);
      listener.broken(error, !this.unsent.has(id));
    }
    this.unsent.clear();
    this.queuedCredit.clear();
    this.queuedRelease = undefined;
    this.outbox = [];
  }
}

// The TypeScript shapes of proto/snakepit/cluster/v1/cluster.proto as
// @grpc/proto-loader delivers them (PROTO_LOADER_OPTIONS). Written to match
// what proto-loader-gen-types emits for that file; cluster-messages.spec.ts
// round-trips every field through the real proto so the two cannot drift.
import type * as grpc from '@grpc/grpc-js';
import type { ErrorInfo, ErrorInfo__Output } from '../../bridge/generated/snakepit/bridge/v1/ErrorInfo';
import type { Payload, Payload__Output } from '../../bridge/generated/snakepit/bridge/v1/Payload';
import type { StreamChunk, StreamChunk__Output } from '../../bridge/generated/snakepit/bridge/v1/StreamChunk';

export interface ForwardedCall {
  tool?: string;
  args?: Payload | null;
  pool?: string;
  sessionId?: string;
  timeoutMs?: number | string;
  metadata?: Record<string, string>;
  idempotent?: boolean;
  originNode?: string;
  _timeoutMs?: 'timeoutMs';
}

export interface ForwardedCall__Output {
  tool: string;
  args: Payload__Output | null;
  pool: string;
  sessionId: string;
  timeoutMs?: number;
  metadata: Record<string, string>;
  idempotent: boolean;
  originNode: string;
  _timeoutMs?: 'timeoutMs';
}

export interface ForwardedResult {
  value?: Payload | null;
  workerId?: string;
  pid?: number;
}

export interface ForwardedResult__Output {
  value: Payload__Output | null;
  workerId: string;
  pid: number;
}

export interface ForwardedReply {
  nodeId?: string;
  result?: ForwardedResult | null;
  error?: ErrorInfo | null;
  outcome?: 'result' | 'error';
}

export interface ForwardedReply__Output {
  nodeId: string;
  result?: ForwardedResult__Output | null;
  error?: ErrorInfo__Output | null;
  outcome?: 'result' | 'error';
}

export interface ForwardedFrame {
  chunk?: StreamChunk | null;
  error?: ErrorInfo | null;
  kind?: 'chunk' | 'error';
}

export interface ForwardedFrame__Output {
  chunk?: StreamChunk__Output | null;
  error?: ErrorInfo__Output | null;
  kind?: 'chunk' | 'error';
}

export interface ClusterNodeClient extends grpc.Client {
  Execute(
    argument: ForwardedCall,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<ForwardedReply__Output>,
  ): grpc.ClientUnaryCall;
  ExecuteStream(argument: ForwardedCall, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<ForwardedFrame__Output>;
}

export interface ClusterNodeHandlers extends grpc.UntypedServiceImplementation {
  Execute: grpc.handleUnaryCall<ForwardedCall__Output, ForwardedReply>;
  ExecuteStream: grpc.handleServerStreamingCall<ForwardedCall__Output, ForwardedFrame>;
}

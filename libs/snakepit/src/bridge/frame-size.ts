import type { Blob } from './generated/snakepit/bridge/v1/Blob';
import type { HostMessage } from './generated/snakepit/bridge/v1/HostMessage';
import type { Payload } from './generated/snakepit/bridge/v1/Payload';
import type { SessionState } from './generated/snakepit/bridge/v1/SessionState';

/**
 * Room a gRPC message keeps above `maxPayloadBytes` for everything around the
 * payload: ids, budgets, tool name, framing. Both ends size their messages
 * to `maxPayloadBytes + FRAME_SLACK_BYTES`.
 */
export const FRAME_SLACK_BYTES = 64 * 1024;

/** Protobuf's worst case around one length-delimited field: a tag and a 5-byte length. */
const FIELD_OVERHEAD = 6;
/** One map entry: the entry's own field, plus its key and value fields. */
const ENTRY_OVERHEAD = 3 * FIELD_OVERHEAD;
/** Ids, budgets, flags, the fields' tags and lengths, and the message's own place in its frame. */
const MESSAGE_OVERHEAD = 128;

/** The largest gRPC message between host and worker for a pool's payload limit. */
export function frameLimitBytes(maxPayloadBytes: number): number {
  return maxPayloadBytes + FRAME_SLACK_BYTES;
}

/** The payload limit a given message limit leaves (for values the host sends back, e.g. host-tool results). */
export function payloadLimitBytes(maxMessageBytes: number): number {
  return Math.max(1, maxMessageBytes - FRAME_SLACK_BYTES);
}

export interface CallSize {
  args: number;
  session: number;
  metadata: number;
  /** An upper bound of the encoded call, framing included. */
  total: number;
}

interface SizedCall {
  tool?: string;
  sessionId?: string;
  args?: Payload | null;
  session?: SessionState | null;
  metadata?: Record<string, string> | null;
}

/**
 * An upper bound of a call's encoded size, computed from its parts without
 * encoding it (this runs once per call and once per frame, so it must be cheap).
 */
export function callSize(call: SizedCall): CallSize {
  const args = payloadBytes(call.args);
  const session = sessionBytes(call.session);
  const metadata = mapBytes(call.metadata);
  return {
    args,
    session,
    metadata,
    total: MESSAGE_OVERHEAD + Buffer.byteLength(call.tool ?? '') + Buffer.byteLength(call.sessionId ?? '') + args + session + metadata,
  };
}

/** An upper bound of one HostMessage's encoded size (for splitting frames at the limit). */
export function hostMessageBytes(message: HostMessage): number {
  if (message.call) return callSize(message.call).total;
  if (message.hostReply) {
    const { value, error } = message.hostReply;
    const errorBytes = error ? Buffer.byteLength(error.code ?? '') + Buffer.byteLength(error.message ?? '') + byteLength(error.detailsJson) : 0;
    return MESSAGE_OVERHEAD + payloadBytes(value) + errorBytes + 3 * FIELD_OVERHEAD;
  }
  if (message.cancel) return MESSAGE_OVERHEAD + Buffer.byteLength(message.cancel.reason ?? '');
  if (message.release) return MESSAGE_OVERHEAD + VARINT_MAX * (message.release.offsets?.length ?? 0);
  // Host tool specs are sent once per stream; their JSON length bounds their encoding.
  return MESSAGE_OVERHEAD + Buffer.byteLength(JSON.stringify(message.hostTools ?? {}));
}

/** Protobuf's worst case for one varint: a uint64 takes up to 10 bytes. */
const VARINT_MAX = 10;

function payloadBytes(payload: Payload | null | undefined): number {
  if (!payload) return 0;
  let bytes = FIELD_OVERHEAD + byteLength(payload.json) + byteLength(payload.binary);
  for (const blob of payload.blobs ?? []) bytes += blobBytes(blob);
  return bytes;
}

/**
 * One blob's field in its payload: the field itself, each path segment (its
 * field and its key's field or index varint), the dtype, the packed shape and
 * the data (or its shared-memory slot), each a length-delimited field (a tag
 * and a 5-byte length at most).
 */
function blobBytes(blob: Blob): number {
  let bytes = FIELD_OVERHEAD + FIELD_OVERHEAD + byteLength(blob.dtype) + FIELD_OVERHEAD + VARINT_MAX * (blob.shape?.length ?? 0);
  bytes += FIELD_OVERHEAD + byteLength(blob.data);
  // A shared-memory slot instead of the data: its field and two varints with their tags.
  if (blob.shared) bytes += FIELD_OVERHEAD + 2 * (1 + VARINT_MAX);
  for (const segment of blob.path ?? [])
    bytes += FIELD_OVERHEAD + (segment.key === undefined ? FIELD_OVERHEAD : FIELD_OVERHEAD + Buffer.byteLength(segment.key));
  return bytes;
}

function sessionBytes(session: SessionState | null | undefined): number {
  if (!session) return 0;
  let bytes = FIELD_OVERHEAD + 12;
  for (const [key, value] of Object.entries(session.values ?? {})) bytes += ENTRY_OVERHEAD + Buffer.byteLength(key) + byteLength(value);
  return bytes;
}

function mapBytes(map: Record<string, string> | null | undefined): number {
  let bytes = 0;
  for (const [key, value] of Object.entries(map ?? {})) bytes += ENTRY_OVERHEAD + Buffer.byteLength(key) + Buffer.byteLength(value);
  return bytes;
}

function byteLength(value: Buffer | Uint8Array | string | null | undefined): number {
  if (value === undefined || value === null) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.byteLength;
}

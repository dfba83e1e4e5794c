import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AdvertisedPool, NodeRecord } from '../membership/node-record';
import { parseHostPort } from '../cluster-options';
import { CALL_WINDOW_MS } from './call-auth';

/** Why a record read from Redis was ignored (the label of `snakepit_cluster_records_ignored_total`). */
export type RecordRejection = 'malformed' | 'unsigned' | 'forged' | 'stale';

/** A record as stored in Redis: the signed JSON text, and its MAC. */
interface Envelope {
  v: 1;
  payload: string;
  mac: string;
}

/** What a node signs: its record and the time it signed it (its own clock, epoch ms). */
type Payload = NodeRecord & { signedAt: number };

export type RecordVerdict = { ok: true; record: NodeRecord; signedAt: number } | { ok: false; reason: RecordRejection; nodeId?: string; detail: string };

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/**
 * The MAC covers the payload's exact text, which is what the reader parses:
 * every field the router uses (id, address, pools with their capacity,
 * available slots, limits and tools, the start time and the signing time) is
 * covered by construction, with no second, "canonical" encoding to get wrong.
 */
function recordMac(secret: string, payload: string): Buffer {
  return createHmac('sha256', secret).update('snakepit-record-v1\n').update(payload).digest();
}

/** The value this node writes to Redis for its record. */
export function signRecord(record: NodeRecord, secret: string, now = Date.now()): string {
  const payload = JSON.stringify({ ...record, signedAt: now } satisfies Payload);
  return JSON.stringify({ v: 1, payload, mac: recordMac(secret, payload).toString('base64url') } satisfies Envelope);
}

/**
 * A record read from Redis, if it is signed with one of `secrets`, was signed
 * within the failure-detection window (plus the clock skew the calls allow),
 * and has the shape the router relies on. `available` is clamped to the
 * pool's signed capacity.
 */
export function verifyRecord(text: string, secrets: readonly string[], nodeTtlMs: number, now = Date.now()): RecordVerdict {
  let envelope: Partial<Envelope> & { id?: unknown };
  try {
    envelope = JSON.parse(text) as Partial<Envelope>;
  } catch {
    return { ok: false, reason: 'malformed', detail: 'not JSON' };
  }
  if (typeof envelope !== 'object' || envelope === null) return { ok: false, reason: 'malformed', detail: 'not an object' };
  if (typeof envelope.payload !== 'string' || typeof envelope.mac !== 'string') {
    // An unsigned record (a writer without the secret, or a release before signing) names its node at the top.
    const nodeId = typeof envelope.id === 'string' && NODE_ID.test(envelope.id) ? envelope.id : undefined;
    return { ok: false, reason: 'unsigned', nodeId, detail: 'no payload and mac' };
  }
  const presented = Buffer.from(envelope.mac, 'base64url');
  const payloadText = envelope.payload;
  const authentic = presented.length === 32 && secrets.some((secret) => timingSafeEqual(recordMac(secret, payloadText), presented));
  const claimed = claimedId(payloadText);
  if (!authentic) return { ok: false, reason: 'forged', nodeId: claimed, detail: 'MAC does not match any accepted secret' };
  const payload = JSON.parse(payloadText) as Payload;
  const problem = shapeProblem(payload);
  if (problem) return { ok: false, reason: 'malformed', nodeId: claimed, detail: problem };
  const age = now - payload.signedAt;
  if (age > nodeTtlMs + CALL_WINDOW_MS || age < -CALL_WINDOW_MS) {
    return {
      ok: false,
      reason: 'stale',
      nodeId: payload.id,
      detail: `signed ${age} ms ago, outside the ${nodeTtlMs} ms window (±${CALL_WINDOW_MS} ms clock skew)`,
    };
  }
  const { signedAt, ...record } = payload;
  record.pools = record.pools.map((pool) => ({ ...pool, available: Math.max(0, Math.min(pool.available, pool.capacity!)) }));
  return { ok: true, record, signedAt };
}

/** The id a payload claims, for logs only (not trusted). */
function claimedId(payload: string): string | undefined {
  try {
    const id = (JSON.parse(payload) as { id?: unknown }).id;
    return typeof id === 'string' && NODE_ID.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

const count = (value: unknown) => typeof value === 'number' && Number.isFinite(value) && value >= 0;

/** What is wrong with a signed payload's shape, if anything: the router dereferences all of it. */
function shapeProblem(payload: Partial<Payload>): string | undefined {
  if (typeof payload.id !== 'string' || !NODE_ID.test(payload.id)) return 'id';
  if (typeof payload.address !== 'string' || !parseHostPort(payload.address)) return 'address';
  if (typeof payload.version !== 'string') return 'version';
  if (!count(payload.startedAt) || !count(payload.signedAt)) return 'startedAt/signedAt';
  if (!Array.isArray(payload.pools)) return 'pools';
  for (const pool of payload.pools as Array<Partial<AdvertisedPool>>) {
    if (typeof pool !== 'object' || pool === null || typeof pool.name !== 'string') return 'pools[].name';
    for (const field of ['size', 'ready', 'available', 'capacity', 'queueDepth', 'timeoutMs', 'maxPayloadBytes'] as const) {
      if (!count(pool[field])) return `pools[${JSON.stringify(pool.name)}].${field}`;
    }
    if (!Array.isArray(pool.tools)) return `pools[${JSON.stringify(pool.name)}].tools`;
  }
  return undefined;
}

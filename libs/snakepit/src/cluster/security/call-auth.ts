import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { NonceCache } from './nonce-cache';

// node:crypto's HMAC-SHA256 and timingSafeEqual are the whole primitive; a JWT
// or HTTP-signature library would add a format and parsing to get the same.

/**
 * How far a call's timestamp may be from the receiving node's clock, either
 * way. A constant, not an option: it must cover clock skew between NTP-synced
 * hosts plus transit (milliseconds in practice) with a wide margin, and a
 * larger one would only widen the replay window and the nonce cache.
 */
export const CALL_WINDOW_MS = 30_000;
/**
 * Nonces a node keeps (about 100 bytes each, so at most ~25 MB): enough for
 * 4 000 calls per second sustained into one node with the nonces kept for a
 * window each. Past it a node refuses further calls until nonces expire.
 */
export const NONCE_CACHE_ENTRIES = 250_000;

export const CALL_METADATA = {
  node: 'x-snakepit-node',
  timestamp: 'x-snakepit-ts',
  nonce: 'x-snakepit-nonce',
  mac: 'x-snakepit-mac',
} as const;

/** Why a call was refused (the label of `snakepit_cluster_calls_refused_total`). */
export type CallRefusal = 'missing_proof' | 'outside_window' | 'bad_mac' | 'replayed' | 'nonce_cache_full';

const TIMESTAMP = /^\d{1,15}$/;
const NONCE = /^[A-Za-z0-9_-]{22,64}$/;
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const MAC = /^[A-Za-z0-9_-]{43}$/;

/** SHA-256 of the serialized request, exactly the bytes sent on the wire. */
export function requestDigest(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/** Who sends a call and which node it is for: the MAC binds both, so a call made for one node is refused by any other. */
export interface CallParties {
  from: string;
  to: string;
}

/**
 * HMAC-SHA256 of one call: method, timestamp, nonce, sender, receiver and the
 * request's digest, one per line (each field's format is checked first, none
 * holds a newline, so the encoding is unambiguous). The tag separates it from record MACs.
 */
export function callMac(secret: string, method: string, timestamp: number, nonce: string, parties: CallParties, digest: Buffer): Buffer {
  const fields = ['snakepit-call-v1', method, String(timestamp), nonce, parties.from, parties.to, digest.toString('hex')];
  return createHmac('sha256', secret).update(fields.join('\n')).digest();
}

/** The metadata that proves a call: everything but the secret, which never travels. */
export function signCall(secret: string, parties: CallParties, method: string, bytes: Uint8Array, now = Date.now()): Record<string, string> {
  const nonce = randomBytes(16).toString('base64url');
  return {
    [CALL_METADATA.node]: parties.from,
    [CALL_METADATA.timestamp]: String(now),
    [CALL_METADATA.nonce]: nonce,
    [CALL_METADATA.mac]: callMac(secret, method, now, nonce, parties, requestDigest(bytes)).toString('base64url'),
  };
}

export type CallVerdict = { ok: true; nodeId: string } | { ok: false; reason: CallRefusal };

/**
 * The receiving side (node `self`): a call passes when its timestamp is within
 * the window, its MAC for this node matches under one of the accepted secrets,
 * and its nonce is new.
 */
export class CallVerifier {
  private readonly nonces: NonceCache;

  constructor(
    private readonly self: string,
    private readonly secrets: readonly string[],
    private readonly now: () => number = Date.now,
    maxNonces = NONCE_CACHE_ENTRIES,
  ) {
    this.nonces = new NonceCache(maxNonces, now);
  }

  verify(method: string, digest: Buffer, read: (key: string) => string | undefined): CallVerdict {
    const nodeId = read(CALL_METADATA.node);
    const timestamp = read(CALL_METADATA.timestamp);
    const nonce = read(CALL_METADATA.nonce);
    const mac = read(CALL_METADATA.mac);
    if (!nodeId || !timestamp || !nonce || !mac || !NODE_ID.test(nodeId) || !TIMESTAMP.test(timestamp) || !NONCE.test(nonce) || !MAC.test(mac)) {
      return { ok: false, reason: 'missing_proof' };
    }
    const sentAt = Number(timestamp);
    if (Math.abs(this.now() - sentAt) > CALL_WINDOW_MS) return { ok: false, reason: 'outside_window' };
    const presented = Buffer.from(mac, 'base64url');
    const parties = { from: nodeId, to: this.self };
    const matches = this.secrets.some((secret) => timingSafeEqual(callMac(secret, method, sentAt, nonce, parties, digest), presented));
    if (!matches) return { ok: false, reason: 'bad_mac' };
    const seen = this.nonces.add(nonce, sentAt + CALL_WINDOW_MS);
    if (seen === 'replayed') return { ok: false, reason: 'replayed' };
    if (seen === 'full') return { ok: false, reason: 'nonce_cache_full' };
    return { ok: true, nodeId };
  }
}

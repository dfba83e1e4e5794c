import { CALL_METADATA, CALL_WINDOW_MS, CallVerifier, callMac, requestDigest, signCall } from './call-auth';

const METHOD = '/snakepit.cluster.v1.ClusterNode/Execute';
const SECRET = 'current-secret-0123';
const body = Buffer.from('a serialized ForwardedCall');
/** node-a calls node-b; the verifiers below are node-b's. */
const AB = { from: 'node-a', to: 'node-b' };

function clock(start = 1_700_000_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

const reader = (headers: Record<string, string>) => (key: string) => headers[key];

describe('call MACs', () => {
  it('carry everything but the secret, and verify under the same secret', () => {
    const time = clock();
    const headers = signCall(SECRET, AB, METHOD, body, time.now());
    expect(Object.keys(headers).sort()).toEqual(Object.values(CALL_METADATA).sort());
    expect(JSON.stringify(headers)).not.toContain(SECRET);
    expect(new CallVerifier('node-b', [SECRET], time.now).verify(METHOD, requestDigest(body), reader(headers))).toEqual({ ok: true, nodeId: 'node-a' });
  });

  it('cover the method, the request bytes, the sender and the receiver', () => {
    const time = clock();
    const headers = signCall(SECRET, AB, METHOD, body, time.now());
    const verifier = new CallVerifier('node-b', [SECRET], time.now);
    expect(verifier.verify('/snakepit.cluster.v1.ClusterNode/ExecuteStream', requestDigest(body), reader(headers))).toEqual({ ok: false, reason: 'bad_mac' });
    expect(verifier.verify(METHOD, requestDigest(Buffer.from('another body')), reader(headers))).toEqual({ ok: false, reason: 'bad_mac' });
    expect(verifier.verify(METHOD, requestDigest(body), reader({ ...headers, [CALL_METADATA.node]: 'node-x' }))).toEqual({ ok: false, reason: 'bad_mac' });
    // Made for node-b: node-c refuses it, so a call seen on the way to one node cannot be replayed at another.
    expect(new CallVerifier('node-c', [SECRET], time.now).verify(METHOD, requestDigest(body), reader(headers))).toEqual({ ok: false, reason: 'bad_mac' });
  });

  it('verify under any accepted secret (rotation), and refuse an unknown one', () => {
    const time = clock();
    const old = signCall('old-secret-0123456', AB, METHOD, body, time.now());
    const unknown = signCall('unknown-secret-0123', AB, METHOD, body, time.now());
    const verifier = new CallVerifier('node-b', [SECRET, 'old-secret-0123456'], time.now);
    expect(verifier.verify(METHOD, requestDigest(body), reader(old)).ok).toBe(true);
    expect(verifier.verify(METHOD, requestDigest(body), reader(unknown))).toEqual({ ok: false, reason: 'bad_mac' });
  });

  it('refuse a call outside the time window either way, and one without proof', () => {
    const time = clock();
    const verifier = new CallVerifier('node-b', [SECRET], time.now);
    const late = signCall(SECRET, AB, METHOD, body, time.now() - CALL_WINDOW_MS - 1);
    const early = signCall(SECRET, AB, METHOD, body, time.now() + CALL_WINDOW_MS + 1);
    const edge = signCall(SECRET, AB, METHOD, body, time.now() - CALL_WINDOW_MS);
    expect(verifier.verify(METHOD, requestDigest(body), reader(late))).toEqual({ ok: false, reason: 'outside_window' });
    expect(verifier.verify(METHOD, requestDigest(body), reader(early))).toEqual({ ok: false, reason: 'outside_window' });
    expect(verifier.verify(METHOD, requestDigest(body), reader(edge)).ok).toBe(true);
    expect(verifier.verify(METHOD, requestDigest(body), reader({}))).toEqual({ ok: false, reason: 'missing_proof' });
    const { [CALL_METADATA.mac]: _mac, ...unsigned } = signCall(SECRET, AB, METHOD, body, time.now());
    expect(verifier.verify(METHOD, requestDigest(body), reader(unsigned))).toEqual({ ok: false, reason: 'missing_proof' });
  });

  it('refuse a replay while its timestamp is in the window; after it the window refuses it', () => {
    const time = clock();
    const verifier = new CallVerifier('node-b', [SECRET], time.now);
    const headers = signCall(SECRET, AB, METHOD, body, time.now());
    expect(verifier.verify(METHOD, requestDigest(body), reader(headers)).ok).toBe(true);
    expect(verifier.verify(METHOD, requestDigest(body), reader(headers))).toEqual({ ok: false, reason: 'replayed' });
    time.advance(CALL_WINDOW_MS);
    expect(verifier.verify(METHOD, requestDigest(body), reader(headers))).toEqual({ ok: false, reason: 'replayed' });
    time.advance(1);
    expect(verifier.verify(METHOD, requestDigest(body), reader(headers))).toEqual({ ok: false, reason: 'outside_window' });
  });

  it('fail closed when the nonce cache is full of live nonces', () => {
    const time = clock();
    const verifier = new CallVerifier('node-b', [SECRET], time.now, 2);
    const call = () => verifier.verify(METHOD, requestDigest(body), reader(signCall(SECRET, AB, METHOD, body, time.now())));
    expect([call().ok, call().ok]).toEqual([true, true]);
    expect(call()).toEqual({ ok: false, reason: 'nonce_cache_full' });
    time.advance(CALL_WINDOW_MS + 1);
    expect(call().ok).toBe(true);
  });

  it('are HMAC-SHA256 over a fixed encoding', () => {
    const digest = requestDigest(body);
    expect(callMac(SECRET, METHOD, 1, 'n'.repeat(22), AB, digest)).toHaveLength(32);
    expect(callMac(SECRET, METHOD, 1, 'n'.repeat(22), AB, digest)).toEqual(callMac(SECRET, METHOD, 1, 'n'.repeat(22), AB, digest));
    expect(callMac(SECRET, METHOD, 12, 'n'.repeat(22), AB, digest)).not.toEqual(callMac(SECRET, METHOD, 1, 'n'.repeat(22), AB, digest));
  });
});

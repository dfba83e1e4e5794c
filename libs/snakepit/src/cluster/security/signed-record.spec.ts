import type { NodeRecord } from '../membership/node-record';
import { CALL_WINDOW_MS } from './call-auth';
import { RecordGate, type IgnoredRecord } from './record-gate';
import { signRecord, verifyRecord } from './signed-record';

const SECRET = 'current-secret-0123';
const TTL = 3_000;
const NOW = 1_700_000_000_000;

function record(overrides: Partial<NodeRecord> = {}, available = 2): NodeRecord {
  return {
    id: 'node-b',
    address: '127.0.0.1:7001',
    version: '0.1.0',
    startedAt: NOW - 60_000,
    pools: [{ name: 'default', size: 2, ready: 2, available, capacity: 2, queueDepth: 0, timeoutMs: 1_000, maxPayloadBytes: 1024, tools: [] }],
    ...overrides,
  };
}

describe('signed node records', () => {
  it('read back as signed, under the signing secret or an accepted one', () => {
    const stored = signRecord(record(), SECRET, NOW);
    expect(verifyRecord(stored, [SECRET], TTL, NOW + 500)).toEqual({ ok: true, record: record(), signedAt: NOW });
    expect(verifyRecord(stored, ['other-secret-01234', SECRET], TTL, NOW).ok).toBe(true);
  });

  it('are refused when unsigned, signed with an unknown secret, or changed after signing', () => {
    expect(verifyRecord(JSON.stringify(record()), [SECRET], TTL, NOW)).toMatchObject({ ok: false, reason: 'unsigned', nodeId: 'node-b' });
    expect(verifyRecord(signRecord(record(), 'unknown-secret-0123', NOW), [SECRET], TTL, NOW)).toMatchObject({ ok: false, reason: 'forged', nodeId: 'node-b' });
    const envelope = JSON.parse(signRecord(record(), SECRET, NOW)) as { payload: string };
    envelope.payload = envelope.payload.replace('"available":2', '"available":2000');
    expect(verifyRecord(JSON.stringify(envelope), [SECRET], TTL, NOW)).toMatchObject({ ok: false, reason: 'forged' });
    expect(verifyRecord('not json', [SECRET], TTL, NOW)).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('are stale outside the failure-detection window (plus the clock skew allowed), either way', () => {
    const stored = signRecord(record(), SECRET, NOW);
    expect(verifyRecord(stored, [SECRET], TTL, NOW + TTL + CALL_WINDOW_MS).ok).toBe(true);
    expect(verifyRecord(stored, [SECRET], TTL, NOW + TTL + CALL_WINDOW_MS + 1)).toMatchObject({ ok: false, reason: 'stale' });
    expect(verifyRecord(stored, [SECRET], TTL, NOW - CALL_WINDOW_MS - 1)).toMatchObject({ ok: false, reason: 'stale' });
  });

  it('bound available slots by the signed capacity, and refuse a record without one', () => {
    const verdict = verifyRecord(signRecord(record({}, 50), SECRET, NOW), [SECRET], TTL, NOW);
    expect(verdict.ok && verdict.record.pools[0].available).toBe(2);
    const noCapacity = record();
    delete noCapacity.pools[0].capacity;
    expect(verifyRecord(signRecord(noCapacity, SECRET, NOW), [SECRET], TTL, NOW)).toMatchObject({
      ok: false,
      reason: 'malformed',
      detail: 'pools["default"].capacity',
    });
    expect(verifyRecord(signRecord(record({ address: 'nowhere' }), SECRET, NOW), [SECRET], TTL, NOW)).toMatchObject({
      ok: false,
      reason: 'malformed',
      detail: 'address',
    });
  });
});

describe('RecordGate', () => {
  it('admits valid records, ignores one older than the last seen from its node, and logs each node and reason once', () => {
    let now = NOW;
    const ignored: Array<IgnoredRecord & { log: boolean }> = [];
    const gate = new RecordGate(
      [SECRET],
      TTL,
      (entry, log) => ignored.push({ ...entry, log }),
      () => now,
    );
    const first = signRecord(record(), SECRET, NOW);
    const second = signRecord(record(), SECRET, NOW + 1_000);
    now = NOW + 1_000;
    expect(gate.admit([first, null]).map((r) => r.id)).toEqual(['node-b']);
    expect(gate.admit([second])).toHaveLength(1);
    expect(gate.admit([second])).toHaveLength(1); // the same record read again is fine
    expect(gate.admit([first])).toEqual([]); // written back after a newer one: a replay
    const forged = signRecord(record({ id: 'evil' }), 'unknown-secret-0123', NOW);
    expect(gate.admit([forged, forged, first])).toEqual([]);
    expect(ignored.map(({ reason, nodeId, log }) => [reason, nodeId, log])).toEqual([
      ['stale', 'node-b', true],
      ['forged', 'evil', true],
      ['forged', 'evil', false],
      ['stale', 'node-b', false],
    ]);
    now += 60_000;
    gate.admit([forged]);
    expect(ignored.at(-1)).toMatchObject({ reason: 'forged', log: true });
  });
});

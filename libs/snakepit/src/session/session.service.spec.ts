import { SnakepitError } from '../errors/snakepit-error';
import { resolveOptions, SnakepitConfigError } from '../options/resolve-options';
import type { SessionOptions } from '../options/snakepit-options';
import { TelemetryService } from '../telemetry/telemetry.service';
import { InMemorySessionStore } from './in-memory-session.store';
import { sessionState, type SessionDelta } from './session-store';
import { SessionService, type SessionTurn, type SessionTurnOptions } from './session.service';

function setUp(sessions: SessionOptions = {}): SessionService {
  // Any executable passes the interpreter check; nothing is started here.
  const options = resolveOptions({ python: process.execPath, pools: [{ name: 'default', size: 1, adapter: 'pkg.mod:Adapter' }], sessions });
  return new SessionService(new InMemorySessionStore(), options, new TelemetryService());
}

const turnOptions = (extra: Partial<SessionTurnOptions> = {}): SessionTurnOptions => ({ timeoutMs: 10_000, pool: 'default', tool: 'incr', ...extra });
const delta = (entries: Record<string, unknown>, deleted: string[] = []): SessionDelta => ({
  set: sessionState(Object.entries(entries).map(([key, value]) => [key, JSON.stringify(value)])),
  deleted,
});
/** Sessions whose turn is held right now: the map must be empty whenever no call runs. */
const heldTurns = (sessions: SessionService) => (sessions as unknown as { turns: Map<string, unknown> }).turns.size;
/** Lets every settled promise run its callbacks. */
const flush = () => new Promise((resolve) => setImmediate(resolve));

/** What session_incr does: read n from the snapshot, write n + 1. */
async function increment(turn: SessionTurn, workerId = 'w1'): Promise<void> {
  const n = turn.record.state.n === undefined ? 0 : (JSON.parse(turn.record.state.n) as number);
  await turn.commit(delta({ n: n + 1 }), workerId);
}

describe('SessionService: one call at a time per session', () => {
  afterEach(() => jest.useRealTimers());

  it('grants the turn in arrival order, each call reading the snapshot its predecessors left', async () => {
    const sessions = setUp();
    const { sessionId } = await sessions.create();
    const first = await sessions.forCall(sessionId, turnOptions());
    const granted: string[] = [];
    const waiting = ['b', 'c', 'd'].map((name) =>
      sessions.forCall(sessionId, turnOptions()).then((turn) => {
        granted.push(name);
        return turn;
      }),
    );
    await flush();
    expect(granted).toEqual([]);

    await increment(first);
    first.release();
    first.release(); // idempotent: hands the turn on once
    for (const pending of waiting) {
      const turn = await pending;
      await increment(turn);
      turn.release();
    }
    expect(granted).toEqual(['b', 'c', 'd']);
    // Read-modify-write from four calls, none lost: the snapshot was read when each turn came.
    expect(await sessions.get(sessionId)).toMatchObject({ state: { n: 4 }, version: 4 });
    expect(heldTurns(sessions)).toBe(0);
  });

  it('fails a call whose budget runs out while it waits for the turn with TIMEOUT (phase session), leaving no trace', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] });
    const sessions = setUp();
    const { sessionId } = await sessions.create();
    const first = await sessions.forCall(sessionId, turnOptions());
    let settled = false;
    const late = sessions.forCall(sessionId, turnOptions({ timeoutMs: 500 })).then(
      () => undefined,
      (error: unknown) => error,
    );
    void late.then(() => (settled = true));
    jest.advanceTimersByTime(499);
    await flush();
    expect(settled).toBe(false);
    jest.advanceTimersByTime(1);
    const error = await late;
    expect(error).toBeInstanceOf(SnakepitError);
    expect(error).toMatchObject({ code: 'TIMEOUT', details: { phase: 'session', sessionId, tool: 'incr', pool: 'default', timeoutMs: 500 } });
    expect((error as Error).message).toMatch(/while waiting for its session's turn/);

    first.release();
    expect(heldTurns(sessions)).toBe(0);
    const next = await sessions.forCall(sessionId, turnOptions());
    next.release();
    expect(heldTurns(sessions)).toBe(0);
  });

  it('drops a call from the wait when its signal aborts; the calls behind it move up', async () => {
    const sessions = setUp();
    const { sessionId } = await sessions.create();
    const first = await sessions.forCall(sessionId, turnOptions());
    const controller = new AbortController();
    const aborted = sessions.forCall(sessionId, turnOptions({ signal: controller.signal })).catch((error: unknown) => error);
    const behind = sessions.forCall(sessionId, turnOptions());
    controller.abort();
    expect(await aborted).toMatchObject({ code: 'CANCELLED', details: { phase: 'session', sessionId } });

    first.release();
    const second = await behind;
    await increment(second);
    second.release();
    expect(heldTurns(sessions)).toBe(0);
    expect((await sessions.get(sessionId)).state).toEqual({ n: 1 });

    // Already aborted: refused at once, even with the turn free.
    const gone = AbortSignal.abort();
    await expect(sessions.forCall(sessionId, turnOptions({ signal: gone }))).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(heldTurns(sessions)).toBe(0);
  });

  it('lets a nested call (from a host tool) run without waiting; the parent then conflicts and writes nothing', async () => {
    const sessions = setUp();
    const { sessionId } = await sessions.create();
    const parent = await sessions.forCall(sessionId, turnOptions());
    // Would deadlock if it waited: the parent holds the turn until the nested call returns.
    const nested = await sessions.forCall(sessionId, turnOptions({ nested: true }));
    await increment(nested, 'w2');
    nested.release();

    // The nested call's release did not end the parent's turn.
    let queuedRan = false;
    const queued = sessions.forCall(sessionId, turnOptions()).then((turn) => {
      queuedRan = true;
      return turn;
    });
    await flush();
    expect(queuedRan).toBe(false);

    const conflict = await increment(parent).catch((error: unknown) => error);
    expect(conflict).toMatchObject({ code: 'SESSION_CONFLICT', details: { sessionId, expectedVersion: 0, actualVersion: 1 } });
    expect(await sessions.get(sessionId)).toMatchObject({ state: { n: 1 }, version: 1, lastWorkerId: 'w2' });

    // What PoolService does for an idempotent tool: a fresh snapshot, run again, commit.
    expect((await parent.refresh()).version).toBe(1);
    await increment(parent);
    parent.release();
    (await queued).release();
    expect(await sessions.get(sessionId)).toMatchObject({ state: { n: 2 }, version: 2 });
    expect(heldTurns(sessions)).toBe(0);
  });

  it('slides the expiry when a call starts; a call that outlives the TTL gets SESSION_NOT_FOUND and writes nothing', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] });
    const sessions = setUp();
    const created = await sessions.create({ ttlSeconds: 2 });
    jest.advanceTimersByTime(1_500);
    const turn = await sessions.forCall(created.sessionId, turnOptions());
    expect(turn.record.expiresAt).toBe(Date.parse(created.expiresAt) + 1_500);

    jest.advanceTimersByTime(2_500);
    const error = await increment(turn).catch((thrown: unknown) => thrown);
    expect(error).toMatchObject({ code: 'SESSION_NOT_FOUND', details: { sessionId: created.sessionId, ttlSeconds: 2, phase: 'commit' } });
    expect((error as Error).message).toMatch(/expired or was deleted while the call ran .*not saved/);
    // A call that changed nothing has nothing to lose: it succeeds.
    await expect(turn.commit(delta({}), 'w7')).resolves.toBeUndefined();
    turn.release();
    await expect(sessions.get(created.sessionId)).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
  });
});

describe('SessionService: caps and keys', () => {
  it('refuses writes past sessions.maxKeys or sessions.maxBytes with PAYLOAD_TOO_LARGE, writing nothing', async () => {
    const sessions = setUp({ maxBytes: 64, maxKeys: 2 });
    const { sessionId } = await sessions.create();
    expect(await sessions.put(sessionId, { set: { a: 1 } })).toBe(1);

    const keys = await sessions.put(sessionId, { set: { b: 2, c: 3 } }).catch((error: unknown) => error);
    expect(keys).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { sessionId, option: 'sessions.maxKeys', keys: 3, limit: 2 } });
    expect((keys as Error).message).toMatch(/sessions\.maxKeys is 2/);

    const turn = await sessions.forCall(sessionId, turnOptions());
    const bytes = await turn.commit(delta({ b: 'x'.repeat(70) }), 'w1').catch((error: unknown) => error);
    turn.release();
    // 'a' + '1', then 'b' + the 72-byte JSON string.
    expect(bytes).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { sessionId, option: 'sessions.maxBytes', bytes: 2 + 73, limit: 64 } });
    expect(await sessions.get(sessionId)).toMatchObject({ state: { a: 1 }, version: 1 });
  });

  it('keeps __proto__ as a plain key from put to get', async () => {
    const sessions = setUp();
    const { sessionId } = await sessions.create();
    const changes = {
      set: Object.fromEntries<unknown>([
        ['__proto__', { admin: true }],
        ['x', 1],
      ]),
    };
    await sessions.put(sessionId, changes);
    const { state } = await sessions.get(sessionId);
    expect(Object.keys(state).sort()).toEqual(['__proto__', 'x']);
    expect(state['__proto__']).toEqual({ admin: true });
    expect((state as { admin?: boolean }).admin).toBeUndefined();
    await sessions.put(sessionId, { delete: ['__proto__'] });
    expect(Object.keys((await sessions.get(sessionId)).state)).toEqual(['x']);
  });

  it('checks put input and session ids', async () => {
    const sessions = setUp();
    const { sessionId } = await sessions.create();
    await expect(sessions.put(sessionId, { set: [] as unknown as Record<string, unknown> })).rejects.toMatchObject({ code: 'INVALID_ARGUMENTS' });
    await expect(sessions.put(sessionId, { delete: [1] as unknown as string[] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENTS' });
    await expect(sessions.put(sessionId, { set: { bad: Number.NaN } })).rejects.toMatchObject({ code: 'SERIALIZATION_ERROR' });
    await expect(sessions.put('sess_missing', { set: { a: 1 } })).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
    await expect(sessions.forCall('../etc', turnOptions())).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
    expect(heldTurns(sessions)).toBe(0);
  });

  it('validates the caps as positive integers', () => {
    const resolve = (sessions: SessionOptions) => () =>
      resolveOptions({ python: process.execPath, pools: [{ name: 'default', size: 1, adapter: 'pkg.mod:Adapter' }], sessions });
    expect(resolve({ maxBytes: 0, maxKeys: 1.5 })).toThrow(SnakepitConfigError);
    expect(resolve({ maxBytes: 0, maxKeys: 1.5 })).toThrow(/sessions\.maxBytes must be an integer[\s\S]*sessions\.maxKeys must be an integer/);
    expect(resolveOptions({ python: process.execPath, pools: [{ name: 'default', size: 1, adapter: 'pkg.mod:Adapter' }] }).sessions).toMatchObject({
      maxBytes: 1024 * 1024,
      maxKeys: 1024,
    });
  });
});

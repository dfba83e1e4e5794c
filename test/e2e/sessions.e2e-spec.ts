import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { embeddedSnakepit } from '../helpers/embedded-snakepit';
import { HostTool, PoolService, SessionService, type HostToolContext, type SessionInfo, type SnakepitErrorBody } from '@snakepit/nestjs';
import { eventually, startSampleApp, type SampleApp } from '../helpers/sample-app';

jest.setTimeout(60_000);

const MIB = 1024 * 1024;

/**
 * Sessions under concurrency and at their caps, black-box: the built sample
 * app over HTTP, real Python workers (showcase adapter), a pool of 2.
 */
describe('sessions through the sample app', () => {
  let app: SampleApp;

  beforeAll(async () => {
    app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '2' });
  });

  afterAll(async () => {
    await app?.stop();
  });

  const createSession = async (body: Record<string, unknown> = {}): Promise<string> => {
    const created = await app.request<SessionInfo>('POST', '/api/sessions', body);
    expect(created.status).toBe(201);
    return created.body.sessionId;
  };
  const state = async (sessionId: string) => (await app.request<SessionInfo>('GET', `/api/sessions/${sessionId}`)).body.state;

  it('40 concurrent increments of one key lose none: each call reads what the one before it wrote', async () => {
    const sessionId = await createSession();
    const responses = await Promise.all(Array.from({ length: 40 }, () => app.execute('session_incr', { key: 'n' }, { sessionId })));
    const succeeded = responses.filter((r) => r.status === 200);
    const final = (await app.request<SessionInfo>('GET', `/api/sessions/${sessionId}`)).body;
    expect(final.state.n).toBe(succeeded.length);
    // One at a time per session: every call succeeded, and each saw a different count.
    expect(succeeded).toHaveLength(40);
    expect(succeeded.map((r) => r.body.result as number).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(final.version).toBe(40);
  });

  it('a call whose budget runs out while another call holds its session fails TIMEOUT (phase session) and never runs', async () => {
    const sessionId = await createSession();
    const holder = app.execute('sleep', { ms: 1500 }, { sessionId });
    // The holder runs on a worker, so it has the session's turn; the second worker stays free.
    await eventually(async () => (await app.workers()).some((worker) => worker.busy > 0) || undefined);
    const waiter = await app.execute<SnakepitErrorBody>('session_put', { key: 'late', value: 1 }, { sessionId, timeoutMs: 300 });
    expect(waiter.status).toBe(504);
    expect(waiter.body.error).toMatchObject({ code: 'TIMEOUT', details: { phase: 'session', sessionId, tool: 'session_put' } });
    // Not the pool: a call outside the session runs at once on the free worker.
    expect((await app.execute('ping')).body.result).toBe('pong');
    expect((await holder).status).toBe(200);
    expect(await state(sessionId)).toEqual({});
  });

  it('refuses state past sessions.maxKeys or sessions.maxBytes with a structured 413, and writes none of it', async () => {
    const sessionId = await createSession();
    const keys = await app.execute<SnakepitErrorBody>('session_fill', { prefix: 'k', count: 1025 }, { sessionId });
    expect(keys.status).toBe(413);
    expect(keys.body.error).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      numericCode: 1014,
      details: { sessionId, option: 'sessions.maxKeys', keys: 1025, limit: 1024 },
    });
    expect(keys.body.error.message).toMatch(/sessions\.maxKeys is 1024/);

    expect((await app.execute('session_fill', { prefix: 'big', count: 1, size: 600_000 }, { sessionId })).status).toBe(200);
    const bytes = await app.execute<SnakepitErrorBody>('session_fill', { prefix: 'more', count: 1, size: 600_000 }, { sessionId });
    expect(bytes.status).toBe(413);
    // Each entry: its key, plus the value's JSON (the string and its two quotes).
    expect(bytes.body.error).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      details: { sessionId, option: 'sessions.maxBytes', bytes: 4 + 600_002 + 5 + 600_002, limit: MIB },
    });
    expect(Object.keys(await state(sessionId))).toEqual(['big0']);
    // Under the caps the session goes on working.
    expect((await app.execute('session_incr', { key: 'n' }, { sessionId })).body.result).toBe(1);
  });

  it('keeps __proto__ as a plain key, from a tool to the HTTP API and back to a tool', async () => {
    const sessionId = await createSession();
    const value = { admin: true };
    expect((await app.execute('session_put', { key: '__proto__', value }, { sessionId })).status).toBe(200);
    const read = await app.request('GET', `/api/sessions/${sessionId}`);
    expect(read.text).toContain('"state":{"__proto__":{"admin":true}}');
    expect((await app.execute('session_get', { key: '__proto__' }, { sessionId })).body.result).toEqual(value);
  });
});

/** Host tools that change the session of the Python call that asked, while that call runs. */
@Injectable()
class SessionHostTools {
  readonly invocations = new Map<string, number>();

  constructor(private readonly pools: PoolService) {}

  /** A nested call into the caller's own session (host-call depth 1). */
  @HostTool('bump_nested', { parameters: [{ name: 'key', type: 'string', required: true }] })
  async bumpNested({ key }: { key: string }, { sessionId }: HostToolContext): Promise<unknown> {
    this.count('bump_nested');
    return (await this.pools.execute('session_incr', { key }, { sessionId })).result;
  }

  /** bump_nested the first time only: a re-run of the caller finds the session quiet. */
  @HostTool('bump_once', { parameters: [{ name: 'key', type: 'string', required: true }] })
  async bumpOnce(args: { key: string }, context: HostToolContext): Promise<unknown> {
    return this.count('bump_once') === 1 ? this.bumpNested(args, context) : null;
  }

  @HostTool('pause', { parameters: [{ name: 'key', type: 'string', required: true }] })
  async pause(): Promise<null> {
    this.count('pause');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    return null;
  }

  private count(tool: string): number {
    const n = (this.invocations.get(tool) ?? 0) + 1;
    this.invocations.set(tool, n);
    return n;
  }
}

/** The backstop behind the per-session order: version-checked commits, seen from an embedding app. */
describe('sessions: conflicts and expiry, in process', () => {
  let moduleRef: TestingModule;
  let pools: PoolService;
  let sessions: SessionService;
  let hostTools: SessionHostTools;

  beforeAll(async () => {
    moduleRef = await embeddedSnakepit(
      'sessions-e2e',
      [{ name: 'default', size: 2, adapter: 'snakepit_bridge.examples.showcase:ShowcaseAdapter' }],
      [SessionHostTools],
    );
    pools = moduleRef.get(PoolService);
    sessions = moduleRef.get(SessionService);
    hostTools = moduleRef.get(SessionHostTools);
  });

  afterAll(async () => {
    await moduleRef?.close();
  });

  beforeEach(() => hostTools.invocations.clear());

  it('a nested call into the session its parent holds runs at once; the parent then conflicts and writes nothing', async () => {
    const { sessionId } = await sessions.create();
    const error = await pools
      .execute('session_incr_after_host', { key: 'n', host_tool: 'bump_nested' }, { sessionId, timeoutMs: 10_000 })
      .catch((thrown: unknown) => thrown);
    expect(error).toMatchObject({ code: 'SESSION_CONFLICT', details: { sessionId, expectedVersion: 0, actualVersion: 1 } });
    expect(hostTools.invocations.get('bump_nested')).toBe(1);
    // Only the nested call's increment is stored.
    expect(await sessions.get(sessionId)).toMatchObject({ state: { n: 1 }, version: 1 });
  });

  it('an idempotent call that conflicts runs once more on a fresh snapshot and commits', async () => {
    const { sessionId } = await sessions.create();
    const { result } = await pools.execute('session_incr_after_host', { key: 'n', host_tool: 'bump_once' }, { sessionId, idempotent: true });
    expect(hostTools.invocations.get('bump_once')).toBe(2);
    expect(result).toBe(2);
    expect(await sessions.get(sessionId)).toMatchObject({ state: { n: 2 }, version: 2 });
  });

  it('a host-side put while a call runs makes that call conflict; a put past the caps is refused', async () => {
    const { sessionId } = await sessions.create();
    await sessions.put(sessionId, { set: { seeded: true } });
    const running = pools.execute('session_incr_after_host', { key: 'n', host_tool: 'pause' }, { sessionId }).catch((thrown: unknown) => thrown);
    await eventually(() => hostTools.invocations.get('pause'));
    await sessions.put(sessionId, { set: { n: 10 } });
    expect(await running).toMatchObject({ code: 'SESSION_CONFLICT', details: { sessionId, expectedVersion: 1, actualVersion: 2 } });
    await expect(sessions.put(sessionId, { set: { huge: 'x'.repeat(MIB) } })).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      details: { option: 'sessions.maxBytes', limit: MIB },
    });
    expect((await sessions.get(sessionId)).state).toEqual({ seeded: true, n: 10 });
  });

  it('a call that outlives its session gets SESSION_NOT_FOUND saying so, and its changes are not saved', async () => {
    const { sessionId } = await sessions.create({ ttlSeconds: 1 });
    const error = await pools.execute('session_incr_after_host', { key: 'n', host_tool: 'pause' }, { sessionId }).catch((thrown: unknown) => thrown);
    expect(error).toMatchObject({ code: 'SESSION_NOT_FOUND', details: { sessionId, ttlSeconds: 1, phase: 'commit' } });
    expect((error as Error).message).toMatch(/expired or was deleted while the call ran/);
    await expect(sessions.get(sessionId)).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
  });
});

import { InMemorySessionStore } from './in-memory-session.store';
import { entryBytes, sessionState, type SessionLimits } from './session-store';

const roomy: SessionLimits = { maxBytes: 1024 * 1024, maxKeys: 1024 };
const set = (entries: Record<string, string>) => sessionState(Object.entries(entries));

describe('InMemorySessionStore', () => {
  it("merges blind deltas key by key so concurrent writers keep each other's keys; every change bumps the version", async () => {
    const store = new InMemorySessionStore();
    await store.create({ id: 's1', ttlSeconds: 60, metadata: { user: 'u' } });
    await Promise.all([
      store.commit('s1', { set: set({ a: '1' }), deleted: [] }, { lastWorkerId: 'w1', limits: roomy }),
      store.commit('s1', { set: set({ b: '2' }), deleted: [] }, { lastWorkerId: 'w2', limits: roomy }),
    ]);
    expect(await store.commit('s1', { set: set({}), deleted: ['a'] }, { limits: roomy })).toEqual({ status: 'committed', version: 3 });
    const record = await store.get('s1');
    expect(record?.state).toEqual({ b: '2' });
    expect(record?.version).toBe(3);
    expect(record?.lastWorkerId).toBe('w2');
  });

  it('writes nothing when the stored version is not the expected one', async () => {
    const store = new InMemorySessionStore();
    await store.create({ id: 'v', ttlSeconds: 60, metadata: {} });
    // Two read-modify-write increments from the same snapshot (version 0): the second must not win blindly.
    expect(await store.commit('v', { set: set({ n: '6' }), deleted: [] }, { expectedVersion: 0, limits: roomy })).toEqual({
      status: 'committed',
      version: 1,
    });
    expect(await store.commit('v', { set: set({ n: '6', other: '1' }), deleted: [] }, { expectedVersion: 0, lastWorkerId: 'w9', limits: roomy })).toEqual({
      status: 'conflict',
      actualVersion: 1,
    });
    const record = await store.get('v');
    expect(record).toMatchObject({ state: { n: '6' }, version: 1 });
    expect(record?.lastWorkerId).toBeUndefined();
    expect(await store.commit('v', { set: set({ n: '7' }), deleted: [] }, { expectedVersion: 1, limits: roomy })).toEqual({ status: 'committed', version: 2 });
  });

  it('refuses a commit that would grow the state past maxKeys or maxBytes, writing nothing', async () => {
    const store = new InMemorySessionStore();
    await store.create({ id: 'cap', ttlSeconds: 60, metadata: {} });
    const limits: SessionLimits = { maxBytes: 20, maxKeys: 2 };
    // 'é' is two UTF-8 bytes: the cap counts bytes, not characters.
    expect(entryBytes('é', '"é"')).toBe(6);
    expect((await store.commit('cap', { set: set({ é: '"é"', b: '12' }), deleted: [] }, { limits })).status).toBe('committed');
    expect(await store.commit('cap', { set: set({ c: '1' }), deleted: [] }, { limits })).toEqual({ status: 'too_large', limit: 'maxKeys', bytes: 11, keys: 3 });
    // Replacing a key counts its new size only: 6 + (1 + 13) = 20 fits, one byte more does not.
    expect((await store.commit('cap', { set: set({ b: '"12345678901"' }), deleted: [] }, { limits })).status).toBe('committed');
    expect(await store.commit('cap', { set: set({ b: '"123456789012"' }), deleted: [] }, { limits })).toEqual({
      status: 'too_large',
      limit: 'maxBytes',
      bytes: 21,
      keys: 2,
    });
    // A delete in the same delta makes room.
    expect((await store.commit('cap', { set: set({ c: '1' }), deleted: ['b'] }, { limits })).status).toBe('committed');
    expect(await store.get('cap')).toMatchObject({ state: { é: '"é"', c: '1' }, version: 3 });
  });

  it('lets a commit shrink a state that is over lowered limits, but not grow it', async () => {
    const store = new InMemorySessionStore();
    await store.create({ id: 'shrink', ttlSeconds: 60, metadata: {} });
    await store.commit('shrink', { set: set({ a: '1', b: '2', c: '3' }), deleted: [] }, { limits: roomy });
    const tight: SessionLimits = { maxBytes: 100, maxKeys: 1 };
    expect((await store.commit('shrink', { set: set({}), deleted: ['a'] }, { limits: tight })).status).toBe('committed');
    expect((await store.commit('shrink', { set: set({ b: '22' }), deleted: ['c'] }, { limits: tight })).status).toBe('committed');
    expect((await store.commit('shrink', { set: set({ d: '4' }), deleted: [] }, { limits: tight })).status).toBe('too_large');
    expect((await store.get('shrink'))?.state).toEqual({ b: '22' });
  });

  it('stores __proto__ like any other key, without touching any prototype', async () => {
    const store = new InMemorySessionStore();
    await store.create({ id: 'proto', ttlSeconds: 60, metadata: {} });
    await store.commit('proto', { set: set({ ['__proto__']: '{"polluted":true}', constructor: '1' }), deleted: [] }, { limits: roomy });
    const record = await store.get('proto');
    expect(Object.keys(record!.state).sort()).toEqual(['__proto__', 'constructor']);
    expect(Object.getPrototypeOf(record!.state)).toBeNull();
    expect(record!.state['__proto__']).toBe('{"polluted":true}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(record!.version).toBe(1);
    await store.commit('proto', { set: set({}), deleted: ['__proto__'] }, { limits: roomy });
    expect(Object.keys((await store.get('proto'))!.state)).toEqual(['constructor']);
  });

  it('hides and then sweeps expired sessions', async () => {
    const store = new InMemorySessionStore();
    const created = await store.create({ id: 's2', ttlSeconds: 1, metadata: {} });
    expect(await store.get('s2')).not.toBeNull();
    expect(await store.get('s2')).not.toBe(created); // copies, never the stored object
    expect(await store.sweep(created.expiresAt - 1)).toEqual([]);
    expect(await store.sweep(created.expiresAt + 1)).toEqual(['s2']);
    expect(await store.get('s2')).toBeNull();
    expect(await store.touch('s2')).toBeNull();
    expect(await store.commit('s2', { set: set({ a: '1' }), deleted: [] }, { limits: roomy })).toEqual({ status: 'not_found' });
  });
});

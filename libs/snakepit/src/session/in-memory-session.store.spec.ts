import { InMemorySessionStore } from './in-memory-session.store';

describe('InMemorySessionStore', () => {
  it('applies deltas key by key so concurrent writers keep each other\'s keys', async () => {
    const store = new InMemorySessionStore();
    await store.create({ id: 's1', ttlSeconds: 60, metadata: { user: 'u' } });
    await Promise.all([
      store.applyDelta('s1', { set: { a: '1' }, deleted: [] }, 'w1'),
      store.applyDelta('s1', { set: { b: '2' }, deleted: [] }, 'w2'),
    ]);
    const record = await store.applyDelta('s1', { set: {}, deleted: ['a'] });
    expect(record?.state).toEqual({ b: '2' });
    expect(record?.version).toBe(3);
    expect(record?.lastWorkerId).toBe('w2');
  });

  it('hides and then sweeps expired sessions', async () => {
    const store = new InMemorySessionStore();
    const created = await store.create({ id: 's2', ttlSeconds: 1, metadata: {} });
    expect(await store.get('s2')).not.toBeNull();
    expect(await store.get('s2')).not.toBe(created); // copies, never the stored object
    expect(await store.sweep(created.expiresAt - 1)).toEqual([]);
    expect(await store.sweep(created.expiresAt + 1)).toEqual(['s2']);
    expect(await store.get('s2')).toBeNull();
    expect(await store.applyDelta('s2', { set: { a: '1' }, deleted: [] })).toBeNull();
  });
});

import { NonceCache } from './nonce-cache';

describe('NonceCache', () => {
  it('remembers a nonce until its expiry, then forgets it (by time, from the oldest)', () => {
    let now = 0;
    const cache = new NonceCache(10, () => now);
    expect(cache.add('a', 100)).toBe('fresh');
    expect(cache.add('b', 200)).toBe('fresh');
    expect(cache.add('a', 100)).toBe('replayed');
    now = 101;
    expect(cache.add('c', 300)).toBe('fresh');
    expect(cache.size).toBe(2); // a swept
    expect(cache.add('b', 200)).toBe('replayed');
    now = 301;
    expect(cache.add('d', 400)).toBe('fresh');
    expect(cache.size).toBe(1);
  });

  it('refuses new nonces when full of live ones instead of forgetting one', () => {
    let now = 0;
    const cache = new NonceCache(2, () => now);
    expect([cache.add('a', 50), cache.add('b', 100)]).toEqual(['fresh', 'fresh']);
    expect(cache.add('c', 100)).toBe('full');
    expect(cache.add('a', 50)).toBe('replayed');
    now = 51;
    expect(cache.add('c', 100)).toBe('fresh');
    expect(cache.size).toBe(2);
  });
});

import { NodeBackoff } from './node-backoff';

describe('NodeBackoff', () => {
  it('doubles the window with every failure in a row, up to the cap', () => {
    const backoff = new NodeBackoff(100, 1_000);
    expect([1, 2, 3, 4, 5, 6].map(() => backoff.failed('b', 0))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    expect(backoff.failures('b')).toBe(6);
  });

  it('keeps a node away until its window ends, and only that node', () => {
    const backoff = new NodeBackoff(100, 1_000);
    backoff.failed('b', 50);
    expect(backoff.remaining('b', 50)).toBe(100);
    expect(backoff.remaining('b', 149)).toBe(1);
    expect(backoff.remaining('b', 150)).toBe(0);
    expect(backoff.remaining('c', 50)).toBe(0);
  });

  it('starts over after an answer', () => {
    const backoff = new NodeBackoff(100, 1_000);
    backoff.failed('b', 0);
    backoff.failed('b', 0);
    backoff.succeeded('b');
    expect(backoff.remaining('b', 0)).toBe(0);
    expect(backoff.failures('b')).toBe(0);
    expect(backoff.failed('b', 0)).toBe(100);
  });
});

import { CallQueue } from './call-queue';

describe('CallQueue', () => {
  it('hands entries out oldest first and refuses past capacity', () => {
    const queue = new CallQueue<string>(2);
    expect(queue.push('a')).toBeDefined();
    expect(queue.push('b')).toBeDefined();
    expect(queue.isFull).toBe(true);
    expect(queue.push('c')).toBeUndefined();
    expect(queue.shift()).toBe('a');
    expect(queue.push('c')).toBeDefined();
    expect(queue.drain()).toEqual(['b', 'c']);
    expect(queue.size).toBe(0);
  });

  it('removes an entry from the middle exactly once', () => {
    const queue = new CallQueue<string>(5);
    queue.push('a');
    const ticket = queue.push('b')!;
    queue.push('c');
    expect(queue.remove(ticket)).toBe(true);
    expect(queue.remove(ticket)).toBe(false);
    expect([queue.shift(), queue.shift(), queue.shift()]).toEqual(['a', 'c', undefined]);
  });

  it('serves returned calls first and never refuses them, even when the normal lane is full', () => {
    const queue = new CallQueue<string>(1);
    queue.push('a');
    expect(queue.push('r1', 'returned')).toBeDefined();
    const r2 = queue.push('r2', 'returned')!;
    expect(queue.size).toBe(3);
    expect(queue.remove(r2)).toBe(true);
    expect([queue.shift(), queue.shift(), queue.shift()]).toEqual(['r1', 'a', undefined]);
  });
});

import { RequestQueue } from './request-queue';

describe('RequestQueue', () => {
  it('hands entries out oldest first and refuses past capacity', () => {
    const queue = new RequestQueue<string>(2);
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
    const queue = new RequestQueue<string>(5);
    queue.push('a');
    const ticket = queue.push('b')!;
    queue.push('c');
    expect(queue.remove(ticket)).toBe(true);
    expect(queue.remove(ticket)).toBe(false);
    expect([queue.shift(), queue.shift(), queue.shift()]).toEqual(['a', 'c', undefined]);
  });
});

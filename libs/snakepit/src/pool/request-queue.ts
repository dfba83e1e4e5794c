/**
 * A bounded FIFO of callers waiting for a worker slot. Entries leave from the
 * head when a slot frees, or from anywhere when they time out or are cancelled
 * (a Map keeps insertion order and deletes in O(1)).
 */
export class RequestQueue<T> {
  private readonly entries = new Map<number, T>();
  private nextTicket = 1;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  get isFull(): boolean {
    return this.entries.size >= this.capacity;
  }

  /** Adds an entry at the tail; returns its ticket, or undefined when full. */
  push(entry: T): number | undefined {
    if (this.isFull) return undefined;
    const ticket = this.nextTicket++;
    this.entries.set(ticket, entry);
    return ticket;
  }

  /** Removes and returns the oldest entry. */
  shift(): T | undefined {
    for (const [ticket, entry] of this.entries) {
      this.entries.delete(ticket);
      return entry;
    }
    return undefined;
  }

  /** Removes an entry wherever it is; false when it already left. */
  remove(ticket: number): boolean {
    return this.entries.delete(ticket);
  }

  /** Empties the queue, returning what was in it, oldest first. */
  drain(): T[] {
    const all = [...this.entries.values()];
    this.entries.clear();
    return all;
  }
}

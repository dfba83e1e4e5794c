/**
 * Lanes of a queue, served in this order. `returned` holds calls that were
 * handed to a worker whose stream broke before the call left the host: they
 * were first in line once and go first again. Priorities would be more lanes.
 */
export const QUEUE_LANES = ['returned', 'normal'] as const;
export type QueueLane = (typeof QUEUE_LANES)[number];

/**
 * A bounded queue of callers waiting for a worker slot, in lanes. Entries
 * leave from the head of the first non-empty lane when a slot frees, or from
 * anywhere when they time out or are cancelled (a Map per lane keeps
 * insertion order and deletes in O(1)). Only the `normal` lane is bounded:
 * a returned call already holds its place and must not be lost.
 */
export class CallQueue<T> {
  private readonly lanes = new Map<QueueLane, Map<number, T>>(QUEUE_LANES.map((lane) => [lane, new Map()]));
  private readonly laneOf = new Map<number, QueueLane>();
  private nextTicket = 1;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.laneOf.size;
  }

  get isFull(): boolean {
    return this.lanes.get('normal')!.size >= this.capacity;
  }

  /** Adds an entry at the tail of `lane`; returns its ticket, or undefined when the normal lane is full. */
  push(entry: T, lane: QueueLane = 'normal'): number | undefined {
    if (lane === 'normal' && this.isFull) return undefined;
    const ticket = this.nextTicket++;
    this.lanes.get(lane)!.set(ticket, entry);
    this.laneOf.set(ticket, lane);
    return ticket;
  }

  /** Removes and returns the oldest entry of the first non-empty lane. */
  shift(): T | undefined {
    for (const entries of this.lanes.values()) {
      for (const [ticket, entry] of entries) {
        entries.delete(ticket);
        this.laneOf.delete(ticket);
        return entry;
      }
    }
    return undefined;
  }

  /** Removes an entry wherever it is; false when it already left. */
  remove(ticket: number): boolean {
    const lane = this.laneOf.get(ticket);
    if (!lane) return false;
    this.laneOf.delete(ticket);
    return this.lanes.get(lane)!.delete(ticket);
  }

  /** Empties the queue, returning what was in it in serving order. */
  drain(): T[] {
    const all = [...this.lanes.values()].flatMap((entries) => [...entries.values()]);
    for (const entries of this.lanes.values()) entries.clear();
    this.laneOf.clear();
    return all;
  }
}

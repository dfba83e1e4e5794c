/** A key is let through at most once per this long. */
const EVERY_MS = 60_000;
/** Keys remembered: they may come from anyone (ids in unsigned records, peers' addresses). */
const MAX_KEYS = 1_000;

/**
 * Says whether a warning should be logged now: once per key (node and reason,
 * peer and reason) per minute, so a flood of forged records or replayed calls
 * is counted in full by the metrics but logged a few times only.
 */
export class LogLimiter {
  private readonly last = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  allow(key: string): boolean {
    const now = this.now();
    for (const [known, at] of this.last) {
      if (now - at < EVERY_MS) break; // insertion order is time order: the rest is younger
      this.last.delete(known);
    }
    if (this.last.has(key) || this.last.size >= MAX_KEYS) return false;
    this.last.set(key, now);
    return true;
  }
}

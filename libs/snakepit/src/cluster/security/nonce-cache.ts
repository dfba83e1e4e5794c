/**
 * Nonces of the calls accepted recently, each kept until its call's timestamp
 * leaves the acceptance window (after that the window alone refuses a replay).
 * Bounded: at most `maxEntries`; when full of still-live nonces it refuses new
 * ones (fails closed) rather than forget one, which would let that call be
 * replayed. Only calls whose MAC verified get here, so only cluster members
 * can fill it.
 *
 * Written here rather than taken from a cache library: lru-cache (already in
 * node_modules, through other packages) evicts the oldest entry when full,
 * which is exactly the forgetting a replay cache must not do; what is needed is
 * a Map in insertion order and a sweep from its head, a few lines.
 */
export class NonceCache {
  /** nonce -> epoch ms after which it may be forgotten; insertion order is arrival order. */
  private readonly entries = new Map<string, number>();

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Records `nonce` until `expiresAt`. Answers `fresh` when it was not seen,
   * `replayed` when it was (and is still live), `full` when the cache cannot
   * take it.
   */
  add(nonce: string, expiresAt: number): 'fresh' | 'replayed' | 'full' {
    const now = this.now();
    const known = this.entries.get(nonce);
    if (known !== undefined && known >= now) return 'replayed';
    this.sweep(now);
    if (this.entries.size >= this.maxEntries) return 'full';
    this.entries.delete(nonce);
    this.entries.set(nonce, expiresAt);
    return 'fresh';
  }

  /**
   * Forgets expired nonces from the head. Entries arrive with expiries up to two
   * windows apart (clock skew both ways), so one may wait behind a later-expiring
   * head for at most that long: still bounded by time, and `add` checks expiry itself.
   */
  private sweep(now: number): void {
    for (const [nonce, expiresAt] of this.entries) {
      if (expiresAt >= now) break;
      this.entries.delete(nonce);
    }
  }
}

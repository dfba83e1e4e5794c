/**
 * Nodes to keep away from after transport failures, each for a window that
 * doubles with every failure in a row (from `baseMs` up to `maxMs`) and ends
 * at the first success. While a node's window runs the router sends it
 * nothing; once it ends the next call is the probe. A partitioned peer thus
 * costs one failed call per window, not one per call, and is used again as
 * soon as the path returns (at most `maxMs` later).
 *
 * Hand-written rather than a cockatiel circuit breaker per node: cockatiel
 * wraps the call itself (`execute(fn)`), turns half-open only when a call
 * comes through it, and makes concurrent callers wait for the probe; the
 * router needs to ask, while choosing among nodes and for streams too,
 * which nodes are in their window, and fails fast when all are.
 */
export class NodeBackoff {
  private readonly nodes = new Map<string, { failures: number; until: number }>();

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {}

  /** Records a transport failure of `nodeId` at `now` (ms, monotonic); returns the new window's length. */
  failed(nodeId: string, now: number): number {
    const failures = (this.nodes.get(nodeId)?.failures ?? 0) + 1;
    const windowMs = Math.min(this.baseMs * 2 ** Math.min(failures - 1, 30), this.maxMs);
    this.nodes.set(nodeId, { failures, until: now + windowMs });
    return windowMs;
  }

  /** An answer came back from `nodeId` (any answer, a tool's error included): the path works. */
  succeeded(nodeId: string): void {
    this.nodes.delete(nodeId);
  }

  /** Milliseconds left in `nodeId`'s window at `now`; 0 when it may be called. */
  remaining(nodeId: string, now: number): number {
    return Math.max(0, (this.nodes.get(nodeId)?.until ?? 0) - now);
  }

  /** Failures of `nodeId` in a row (0 once it answered). */
  failures(nodeId: string): number {
    return this.nodes.get(nodeId)?.failures ?? 0;
  }
}

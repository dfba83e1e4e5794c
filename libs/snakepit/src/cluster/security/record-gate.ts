import type { NodeRecord } from '../membership/node-record';
import { CALL_WINDOW_MS } from './call-auth';
import { LogLimiter } from './log-limiter';
import { verifyRecord, type RecordRejection } from './signed-record';

export interface IgnoredRecord {
  reason: RecordRejection;
  /** The id the record claims (not verified), when it names one. */
  nodeId?: string;
  detail: string;
}

/**
 * Lets through only the records a cluster member signed recently, each newer
 * than (or the same as) the last one seen from its node: a copy of an old
 * record written back into Redis is stale. Ignored records are reported (the
 * metric) and logged once per node and reason per minute.
 */
export class RecordGate {
  /** Node id -> signing time of the newest record seen from it. */
  private readonly newest = new Map<string, number>();
  private readonly logs: LogLimiter;

  constructor(
    private readonly secrets: readonly string[],
    private readonly nodeTtlMs: number,
    private readonly ignored: (record: IgnoredRecord, log: boolean) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.logs = new LogLimiter(now);
  }

  admit(values: ReadonlyArray<string | null>): NodeRecord[] {
    const now = this.now();
    this.forget(now);
    const admitted: NodeRecord[] = [];
    for (const value of values) {
      if (value === null) continue; // deregistered between the two reads of the script
      const verdict = verifyRecord(value, this.secrets, this.nodeTtlMs, now);
      if (!verdict.ok) {
        this.ignore({ reason: verdict.reason, nodeId: verdict.nodeId, detail: verdict.detail });
        continue;
      }
      const { record, signedAt } = verdict;
      const newest = this.newest.get(record.id) ?? Number.NEGATIVE_INFINITY;
      if (signedAt < newest) {
        this.ignore({ reason: 'stale', nodeId: record.id, detail: `older than the last record seen from it (${newest - signedAt} ms)` });
        continue;
      }
      this.newest.set(record.id, signedAt);
      admitted.push(record);
    }
    return admitted;
  }

  private ignore(record: IgnoredRecord): void {
    this.ignored(record, this.logs.allow(`${record.nodeId ?? '?'} ${record.reason}`));
  }

  /** Drops signing times past the acceptance window: the window alone refuses those records. */
  private forget(now: number): void {
    const oldest = now - this.nodeTtlMs - CALL_WINDOW_MS;
    for (const [id, signedAt] of this.newest) if (signedAt < oldest) this.newest.delete(id);
  }
}

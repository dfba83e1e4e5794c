/** Every Redis key and channel the cluster uses, in one place, under the configured prefix. */
export class RedisKeys {
  constructor(private readonly prefix: string) {}

  /** Hash of one session: metadata fields plus `s:<key>` per state key; Redis-side TTL. */
  session(id: string): string {
    return `${this.prefix}session:${id}`;
  }

  /** Sorted set of session ids by expiry (Redis clock, ms): counts and expiry events without SCAN. */
  get sessionExpiry(): string {
    return `${this.prefix}sessions:expiry`;
  }

  /** Sorted set of node ids by the time their registration lapses (Redis clock, ms). */
  get nodeDeadlines(): string {
    return `${this.prefix}nodes:deadline`;
  }

  /** Hash node id -> the node's advertised record (JSON). */
  get nodeRecords(): string {
    return `${this.prefix}nodes:record`;
  }

  /** Pub/sub channel announcing joins and leaves. */
  get membershipChannel(): string {
    return `${this.prefix}membership`;
  }
}

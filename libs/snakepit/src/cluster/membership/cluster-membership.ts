import { performance } from 'node:perf_hooks';
import { Subject, type Observable } from 'rxjs';
import type { ResolvedClusterOptions } from '../cluster-options';
import type { RedisConnection } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import { RecordGate, type IgnoredRecord } from '../security/record-gate';
import { signRecord } from '../security/signed-record';
import type { TelemetryService } from '../../telemetry/telemetry.service';
import { LEAVE, SYNC_MEMBERS } from './membership-scripts';
import type { NodeRecord } from './node-record';
import { SnakepitLogger } from '../../logging/snakepit-logger';

/** A node gone from the view; `graceful` when it deregistered itself and is draining its calls. */
export interface Departure {
  nodeId: string;
  graceful: boolean;
}

/**
 * Who is in the cluster, as last read from Redis. Each node registers under a
 * deadline it pushes forward every heartbeat; a node that stops (SIGKILL, lost
 * network) is dropped by whichever node syncs first after its deadline. Joins
 * and leaves are announced on a pub/sub channel, so every node re-reads at once
 * instead of waiting for its next heartbeat. When Redis cannot be read for
 * longer than the failure-detection window the view counts as unknown: no
 * peer is offered for routing until a read succeeds again.
 */
export class ClusterMembership {
  private readonly logger = new SnakepitLogger('SnakepitCluster');
  private readonly departed = new Subject<Departure>();
  /** Nodes that left the view: deregistered on shutdown (graceful), or dropped or restarted (their calls in flight are lost). */
  readonly departures$: Observable<Departure> = this.departed.asObservable();
  /** Nodes that announced a graceful leave not yet seen in the view. */
  private readonly leaving = new Set<string>();
  private peers = new Map<string, NodeRecord>();
  private remotePools = new Set<string>();
  private syncedAt = Number.NEGATIVE_INFINITY;
  /** Syncs run one at a time, so an older answer never overwrites a newer one. */
  private queue: Promise<void> = Promise.resolve();
  private refreshQueued = false;
  /** Only records signed with an accepted secret, recently, and no older than their node's last one get into the view. */
  private readonly gate: RecordGate;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: RedisKeys,
    private readonly cluster: ResolvedClusterOptions,
    private readonly telemetry?: TelemetryService,
  ) {
    this.gate = new RecordGate(cluster.verifySecrets, cluster.nodeTtlMs, (record, log) => this.ignored(record, log));
  }

  /** Re-reads the members whenever a join, leave or loss is announced. */
  watch(): Promise<void> {
    return this.redis.subscribe(this.keys.membershipChannel, (message) => {
      const [event, nodeId] = message.split(' ');
      if (event === 'leave') this.leaving.add(nodeId);
      this.refresh().catch(() => undefined); // Redis down: the heartbeat loop retries and logs
    });
  }

  /** Registers or refreshes this node, then takes in every member. */
  heartbeat(self: NodeRecord): Promise<void> {
    return this.enqueue(() => this.sync(self));
  }

  /** Re-reads the members; calls made while one is already waiting share it. */
  refresh(): Promise<void> {
    if (this.refreshQueued) return this.queue;
    this.refreshQueued = true;
    return this.enqueue(() => {
      this.refreshQueued = false;
      return this.sync(undefined);
    });
  }

  /** Deregisters this node: the others stop routing to it at once. */
  leave(): Promise<void> {
    return this.redis.guard('membership.leave', async () => {
      await LEAVE.run(this.redis.client, this.memberKeys(), [this.keys.membershipChannel, this.cluster.nodeId]);
    });
  }

  /** Whether the view was read within the failure-detection window. */
  get fresh(): boolean {
    return performance.now() - this.syncedAt < this.cluster.nodeTtlMs;
  }

  /** The other live nodes; none while the view is unknown (Redis unreachable). */
  livePeers(): NodeRecord[] {
    return this.fresh ? [...this.peers.values()] : [];
  }

  /** Pools other nodes served at the last successful read, kept while Redis is unreachable. */
  knownRemotePools(): ReadonlySet<string> {
    return this.remotePools;
  }

  private enqueue(operation: () => Promise<void>): Promise<void> {
    const run = this.queue.then(operation);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async sync(self: NodeRecord | undefined): Promise<void> {
    const reply = await this.redis.guard('membership.sync', () =>
      SYNC_MEMBERS.run(this.redis.client, this.memberKeys(), [
        this.keys.membershipChannel,
        this.cluster.nodeTtlMs,
        self?.id ?? '',
        self ? signRecord(self, this.cluster.secret) : '',
      ]),
    );
    this.syncedAt = performance.now();
    this.take(this.gate.admit(reply as Array<string | null>).filter((node) => node.id !== this.cluster.nodeId));
  }

  private ignored(record: IgnoredRecord, log: boolean): void {
    this.telemetry?.emit('cluster.record_ignored', { reason: record.reason, nodeId: record.nodeId });
    if (log) this.logger.warn({ msg: 'ignored a node record from Redis', reason: record.reason, node: record.nodeId, detail: record.detail });
  }

  private take(records: NodeRecord[]): void {
    const next = new Map(records.map((node) => [node.id, node]));
    for (const [id, before] of this.peers) {
      const now = next.get(id);
      if (now?.startedAt === before.startedAt && now.address === before.address) continue;
      const graceful = !now && this.leaving.has(id);
      this.logger.log({ msg: now ? 'node restarted' : graceful ? 'node left' : 'node lost', node: id });
      this.departed.next({ nodeId: id, graceful });
    }
    this.leaving.clear();
    for (const [id, node] of next) {
      if (!this.peers.has(id)) this.logger.log({ msg: 'node joined', node: id, address: node.address, version: node.version });
    }
    this.peers = next;
    this.remotePools = new Set(records.flatMap((node) => node.pools.map((pool) => pool.name)));
  }

  private memberKeys(): string[] {
    return [this.keys.nodeDeadlines, this.keys.nodeRecords];
  }
}

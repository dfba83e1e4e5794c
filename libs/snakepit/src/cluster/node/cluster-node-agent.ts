import type { BeforeApplicationShutdown, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Subscription } from 'rxjs';
import type { ResolvedOptions } from '../../options/resolve-options';
import type { PoolService } from '../../pool/pool.service';
import type { ResolvedClusterOptions } from '../cluster-options';
import type { ClusterMembership } from '../membership/cluster-membership';
import type { NodeRecord } from '../membership/node-record';
import type { ClusterClient } from '../transport/cluster-client';
import type { ClusterServer } from '../transport/cluster-server';
import { SnakepitLogger } from '../../logging/snakepit-logger';

/** Forwarded calls still running get this long to finish once the pools drained. */
const SERVER_STOP_GRACE_MS = 1_000;

/**
 * This node's life in the cluster. Once every pool is ready it serves the
 * internal ClusterNode service and registers, then heartbeats its record
 * (pools, free capacity, tools); on shutdown it deregisters first, so no new
 * call is routed here while the pools drain, and stops serving last.
 */
export class ClusterNodeAgent implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new SnakepitLogger('SnakepitCluster');
  private readonly startedAt = Date.now();
  private readonly version = libraryVersion();
  private address = '';
  private timer?: NodeJS.Timeout;
  private stopping = false;
  private departures?: Subscription;
  /** The last heartbeat failure, logged once until a heartbeat succeeds again. */
  private failing?: string;

  constructor(
    private readonly cluster: ResolvedClusterOptions,
    private readonly options: ResolvedOptions,
    private readonly pools: PoolService,
    private readonly membership: ClusterMembership,
    private readonly server: ClusterServer,
    private readonly client: ClusterClient,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.departures = this.membership.departures$.subscribe(({ nodeId, graceful }) => (graceful ? this.client.retire(nodeId) : this.client.lose(nodeId)));
    this.address = await this.server.start();
    // Resolves once subscribed, which waits for Redis when it is down: never block start on it.
    this.membership.watch().catch((error: unknown) => this.logger.warn({ msg: 'cannot watch cluster membership', error: String(error) }));
    await this.beat();
    this.logger.log({ msg: 'joined the cluster', node: this.cluster.nodeId, address: this.address, peers: this.membership.livePeers().map((n) => n.id) });
  }

  /** Runs with the pools' drain: deregisters, then lets the calls this node forwarded finish. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.membership.leave().catch((error: unknown) => this.logger.warn({ msg: 'could not deregister from the cluster', error: String(error) }));
    if (!(await this.client.drain(this.options.drainTimeoutMs))) this.logger.warn({ msg: 'drain deadline passed with forwarded calls in flight' });
  }

  async onApplicationShutdown(): Promise<void> {
    this.departures?.unsubscribe();
    this.client.close();
    await this.server.stop(SERVER_STOP_GRACE_MS);
  }

  private async beat(): Promise<void> {
    try {
      await this.membership.heartbeat(this.record());
      if (this.failing) this.logger.log({ msg: 'cluster heartbeat recovered', node: this.cluster.nodeId });
      this.failing = undefined;
    } catch (error) {
      const message = (error as Error).message;
      if (!this.failing) this.logger.warn({ msg: 'cluster heartbeat failed; retrying', node: this.cluster.nodeId, error: message });
      this.failing = message;
    }
    if (!this.stopping) {
      this.timer = setTimeout(() => void this.beat(), this.cluster.heartbeatIntervalMs);
      this.timer.unref();
    }
  }

  private record(): NodeRecord {
    const configs = new Map(this.options.pools.map((pool) => [pool.name, pool]));
    const tools = new Map(this.pools.listTools().map((entry) => [entry.pool, entry.tools]));
    return {
      id: this.cluster.nodeId,
      address: this.address,
      version: this.version,
      startedAt: this.startedAt,
      pools: this.pools.poolInfo().map((info) => ({
        name: info.name,
        size: info.size,
        ready: info.ready,
        available: info.available,
        capacity: info.size * configs.get(info.name)!.capacityPerWorker,
        queueDepth: info.queueDepth,
        timeoutMs: configs.get(info.name)!.timeoutMs,
        maxPayloadBytes: configs.get(info.name)!.maxPayloadBytes,
        tools: tools.get(info.name) ?? [],
      })),
    };
  }
}

/** The library's version from its package.json (one level above src/ and dist/). */
function libraryVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

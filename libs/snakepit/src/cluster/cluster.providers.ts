import type { Provider } from '@nestjs/common';
import type { ResolvedOptions } from '../options/resolve-options';
import { SNAKEPIT_RESOLVED_OPTIONS } from '../options/tokens';
import { PoolService } from '../pool/pool.service';
import { SNAKEPIT_REMOTE_POOLS } from '../pool/remote-pools';
import { InMemorySessionStore } from '../session/in-memory-session.store';
import type { SessionStore } from '../session/session-store';
import { resolveClusterOptions, type ResolvedClusterOptions } from './cluster-options';
import { ClusterMembership } from './membership/cluster-membership';
import { ClusterNodeAgent } from './node/cluster-node-agent';
import { RedisConnection } from './redis/redis-connection';
import { RedisKeys } from './redis/redis-keys';
import { RemotePoolRouter } from './routing/remote-pool-router';
import { RedisSessionStore } from './session/redis-session.store';
import { ClusterClient } from './transport/cluster-client';
import { ClusterServer } from './transport/cluster-server';

/** Injection token of the resolved cluster options; null on a single node. */
export const SNAKEPIT_CLUSTER_OPTIONS = Symbol('SNAKEPIT_CLUSTER_OPTIONS');

type Maybe<T> = T | null;

/**
 * The cluster's providers. Options arrive at run time (forRootAsync), so every
 * factory returns null when `cluster` is not set: a single node builds none of
 * them and PoolService gets no RemotePools.
 */
export const clusterProviders: Provider[] = [
  {
    provide: SNAKEPIT_CLUSTER_OPTIONS,
    inject: [SNAKEPIT_RESOLVED_OPTIONS],
    useFactory: (options: ResolvedOptions) => (options.cluster ? resolveClusterOptions(options.cluster) : null),
  },
  {
    provide: RedisKeys,
    inject: [SNAKEPIT_CLUSTER_OPTIONS],
    useFactory: (cluster: Maybe<ResolvedClusterOptions>) => cluster && new RedisKeys(cluster.keyPrefix),
  },
  {
    provide: RedisConnection,
    inject: [SNAKEPIT_CLUSTER_OPTIONS],
    useFactory: (cluster: Maybe<ResolvedClusterOptions>) => cluster && new RedisConnection(cluster),
  },
  {
    provide: ClusterMembership,
    inject: [SNAKEPIT_CLUSTER_OPTIONS, RedisConnection, RedisKeys],
    useFactory: (cluster: Maybe<ResolvedClusterOptions>, redis: Maybe<RedisConnection>, keys: Maybe<RedisKeys>) =>
      cluster && new ClusterMembership(redis!, keys!, cluster),
  },
  {
    provide: ClusterClient,
    inject: [SNAKEPIT_CLUSTER_OPTIONS],
    useFactory: (cluster: Maybe<ResolvedClusterOptions>) => cluster && new ClusterClient(cluster),
  },
  {
    provide: SNAKEPIT_REMOTE_POOLS,
    inject: [SNAKEPIT_CLUSTER_OPTIONS, ClusterMembership, ClusterClient],
    useFactory: (cluster: Maybe<ResolvedClusterOptions>, membership: Maybe<ClusterMembership>, client: Maybe<ClusterClient>) =>
      cluster && new RemotePoolRouter(cluster, membership!, client!),
  },
  {
    provide: ClusterServer,
    inject: [SNAKEPIT_CLUSTER_OPTIONS, SNAKEPIT_RESOLVED_OPTIONS, PoolService],
    useFactory: (cluster: Maybe<ResolvedClusterOptions>, options: ResolvedOptions, pools: PoolService) =>
      cluster && new ClusterServer(cluster, pools, Math.max(...options.pools.map((pool) => pool.maxPayloadBytes))),
  },
  {
    provide: ClusterNodeAgent,
    inject: [SNAKEPIT_CLUSTER_OPTIONS, SNAKEPIT_RESOLVED_OPTIONS, PoolService, ClusterMembership, ClusterServer, ClusterClient],
    useFactory: (
      cluster: Maybe<ResolvedClusterOptions>,
      options: ResolvedOptions,
      pools: PoolService,
      membership: Maybe<ClusterMembership>,
      server: Maybe<ClusterServer>,
      client: Maybe<ClusterClient>,
    ) => cluster && new ClusterNodeAgent(cluster, options, pools, membership!, server!, client!),
  },
];

/** The SESSION_STORE: the one the options name, else Redis in a cluster, else in memory. */
export function chooseSessionStore(options: ResolvedOptions, redis: Maybe<RedisConnection>, keys: Maybe<RedisKeys>): SessionStore {
  if (options.sessions.store) return options.sessions.store;
  return redis && keys ? new RedisSessionStore(redis, keys) : new InMemorySessionStore();
}

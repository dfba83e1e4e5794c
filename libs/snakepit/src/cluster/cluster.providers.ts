import type { Provider } from '@nestjs/common';
import { requirePeers } from '../options/optional-peers';
import type { ResolvedOptions } from '../options/resolve-options';
import { SNAKEPIT_RESOLVED_OPTIONS } from '../options/tokens';
import { PoolService } from '../pool/pool.service';
import { SNAKEPIT_REMOTE_POOLS } from '../pool/remote-pools';
import { InMemorySessionStore } from '../session/in-memory-session.store';
import { SESSION_STORE, type SessionStore } from '../session/session-store';
import { TelemetryService } from '../telemetry/telemetry.service';
import { resolveClusterOptions, type ResolvedClusterOptions } from './cluster-options';
import type * as ClusterClasses from './cluster-classes';

/** Injection token of the resolved cluster options; null on a single node. */
export const SNAKEPIT_CLUSTER_OPTIONS = Symbol('SNAKEPIT_CLUSTER_OPTIONS');

// The cluster's parts are provided under symbols rather than their classes, so
// this file (part of the root entry) never loads cluster code or ioredis.
const CLUSTER_CLASSES = Symbol('ClusterClasses');
const REDIS_KEYS = Symbol('RedisKeys');
const REDIS_CONNECTION = Symbol('RedisConnection');
const CLUSTER_MEMBERSHIP = Symbol('ClusterMembership');
const CLUSTER_CLIENT = Symbol('ClusterClient');
const CLUSTER_SERVER = Symbol('ClusterServer');
const CLUSTER_NODE_AGENT = Symbol('ClusterNodeAgent');

type Maybe<T> = T | null;
type Classes = typeof ClusterClasses;
type RedisConnection = InstanceType<Classes['RedisConnection']>;
type RedisKeys = InstanceType<Classes['RedisKeys']>;
type ClusterMembership = InstanceType<Classes['ClusterMembership']>;
type ClusterClient = InstanceType<Classes['ClusterClient']>;
type ClusterServer = InstanceType<Classes['ClusterServer']>;

/** Loads cluster mode's code on first use; a missing ioredis is named with its install command. */
function loadClusterClasses(): Classes {
  requirePeers('Cluster mode (the `cluster` option)', ['ioredis']);
  // A lazy require, not an import: the root entry must not load ioredis (import() would need ESM under Jest).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./cluster-classes') as Classes;
}

/**
 * The cluster's providers. Options arrive at run time (forRootAsync), so every
 * factory returns null when `cluster` is not set: a single node builds none of
 * them, loads no cluster code, and PoolService gets no RemotePools.
 */
export const clusterProviders: Provider[] = [
  {
    provide: SNAKEPIT_CLUSTER_OPTIONS,
    inject: [SNAKEPIT_RESOLVED_OPTIONS],
    useFactory: (options: ResolvedOptions) => (options.cluster ? resolveClusterOptions(options.cluster) : null),
  },
  {
    provide: CLUSTER_CLASSES,
    inject: [SNAKEPIT_CLUSTER_OPTIONS],
    useFactory: (cluster: Maybe<ResolvedClusterOptions>) => cluster && loadClusterClasses(),
  },
  {
    provide: REDIS_KEYS,
    inject: [SNAKEPIT_CLUSTER_OPTIONS, CLUSTER_CLASSES],
    useFactory: (cluster: Maybe<ResolvedClusterOptions>, classes: Maybe<Classes>) => cluster && new classes!.RedisKeys(cluster.keyPrefix),
  },
  {
    provide: REDIS_CONNECTION,
    inject: [SNAKEPIT_CLUSTER_OPTIONS, CLUSTER_CLASSES],
    useFactory: (cluster: Maybe<ResolvedClusterOptions>, classes: Maybe<Classes>) => cluster && new classes!.RedisConnection(cluster),
  },
  {
    provide: CLUSTER_MEMBERSHIP,
    inject: [SNAKEPIT_CLUSTER_OPTIONS, CLUSTER_CLASSES, REDIS_CONNECTION, REDIS_KEYS, TelemetryService],
    useFactory: (
      cluster: Maybe<ResolvedClusterOptions>,
      classes: Maybe<Classes>,
      redis: Maybe<RedisConnection>,
      keys: Maybe<RedisKeys>,
      telemetry: TelemetryService,
    ) => cluster && new classes!.ClusterMembership(redis!, keys!, cluster, telemetry),
  },
  {
    provide: CLUSTER_CLIENT,
    inject: [SNAKEPIT_CLUSTER_OPTIONS, CLUSTER_CLASSES],
    useFactory: (cluster: Maybe<ResolvedClusterOptions>, classes: Maybe<Classes>) => cluster && new classes!.ClusterClient(cluster),
  },
  {
    provide: SNAKEPIT_REMOTE_POOLS,
    inject: [SNAKEPIT_CLUSTER_OPTIONS, CLUSTER_CLASSES, CLUSTER_MEMBERSHIP, CLUSTER_CLIENT],
    useFactory: (cluster: Maybe<ResolvedClusterOptions>, classes: Maybe<Classes>, membership: Maybe<ClusterMembership>, client: Maybe<ClusterClient>) =>
      cluster && new classes!.RemotePoolRouter(cluster, membership!, client!),
  },
  {
    provide: CLUSTER_SERVER,
    inject: [SNAKEPIT_CLUSTER_OPTIONS, CLUSTER_CLASSES, SNAKEPIT_RESOLVED_OPTIONS, PoolService, TelemetryService],
    useFactory: (cluster: Maybe<ResolvedClusterOptions>, classes: Maybe<Classes>, options: ResolvedOptions, pools: PoolService, telemetry: TelemetryService) =>
      cluster && new classes!.ClusterServer(cluster, pools, Math.max(...options.pools.map((pool) => pool.maxPayloadBytes)), telemetry),
  },
  {
    provide: CLUSTER_NODE_AGENT,
    inject: [SNAKEPIT_CLUSTER_OPTIONS, CLUSTER_CLASSES, SNAKEPIT_RESOLVED_OPTIONS, PoolService, CLUSTER_MEMBERSHIP, CLUSTER_SERVER, CLUSTER_CLIENT],
    useFactory: (
      cluster: Maybe<ResolvedClusterOptions>,
      classes: Maybe<Classes>,
      options: ResolvedOptions,
      pools: PoolService,
      membership: Maybe<ClusterMembership>,
      server: Maybe<ClusterServer>,
      client: Maybe<ClusterClient>,
    ) => cluster && new classes!.ClusterNodeAgent(cluster, options, pools, membership!, server!, client!),
  },
];

/** The SESSION_STORE: the one the options name, else Redis in a cluster, else in memory. */
export const sessionStoreProvider: Provider = {
  provide: SESSION_STORE,
  inject: [SNAKEPIT_RESOLVED_OPTIONS, CLUSTER_CLASSES, REDIS_CONNECTION, REDIS_KEYS],
  useFactory: (options: ResolvedOptions, classes: Maybe<Classes>, redis: Maybe<RedisConnection>, keys: Maybe<RedisKeys>): SessionStore => {
    if (options.sessions.store) return options.sessions.store;
    return classes && redis && keys ? new classes.RedisSessionStore(redis, keys) : new InMemorySessionStore();
  },
};

/**
 * The classes cluster mode is built from. Only `cluster.providers.ts` loads this
 * file, and only when the `cluster` option is set: it pulls in ioredis, which a
 * single node neither loads nor needs installed.
 */
export { ClusterMembership } from './membership/cluster-membership';
export { ClusterNodeAgent } from './node/cluster-node-agent';
export { RedisConnection } from './redis/redis-connection';
export { RedisKeys } from './redis/redis-keys';
export { RemotePoolRouter } from './routing/remote-pool-router';
export { RedisSessionStore } from './session/redis-session.store';
export { ClusterClient } from './transport/cluster-client';
export { ClusterServer } from './transport/cluster-server';

/**
 * `@snakepit/nestjs/cluster`: cluster mode's public types and classes. Cluster
 * mode itself is turned on by the `cluster` option of `SnakepitModule.forRoot`
 * and needs the optional peer `ioredis`; the root entry loads none of this.
 */
export { CLUSTER_DEFAULTS, type ClusterOptions, type ResolvedClusterOptions } from './cluster-options';
export { SNAKEPIT_CLUSTER_OPTIONS } from './cluster.providers';
export { ClusterMembership } from './membership/cluster-membership';
export type { AdvertisedPool, NodeRecord } from './membership/node-record';

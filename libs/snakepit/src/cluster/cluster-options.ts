/** Cluster mode: several Nest nodes act as one Snakepit, coordinated through Redis. */
export interface ClusterOptions {
  /** Redis connection URL, e.g. `redis://127.0.0.1:6379/0`. */
  redis: string;
  /** This node's id (default: hostname + pid). */
  nodeId?: string;
  /** host:port where other nodes reach this node's internal gRPC service. */
  advertiseAddress?: string;
}

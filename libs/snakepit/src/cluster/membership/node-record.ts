import type { ToolInfo } from '../../pool/pool.service';

/** One pool as a node advertises it to the cluster. */
export interface AdvertisedPool {
  name: string;
  size: number;
  ready: number;
  /** Free call slots at the last heartbeat: the load-balancing signal (never above `capacity` once read back). */
  available: number;
  /** Call slots in all (size × calls per worker), signed with the record: bounds `available`; a record without it is ignored. */
  capacity?: number;
  queueDepth: number;
  /** The pool's default call budget, so callers can bound a forwarded call. */
  timeoutMs: number;
  /** Largest argument payload the pool accepts, checked before forwarding. */
  maxPayloadBytes: number;
  tools: ToolInfo[];
}

/** What a node registers in Redis, refreshed every heartbeat, signed with the cluster secret (security/signed-record.ts). */
export interface NodeRecord {
  id: string;
  /** host:port of its internal ClusterNode gRPC service. */
  address: string;
  /** Version of the Snakepit library it runs. */
  version: string;
  /** Epoch ms the node started; a new value under the same id is a new incarnation. */
  startedAt: number;
  pools: AdvertisedPool[];
}

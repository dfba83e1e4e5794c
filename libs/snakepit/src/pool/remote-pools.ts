import type { Observable } from 'rxjs';
import type { ExecuteOptions, ExecuteResult, PoolTools, StreamChunk } from './pool.service';

/** Injection token of the cluster's RemotePools; absent on a single node. */
export const SNAKEPIT_REMOTE_POOLS = Symbol('SNAKEPIT_REMOTE_POOLS');

/**
 * Pools that other nodes of a cluster serve. PoolService consults it only for
 * a pool this node does not run; the cluster module provides it.
 */
export interface RemotePools {
  /** Whether another live node serves `pool` now. */
  has(pool: string): boolean;
  execute<T>(tool: string, args: unknown, options: ExecuteOptions & { pool: string }): Promise<ExecuteResult<T>>;
  executeStream<T>(tool: string, args: unknown, options: ExecuteOptions & { pool: string }): Observable<StreamChunk<T>>;
  /** The cluster-wide view: this node's pools merged with every other node's. */
  listTools(local: PoolTools[]): PoolTools[];
}

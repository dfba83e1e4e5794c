import type { AdvertisedPool, NodeRecord } from '../membership/node-record';

/** A node that serves the pool a call needs, with what this node knows of its load. */
export interface Candidate {
  node: NodeRecord;
  pool: AdvertisedPool;
  /** Calls this node forwarded there that have not answered yet. */
  inflight: number;
}

/**
 * The least loaded candidate: most free slots as advertised at the last
 * heartbeat, minus the calls this node has in flight there. The session's
 * previous node wins while it has room (affinity is a hint, never a wait).
 * Equal candidates take turns, so idle nodes share the load.
 */
export function pickNode(candidates: Candidate[], preferredNodeId: string | undefined, turn: number): Candidate | undefined {
  if (candidates.length === 0) return undefined;
  const free = (candidate: Candidate) => candidate.pool.available - candidate.inflight;
  const preferred = candidates.find((candidate) => candidate.node.id === preferredNodeId);
  if (preferred && free(preferred) > 0) return preferred;
  const most = Math.max(...candidates.map(free));
  const best = candidates.filter((candidate) => free(candidate) === most).sort((a, b) => a.node.id.localeCompare(b.node.id));
  return best[turn % best.length];
}

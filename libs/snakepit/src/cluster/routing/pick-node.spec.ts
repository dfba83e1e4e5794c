import type { AdvertisedPool, NodeRecord } from '../membership/node-record';
import { pickNode, type Candidate } from './pick-node';

function candidate(id: string, available: number, inflight = 0): Candidate {
  const pool: AdvertisedPool = { name: 'p', size: 4, ready: 4, available, queueDepth: 0, timeoutMs: 1000, maxPayloadBytes: 1024, tools: [] };
  const node: NodeRecord = { id, address: `${id}:1`, version: 'test', startedAt: 0, pools: [pool] };
  return { node, pool, inflight };
}

describe('pickNode', () => {
  it('takes the node with the most free slots, counting calls already forwarded there', () => {
    expect(pickNode([candidate('a', 2), candidate('b', 3)], undefined, 0)?.node.id).toBe('b');
    expect(pickNode([candidate('a', 2), candidate('b', 3, 2)], undefined, 0)?.node.id).toBe('a');
  });

  it("prefers the session's previous node while it has room, and only then", () => {
    expect(pickNode([candidate('a', 1), candidate('b', 3)], 'a', 0)?.node.id).toBe('a');
    expect(pickNode([candidate('a', 1, 1), candidate('b', 3)], 'a', 0)?.node.id).toBe('b');
  });

  it('rotates among equally loaded nodes, whatever order they come in', () => {
    const picks = [0, 1, 2, 3].map((turn) => pickNode([candidate('b', 1), candidate('a', 1)], undefined, turn)?.node.id);
    expect(picks).toEqual(['a', 'b', 'a', 'b']);
  });

  it('has nothing to pick from no candidates', () => {
    expect(pickNode([], 'a', 0)).toBeUndefined();
  });
});

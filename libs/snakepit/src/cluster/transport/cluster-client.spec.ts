import { firstValueFrom } from 'rxjs';
import { resolveClusterOptions } from '../cluster-options';
import type { NodeRecord } from '../membership/node-record';
import { ClusterClient } from './cluster-client';

const peer: NodeRecord = { id: 'b', address: '127.0.0.1:1', version: 'test', startedAt: 0, pools: [] };

describe('ClusterClient', () => {
  it('refuses new forwards once draining, as the local pools refuse new calls', async () => {
    const client = new ClusterClient(resolveClusterOptions({ redis: 'redis://r', secret: 'a-secret-of-16-chars', nodeId: 'a' }));
    await expect(client.drain(1_000)).resolves.toBe(true);
    const refusal = { code: 'SHUTTING_DOWN', details: { pool: 'p' } };
    await expect(client.execute(peer, { tool: 't', pool: 'p' }, 1_000)).rejects.toMatchObject(refusal);
    await expect(firstValueFrom(client.stream(peer, { tool: 't', pool: 'p' }, 1_000))).rejects.toMatchObject(refusal);
    client.close();
  });
});

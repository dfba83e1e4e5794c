import { startSampleApp, type SampleApp } from '../helpers/sample-app';

/** How fast the test clusters notice a node going (fast, so the specs wait little). */
export const HEARTBEAT_MS = 250;
export const NODE_TTL_MS = 1_000;

/**
 * Sample-app nodes of one test cluster: each started with the cluster's Redis,
 * its node id, its pools and the fast heartbeat, and remembered so that the
 * spec stops every one of them.
 */
export class ClusterNodes {
  private readonly apps: SampleApp[] = [];

  constructor(private readonly redisUrl: () => string) {}

  async start(nodeId: string, pools: string, env: Record<string, string> = {}): Promise<SampleApp> {
    const app = await startSampleApp({
      REDIS_URL: this.redisUrl(),
      SNAKEPIT_NODE_ID: nodeId,
      SNAKEPIT_POOLS: pools,
      SNAKEPIT_CLUSTER_HEARTBEAT_MS: String(HEARTBEAT_MS),
      SNAKEPIT_CLUSTER_NODE_TTL_MS: String(NODE_TTL_MS),
      ...env,
    });
    this.apps.push(app);
    return app;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.apps.map((app) => app.stop()));
  }
}

import type { Payload } from '../bridge/generated/snakepit/bridge/v1/Payload';
import type { SessionDelta__Output } from '../bridge/generated/snakepit/bridge/v1/SessionDelta';
import type { SessionState } from '../bridge/generated/snakepit/bridge/v1/SessionState';
import type { WorkerInfo } from '../worker/worker';

/** One call as the pool sees it: already encoded, already validated. */
export interface PoolCall {
  tool: string;
  args: Payload;
  stream: boolean;
  /** Budget from now, queue wait included. */
  timeoutMs: number;
  /** The caller's whole budget, which errors report (`timeoutMs` is what is left of it after earlier waits). */
  budgetMs?: number;
  sessionId?: string;
  session?: SessionState;
  metadata?: Record<string, string>;
  /** Affinity hint: the worker that served this session last. */
  preferWorkerId?: string;
  /** Host-tool hops that led to this call (0 from user code). */
  hostCallDepth: number;
  signal?: AbortSignal;
  onChunk?: ChunkSink;
}

/**
 * Takes one chunk of a stream. Its credit goes back to the worker when it
 * returns, or when its promise settles: a sink that waits for its consumer
 * (a slow HTTP client) pauses the Python generator once the window is used.
 */
export type ChunkSink = (value: unknown, seq: number) => void | Promise<void>;

export interface PoolCallOutcome {
  value: unknown;
  delta?: SessionDelta__Output;
  workerId: string;
  pid: number;
  /** The call's id on its worker's stream (it appears in the worker's logs too). */
  requestId: number;
}

export interface PoolInfo {
  name: string;
  size: number;
  ready: number;
  /** Free call slots across ready workers. */
  available: number;
  /** Workers running at least one call. */
  busy: number;
  queueDepth: number;
  starting: number;
  /** Failed starts or deaths right after start keep coming: restarts slow to one per cooldown and the pool is unhealthy. */
  crashLooping: boolean;
  circuit: 'closed' | 'open' | 'half_open';
  workers: WorkerInfo[];
}

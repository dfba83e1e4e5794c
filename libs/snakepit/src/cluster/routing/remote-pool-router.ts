import { Observable, type Subscription } from 'rxjs';
import { decodePayload, encodeArgs } from '../../bridge/payload';
import { SnakepitError } from '../../errors/snakepit-error';
import type { ExecuteOptions, ExecuteResult, PoolTools, StreamChunk } from '../../pool/pool.service';
import type { RemotePools } from '../../pool/remote-pools';
import type { ResolvedClusterOptions } from '../cluster-options';
import type { ClusterMembership } from '../membership/cluster-membership';
import type { ClusterClient } from '../transport/cluster-client';
import { NODE_LOST, NODE_UNREACHABLE, NODE_UNRESPONSIVE } from '../transport/cluster-client';
import type { ForwardedCall } from '../transport/cluster-messages';
import { NodeBackoff } from './node-backoff';
import { pickNode, type Candidate } from './pick-node';

// Times come from the global `performance` clock (not node:perf_hooks'), which the specs' fake timers replace.
type RemoteOptions = ExecuteOptions & { pool: string };

/** Time a forwarded call may overrun its budget before the calling node gives up on the node (the node enforces the budget itself). */
const DEADLINE_SLACK_MS = 2_000;
/** Sessions whose last node is remembered for affinity; the oldest are forgotten first. */
const AFFINITY_ENTRIES = 10_000;
/** Bound on the wait for a call whose requested budget is invalid (the node refuses it with INVALID_ARGUMENTS). */
const MAX_BUDGET_MS = 24 * 3_600_000;

/**
 * PoolService's way to the pools other nodes run. A call goes to the least
 * loaded live node that has the pool (the session's previous node first) and
 * comes back exactly as a local call would. A node that fails a call in
 * transport (lost, unreachable, silent past the budget) is backed off: sent
 * nothing for a window that doubles per failure in a row (one heartbeat up to
 * one failure-detection window), then probed by the next call. A call that
 * never reached its node is tried on each other node that has the pool, while
 * its budget lasts; one that may have run is retried once elsewhere only when
 * the caller marked it idempotent, or when the node refused it because it is
 * shutting down (it never ran). When every node with the pool is backed off
 * the call fails at once with WORKER_UNAVAILABLE, reason `node_backoff`.
 */
export class RemotePoolRouter implements RemotePools {
  private readonly lastNodeOfSession = new Map<string, string>();
  private readonly backoff: NodeBackoff;
  private turn = 0;

  constructor(
    private readonly cluster: ResolvedClusterOptions,
    private readonly membership: ClusterMembership,
    private readonly client: ClusterClient,
  ) {
    this.backoff = new NodeBackoff(cluster.heartbeatIntervalMs, cluster.nodeTtlMs);
  }

  has(pool: string): boolean {
    return this.membership.knownRemotePools().has(pool);
  }

  async execute<T>(tool: string, args: unknown, options: RemoteOptions): Promise<ExecuteResult<T>> {
    const started = performance.now();
    const tried = new Set<string>();
    let target = this.choose(options, tried);
    for (;;) {
      tried.add(target.node.id);
      const call = this.forwardedCall(tool, args, options, target, started);
      try {
        const out = await this.client.execute(target.node, call, this.budget(target, options, started), options.signal);
        this.backoff.succeeded(target.node.id);
        this.remember(options.sessionId, target.node.id);
        return { result: decodePayload(out.value) as T, workerId: out.workerId, pid: out.pid, pool: options.pool, durationMs: performance.now() - started };
      } catch (error) {
        const next = this.retryTarget(error, options, target, tried);
        if (!next) throw error;
        target = next;
      }
    }
  }

  executeStream<T>(tool: string, args: unknown, options: RemoteOptions): Observable<StreamChunk<T>> {
    return new Observable<StreamChunk<T>>((subscriber) => {
      const started = performance.now();
      const tried = new Set<string>();
      let current: Subscription | undefined;
      const attempt = (target: Candidate) => {
        tried.add(target.node.id);
        let chunks = 0;
        current = this.client
          .stream(target.node, this.forwardedCall(tool, args, options, target, started), this.budget(target, options, started), options.signal)
          .subscribe({
            next: (chunk) => {
              if (chunks++ === 0) this.backoff.succeeded(target.node.id);
              subscriber.next(chunk as StreamChunk<T>);
            },
            error: (error: unknown) => {
              // Retried only before the first chunk: the caller never sees a chunk twice.
              const next = chunks === 0 ? this.retryTarget(error, options, target, tried) : undefined;
              if (next) start(() => next);
              else subscriber.error(error);
            },
            complete: () => {
              this.backoff.succeeded(target.node.id);
              this.remember(options.sessionId, target.node.id);
              subscriber.complete();
            },
          });
      };
      // Choosing and encoding can fail (no node, budget spent): the subscriber gets that error, never a throw.
      const start = (target: () => Candidate) => {
        try {
          attempt(target());
        } catch (error) {
          subscriber.error(error);
        }
      };
      start(() => this.choose(options, tried));
      return () => current?.unsubscribe();
    });
  }

  /** Local pools first, in their configured order, then pools only other nodes run, by name; each with the nodes serving it. */
  listTools(local: PoolTools[]): PoolTools[] {
    const localEntries = local.map((entry) => ({ ...entry, nodes: [this.cluster.nodeId] }));
    const byPool = new Map(localEntries.map((entry) => [entry.pool, entry]));
    const remoteOnly = new Map<string, PoolTools & { nodes: string[] }>();
    for (const node of this.membership.livePeers()) {
      for (const pool of node.pools) {
        const entry = byPool.get(pool.name) ?? remoteOnly.get(pool.name) ?? { pool: pool.name, tools: pool.tools, nodes: [] };
        if (!byPool.has(pool.name)) remoteOnly.set(pool.name, entry);
        entry.nodes.push(node.id);
      }
    }
    const others = [...remoteOnly.values()].sort((x, y) => x.pool.localeCompare(y.pool));
    return [...localEntries, ...others].map((entry) => ({ ...entry, nodes: entry.nodes.sort() }));
  }

  /** The node for the next attempt; WORKER_UNAVAILABLE when the cluster view is unknown or no node can take it. */
  private choose(options: RemoteOptions, tried: ReadonlySet<string>): Candidate {
    const details = { pool: options.pool };
    if (!this.membership.fresh) {
      throw new SnakepitError('WORKER_UNAVAILABLE', `Pool ${options.pool} runs on other nodes, and the cluster state is unknown: Redis is unreachable`, {
        details: { ...details, reason: 'redis_unreachable' },
      });
    }
    const now = performance.now();
    const candidates = this.membership.livePeers().flatMap((node): Candidate[] => {
      const pool = node.pools.find((p) => p.name === options.pool);
      return pool && !tried.has(node.id) ? [{ node, pool, inflight: this.client.inflightTo(node.id) }] : [];
    });
    const healthy = candidates.filter((candidate) => this.backoff.remaining(candidate.node.id, now) === 0);
    const preferred = options.sessionId ? this.lastNodeOfSession.get(options.sessionId) : undefined;
    const chosen = pickNode(healthy, preferred, this.turn++);
    if (!chosen && candidates.length > 0) {
      // Every node with the pool failed recently: fail now rather than wait on a path known to be broken.
      const [soonest] = candidates
        .map((c) => ({ node: c.node.id, retryAfterMs: Math.ceil(this.backoff.remaining(c.node.id, now)) }))
        .sort((x, y) => x.retryAfterMs - y.retryAfterMs);
      throw new SnakepitError(
        'WORKER_UNAVAILABLE',
        `Every node that runs pool ${options.pool} failed recently; node ${soonest.node} is tried again in ${soonest.retryAfterMs} ms`,
        { details: { ...details, reason: 'node_backoff', ...soonest, failures: this.backoff.failures(soonest.node), tried: [...tried] } },
      );
    }
    if (!chosen) {
      throw new SnakepitError('WORKER_UNAVAILABLE', `No live node can take a call for pool ${options.pool}`, {
        details: { ...details, reason: 'no_live_node', tried: [...tried] },
      });
    }
    return chosen;
  }

  private forwardedCall(tool: string, args: unknown, options: RemoteOptions, target: Candidate, started: number): ForwardedCall {
    return {
      tool,
      args: encodeArgs(args, target.pool.maxPayloadBytes),
      pool: options.pool,
      sessionId: options.sessionId ?? '',
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: remainingBudget(tool, options, started) }),
      metadata: options.metadata ?? {},
      idempotent: options.idempotent ?? false,
      originNode: this.cluster.nodeId,
    };
  }

  /**
   * How long the calling node waits for the node: what is left of the call's
   * budget plus slack (the node enforces the budget itself), so retries never
   * stretch a call past its budget plus the slack.
   */
  private budget(target: Candidate, options: RemoteOptions, started: number): number {
    const timeoutMs = typeof options.timeoutMs === 'number' && options.timeoutMs > 0 ? options.timeoutMs : target.pool.timeoutMs;
    return Math.max(0, Math.min(timeoutMs, MAX_BUDGET_MS) - (performance.now() - started)) + DEADLINE_SLACK_MS;
  }

  /**
   * Backs the node off after a transport failure, and says where to retry the
   * call, if anywhere: on each other node in turn when it never reached the
   * node; once, on another node, when the node refused it because it is
   * stopping (it never ran) or was lost and the caller marked it idempotent.
   */
  private retryTarget(error: unknown, options: RemoteOptions, failed: Candidate, tried: ReadonlySet<string>): Candidate | undefined {
    // A cancelled call says nothing about the path, and is not to be run again.
    if (!(error instanceof SnakepitError) || options.signal?.aborted) return undefined;
    const reason = error.details.reason;
    const lost = reason === NODE_LOST;
    const unreached = reason === NODE_UNREACHABLE && error.details.node === failed.node.id;
    const refused = error.code === 'SHUTTING_DOWN' && error.details.node === failed.node.id; // not this node's own shutdown
    if (lost || unreached || refused || reason === NODE_UNRESPONSIVE) this.backoff.failed(failed.node.id, performance.now());
    else if (error.details.node === failed.node.id) this.backoff.succeeded(failed.node.id); // it answered: the path works
    if (!unreached && (tried.size > 1 || !(refused || (lost && options.idempotent === true)))) return undefined;
    try {
      return this.choose(options, tried);
    } catch {
      return undefined; // no other node: the caller gets the original failure
    }
  }

  private remember(sessionId: string | undefined, nodeId: string): void {
    if (!sessionId) return;
    this.lastNodeOfSession.delete(sessionId);
    this.lastNodeOfSession.set(sessionId, nodeId);
    if (this.lastNodeOfSession.size > AFFINITY_ENTRIES) this.lastNodeOfSession.delete(this.lastNodeOfSession.keys().next().value!);
  }
}

/**
 * What is left of the caller's budget. A value that is not a positive number
 * is passed on untouched, so the node refuses it exactly as a local call would be.
 */
function remainingBudget(tool: string, options: RemoteOptions, started: number): number {
  const requested = options.timeoutMs!;
  if (typeof requested !== 'number' || !(requested > 0)) return requested;
  const left = requested - (performance.now() - started);
  if (left <= 0) {
    throw new SnakepitError('TIMEOUT', `${tool} ran out of its ${requested} ms budget before another node could take it`, {
      details: { pool: options.pool, tool, timeoutMs: requested },
    });
  }
  return left;
}

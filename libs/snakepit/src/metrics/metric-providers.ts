import type { Provider } from '@nestjs/common';
import { makeCounterProvider, makeGaugeProvider, makeHistogramProvider } from '@willsoto/nestjs-prometheus';
import type { Gauge } from 'prom-client';
import { PoolService } from '../pool/pool.service';
import { SessionService } from '../session/session.service';

/** Every Snakepit metric name, for `@InjectMetric(...)`, dashboards and alerts. */
export const SNAKEPIT_METRICS = {
  calls: 'snakepit_calls_total',
  callDuration: 'snakepit_call_duration_seconds',
  queueDepth: 'snakepit_queue_depth',
  queueWait: 'snakepit_queue_wait_seconds',
  queueFull: 'snakepit_queue_full_total',
  workers: 'snakepit_workers',
  workerCrashes: 'snakepit_worker_crashes_total',
  workerRecycles: 'snakepit_worker_recycles_total',
  workerStartFailures: 'snakepit_worker_start_failures_total',
  heartbeatMissed: 'snakepit_heartbeat_missed_total',
  workerMemory: 'snakepit_worker_memory_bytes',
  sessionsActive: 'snakepit_sessions_active',
  circuitState: 'snakepit_circuit_state',
  crashLooping: 'snakepit_pool_crash_looping',
  clusterRecordsIgnored: 'snakepit_cluster_records_ignored_total',
  clusterCallsRefused: 'snakepit_cluster_calls_refused_total',
} as const;

/** The worker states `snakepit_workers` always reports, zero or not, so graphs have no gaps. */
const WORKER_STATES = ['starting', 'idle', 'busy', 'draining'] as const;

/**
 * Workers by state, read from the pools when Prometheus scrapes rather than
 * rebuilt from events: whether a worker is busy changes with every call and has
 * no event of its own, and a snapshot cannot drift from the truth.
 * `idle` and `busy` split the ready workers; every worker counts once.
 */
function collectWorkers(this: Gauge<string>, pools: PoolService): void {
  this.reset();
  for (const info of pools.poolInfo()) {
    const counts = new Map<string, number>(WORKER_STATES.map((state) => [state, 0]));
    counts.set('starting', info.starting);
    for (const worker of info.workers) {
      const state = worker.state !== 'ready' ? worker.state : worker.busy > 0 ? 'busy' : 'idle';
      counts.set(state, (counts.get(state) ?? 0) + 1);
    }
    for (const [state, count] of counts) this.set({ pool: info.name, state }, count);
  }
}

/**
 * Live sessions, counted by the store when Prometheus scrapes: the store is the
 * truth, and may be shared by several hosts and outlive this process, which
 * counting `session.*` events since start would get wrong.
 */
async function collectSessions(this: Gauge<string>, sessions: SessionService): Promise<void> {
  try {
    this.set(await sessions.count());
  } catch {
    // The store did not answer: keep the last count; readiness reports the store.
  }
}

const CALL_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const QUEUE_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export const METRIC_PROVIDERS: Provider[] = [
  makeCounterProvider({
    name: SNAKEPIT_METRICS.calls,
    help: 'Finished calls by pool, tool and outcome (ok, or the error code)',
    labelNames: ['pool', 'tool', 'outcome'],
  }),
  makeHistogramProvider({
    name: SNAKEPIT_METRICS.callDuration,
    help: 'Call duration, queue wait included, by pool, tool and outcome',
    labelNames: ['pool', 'tool', 'outcome'],
    buckets: CALL_BUCKETS,
  }),
  makeGaugeProvider({ name: SNAKEPIT_METRICS.queueDepth, help: 'Calls waiting for a free worker', labelNames: ['pool'] }),
  makeHistogramProvider({
    name: SNAKEPIT_METRICS.queueWait,
    help: 'Time calls waited in the queue, by how they left it (dispatched, timeout, cancelled)',
    labelNames: ['pool', 'outcome'],
    buckets: QUEUE_BUCKETS,
  }),
  makeCounterProvider({ name: SNAKEPIT_METRICS.queueFull, help: 'Calls refused with QUEUE_FULL', labelNames: ['pool'] }),
  makeGaugeProvider({
    name: SNAKEPIT_METRICS.workers,
    help: 'Workers by state (starting, idle, busy, draining)',
    labelNames: ['pool', 'state'],
    inject: [PoolService],
    collect: collectWorkers,
  }),
  makeCounterProvider({
    name: SNAKEPIT_METRICS.workerCrashes,
    help: 'Workers that died unexpectedly, by reason (exit, frozen, stream_broken, cancel_unconfirmed)',
    labelNames: ['pool', 'reason'],
  }),
  makeCounterProvider({
    name: SNAKEPIT_METRICS.workerRecycles,
    help: 'Workers replaced on purpose, by reason (ttl, max_requests, memory, manual, rolling_restart)',
    labelNames: ['pool', 'reason'],
  }),
  makeCounterProvider({ name: SNAKEPIT_METRICS.workerStartFailures, help: 'Workers that failed to start', labelNames: ['pool'] }),
  makeCounterProvider({ name: SNAKEPIT_METRICS.heartbeatMissed, help: 'Missed worker heartbeats', labelNames: ['pool'] }),
  makeGaugeProvider({
    name: SNAKEPIT_METRICS.workerMemory,
    help: "Resident memory of each live worker's process group",
    labelNames: ['pool', 'worker_id'],
  }),
  makeGaugeProvider({ name: SNAKEPIT_METRICS.sessionsActive, help: 'Live sessions in the session store', inject: [SessionService], collect: collectSessions }),
  makeGaugeProvider({ name: SNAKEPIT_METRICS.circuitState, help: "Each pool's circuit: 0 closed, 1 half-open, 2 open", labelNames: ['pool'] }),
  makeGaugeProvider({ name: SNAKEPIT_METRICS.crashLooping, help: '1 while the pool is crash-looping (restarts paused)', labelNames: ['pool'] }),
  // Cluster mode. Labelled by reason only: node ids in ignored records and peers of refused calls are anyone's choice.
  makeCounterProvider({
    name: SNAKEPIT_METRICS.clusterRecordsIgnored,
    help: 'Node records read from Redis and ignored, by reason (unsigned, forged, stale, malformed)',
    labelNames: ['reason'],
  }),
  makeCounterProvider({
    name: SNAKEPIT_METRICS.clusterCallsRefused,
    help: 'Calls the internal cluster service refused, by reason (missing_proof, outside_window, bad_mac, replayed, nonce_cache_full)',
    labelNames: ['reason'],
  }),
];

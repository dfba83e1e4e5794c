/**
 * Every lifecycle event Snakepit emits, by name. docs/operations.md's "Telemetry events"
 * table mirrors this map; metrics and logs are built only from these events.
 */
export interface TelemetryEventMap {
  'pool.ready': { pool: string; workers: number; durationMs: number };
  /** A call took a slot on a worker. */
  'pool.checkout': { pool: string; workerId: string; tool: string; busy: number };
  /** The worker confirmed the call ended: its slot is free again. */
  'pool.checkin': { pool: string; workerId: string; tool: string; busy: number };
  'pool.queue_enter': { pool: string; depth: number };
  'pool.queue_leave': { pool: string; depth: number; waitMs: number; outcome: 'dispatched' | 'timeout' | 'cancelled' };
  'pool.queue_full': { pool: string; depth: number };
  'worker.start': { pool: string; workerId: string; pid: number };
  'worker.ready': { pool: string; workerId: string; pid: number; startMs: number };
  'worker.start_failed': { pool: string; workerId: string; reason: string };
  'worker.stop': { pool: string; workerId: string; pid: number; reason: string };
  /** A worker died unexpectedly; `reason` says how it was found out. */
  'worker.crash': {
    pool: string;
    workerId: string;
    pid: number;
    reason: WorkerCrashReason;
    exitCode: number | null;
    signal: string | null;
    uptimeMs: number;
    requestsServed: number;
  };
  /** A worker was replaced on purpose, without failing any call. */
  'worker.recycled': { pool: string; workerId: string; pid: number; reason: WorkerRecycleReason; uptimeMs: number; requestsServed: number };
  'worker.heartbeat_missed': { pool: string; workerId: string; pid: number; missed: number; threshold: number };
  /** Memory of the worker's whole process group, sampled by the lifecycle check. */
  'worker.memory': { pool: string; workerId: string; pid: number; rssBytes: number };
  'worker.restart_scheduled': { pool: string; delayMs: number; consecutiveFailures: number };
  'worker.cancel_unconfirmed': { pool: string; workerId: string; pid: number; graceMs: number };
  /** Too many crashes in the window: restarts pause and the pool reports unhealthy. */
  'pool.crash_loop': { pool: string; crashes: number; windowMs: number; retryInMs: number };
  'pool.crash_loop_cleared': { pool: string };
  'circuit.opened': { pool: string };
  'circuit.half_open': { pool: string };
  'circuit.closed': { pool: string };
  'call.start': { pool: string; tool: string; sessionId?: string };
  'call.stop': {
    pool: string;
    tool: string;
    workerId?: string;
    /** The worker's pid, when the call reached a worker. */
    pid?: number;
    /** The call's id on its worker's stream: Python's `ctx.logger` lines carry it as `request_id`. */
    requestId?: number;
    sessionId?: string;
    durationMs: number;
    outcome: 'ok' | 'error';
    errorCode?: string;
  };
  'call.exception': { pool: string; tool: string; workerId?: string; code: string; pythonType?: string };
  'session.created': { sessionId: string; ttlSeconds: number };
  'session.expired': { sessionId: string };
  'session.deleted': { sessionId: string };
  /** Cluster mode: a node record read from Redis was ignored (unsigned, forged, stale or malformed); `nodeId` is the id it claims. */
  'cluster.record_ignored': { reason: 'malformed' | 'unsigned' | 'forged' | 'stale'; nodeId?: string };
  /** Cluster mode: the internal service refused a call (no proof, outside the time window, wrong MAC, replayed nonce, nonce cache full). */
  'cluster.call_refused': { reason: 'missing_proof' | 'outside_window' | 'bad_mac' | 'replayed' | 'nonce_cache_full'; peer: string };
}

export type WorkerCrashReason = 'exit' | 'frozen' | 'stream_broken' | 'cancel_unconfirmed';
export type WorkerRecycleReason = 'ttl' | 'max_requests' | 'memory' | 'manual' | 'rolling_restart';

export type TelemetryEventName = keyof TelemetryEventMap;

export type TelemetryEvent<N extends TelemetryEventName = TelemetryEventName> = {
  [K in N]: { name: K; time: number; data: TelemetryEventMap[K] };
}[N];

/** One handler per event name, each receiving its event's typed payload (see `TelemetryService.handle`). */
export type TelemetryHandlers = {
  [K in TelemetryEventName]?: (data: TelemetryEventMap[K]) => void;
};

/**
 * Every lifecycle event Snakepit emits, by name. The README's "Telemetry"
 * table mirrors this map; metrics and logs are built only from these events.
 */
export interface TelemetryEventMap {
  'pool.ready': { pool: string; workers: number; durationMs: number };
  'pool.queue_enter': { pool: string; depth: number };
  'pool.queue_leave': { pool: string; depth: number; waitMs: number; outcome: 'dispatched' | 'timeout' | 'cancelled' };
  'pool.queue_full': { pool: string; depth: number };
  'worker.start': { pool: string; workerId: string; pid: number };
  'worker.ready': { pool: string; workerId: string; pid: number; startMs: number };
  'worker.start_failed': { pool: string; workerId: string; reason: string };
  'worker.stop': { pool: string; workerId: string; pid: number; reason: string };
  'worker.crash': {
    pool: string;
    workerId: string;
    pid: number;
    exitCode: number | null;
    signal: string | null;
    uptimeMs: number;
    requestsServed: number;
  };
  'worker.restart_scheduled': { pool: string; delayMs: number; consecutiveFailures: number };
  'worker.cancel_unconfirmed': { pool: string; workerId: string; pid: number; graceMs: number };
  'call.start': { pool: string; tool: string; sessionId?: string };
  'call.stop': {
    pool: string;
    tool: string;
    workerId?: string;
    sessionId?: string;
    durationMs: number;
    outcome: 'ok' | 'error';
    errorCode?: string;
  };
  'call.exception': { pool: string; tool: string; workerId?: string; code: string; pythonType?: string };
  'session.created': { sessionId: string; ttlSeconds: number };
  'session.expired': { sessionId: string };
  'session.deleted': { sessionId: string };
}

export type TelemetryEventName = keyof TelemetryEventMap;

export type TelemetryEvent<N extends TelemetryEventName = TelemetryEventName> = {
  [K in N]: { name: K; time: number; data: TelemetryEventMap[K] };
}[N];

/**
 * The Snakepit error table: one stable string code per failure, with the
 * numeric code, HTTP status and gRPC status it maps to. docs/errors.md mirrors it.
 */
export const ERROR_TABLE = {
  PYTHON_EXCEPTION: { numeric: 1000, http: 500, grpc: 13, summary: 'The tool raised a Python exception' },
  TOOL_NOT_FOUND: { numeric: 1001, http: 404, grpc: 5, summary: 'The pool has no tool of that name' },
  INVALID_ARGUMENTS: { numeric: 1002, http: 400, grpc: 3, summary: 'Arguments or call options do not fit' },
  SERIALIZATION_ERROR: { numeric: 1003, http: 500, grpc: 13, summary: 'A value cannot be carried as JSON faithfully' },
  TIMEOUT: { numeric: 1004, http: 504, grpc: 4, summary: 'The call exceeded its time budget' },
  QUEUE_FULL: { numeric: 1005, http: 429, grpc: 8, summary: 'Every worker is busy and the queue is full' },
  QUEUE_TIMEOUT: { numeric: 1006, http: 503, grpc: 14, summary: 'No worker became free within the queue timeout' },
  WORKER_CRASHED: { numeric: 1007, http: 502, grpc: 14, summary: 'The worker died while running the call' },
  WORKER_UNAVAILABLE: { numeric: 1008, http: 503, grpc: 14, summary: 'No worker can take the call' },
  RESOURCE_EXHAUSTED: { numeric: 1009, http: 503, grpc: 8, summary: 'The worker ran out of memory or another quota' },
  CIRCUIT_OPEN: { numeric: 1010, http: 503, grpc: 14, summary: 'The pool circuit breaker is open' },
  POOL_NOT_FOUND: { numeric: 1011, http: 404, grpc: 5, summary: 'No pool of that name' },
  SESSION_NOT_FOUND: { numeric: 1012, http: 404, grpc: 5, summary: 'No live session with that id' },
  SHUTTING_DOWN: { numeric: 1013, http: 503, grpc: 14, summary: 'The host is shutting down' },
  PAYLOAD_TOO_LARGE: { numeric: 1014, http: 413, grpc: 8, summary: 'A call, result, stream chunk or session exceeds its size limit' },
  CANCELLED: { numeric: 1015, http: 499, grpc: 1, summary: 'The caller cancelled the call' },
  SESSION_CONFLICT: { numeric: 1017, http: 409, grpc: 10, summary: 'A concurrent call changed the session first; nothing was written' },
  HOST_EXCEPTION: { numeric: 1016, http: 500, grpc: 13, summary: 'A host tool called from Python threw (seen by Python as HostToolError)' },
  INTERNAL: { numeric: 1099, http: 500, grpc: 13, summary: 'An unexpected failure inside Snakepit' },
} as const satisfies Record<string, { numeric: number; http: number; grpc: number; summary: string }>;

export type SnakepitErrorCode = keyof typeof ERROR_TABLE;

export function isSnakepitErrorCode(value: string): value is SnakepitErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_TABLE, value);
}

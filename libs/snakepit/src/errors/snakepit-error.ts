import { ERROR_TABLE, type SnakepitErrorCode } from './error-codes';

/** One link of a Python exception chain (`raise ... from ...` or raised while handling). */
export interface PythonExceptionLink {
  type: string;
  message: string;
  /** `cause` or `context` (a string on the wire, so a newer bridge may add others). */
  relation: string;
}

/** A Python exception as it arrived from the worker. */
export interface PythonExceptionInfo {
  /** Qualified type name: `ValueError`, `numpy.linalg.LinAlgError`. */
  type: string;
  message: string;
  traceback: string;
  chain: PythonExceptionLink[];
}

export interface SnakepitErrorOptions {
  details?: Record<string, unknown>;
  python?: PythonExceptionInfo;
  cause?: unknown;
}

/**
 * The JSON body the sample app (and any app using the filters) answers with.
 * Without `exposeTracebacks` it is the public body: `python` has only `type`
 * and `message`, and `details` leaves out Snakepit's internal keys
 * (INTERNAL_DETAIL_KEYS). With it, `python` has the traceback and chain too and
 * `details` is whole, as SnakepitError.details always is in process.
 */
export interface SnakepitErrorBody {
  error: {
    code: SnakepitErrorCode;
    numericCode: number;
    message: string;
    details: Record<string, unknown>;
    python?: Pick<PythonExceptionInfo, 'type' | 'message'> & Partial<Pick<PythonExceptionInfo, 'traceback' | 'chain'>>;
    /** Set when the body was shortened to fit a transport's limit (gRPC trailers). */
    truncated?: true;
  };
}

/**
 * Details that describe Snakepit's internals rather than the call: which
 * worker process ran it, the worker stream's request counter, the tool and pool
 * inventory, a worker's captured output, interpreter paths, cluster internals.
 * They stay in SnakepitError.details and in logs; clients see them only with
 * `exposeTracebacks`.
 */
const INTERNAL_DETAIL_KEYS: ReadonlySet<string> = new Set([
  'workerId',
  'pid',
  'requestId',
  'available',
  'pools',
  'workers',
  'output',
  'python',
  'tried',
  'operation',
  'grpcCode',
  'hostType',
]);

/**
 * Every failure Snakepit reports is a SnakepitError with a stable code. Match on
 * `err.code`, or on `err.python?.type` for exceptions raised by a tool.
 */
export class SnakepitError extends Error {
  override readonly name = 'SnakepitError';
  readonly code: SnakepitErrorCode;
  readonly details: Record<string, unknown>;
  readonly python?: PythonExceptionInfo;

  constructor(code: SnakepitErrorCode, message: string, options: SnakepitErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
    this.python = options.python;
  }

  get numericCode(): number {
    return ERROR_TABLE[this.code].numeric;
  }

  get httpStatus(): number {
    return ERROR_TABLE[this.code].http;
  }

  get grpcStatus(): number {
    return ERROR_TABLE[this.code].grpc;
  }

  /** A copy with more context (worker, pool, session) merged into the details. */
  withDetails(extra: Record<string, unknown>): SnakepitError {
    const copy = new SnakepitError(this.code, this.message, {
      details: { ...this.details, ...extra },
      python: this.python,
      cause: this.cause,
    });
    copy.stack = this.stack;
    return copy;
  }

  /** The body clients get: the public one, or everything with `exposeTracebacks` (see SnakepitErrorBody). */
  toBody(options: { exposeTracebacks: boolean }): SnakepitErrorBody {
    const full = options.exposeTracebacks;
    const python = this.python && {
      type: this.python.type,
      message: this.python.message,
      ...(full ? { chain: this.python.chain, traceback: this.python.traceback } : {}),
    };
    const details = full ? this.details : Object.fromEntries(Object.entries(this.details).filter(([key]) => !INTERNAL_DETAIL_KEYS.has(key)));
    return {
      error: {
        code: this.code,
        numericCode: this.numericCode,
        message: this.message,
        details,
        ...(python ? { python } : {}),
      },
    };
  }
}

/** Wraps anything thrown into a SnakepitError without losing the original. */
export function toSnakepitError(error: unknown): SnakepitError {
  if (error instanceof SnakepitError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new SnakepitError('INTERNAL', message, { cause: error });
}

import { ERROR_TABLE, type SnakepitErrorCode } from './error-codes';

/** One link of a Python exception chain (`raise ... from ...` or raised while handling). */
export interface PythonExceptionLink {
  type: string;
  message: string;
  relation: 'cause' | 'context' | string;
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

/** The JSON body the sample app (and any app using the filters) answers with. */
export interface SnakepitErrorBody {
  error: {
    code: SnakepitErrorCode;
    numericCode: number;
    message: string;
    details: Record<string, unknown>;
    python?: Omit<PythonExceptionInfo, 'traceback'> & { traceback?: string };
  };
}

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

  toBody(options: { exposeTracebacks: boolean }): SnakepitErrorBody {
    const python = this.python && {
      type: this.python.type,
      message: this.python.message,
      chain: this.python.chain,
      ...(options.exposeTracebacks ? { traceback: this.python.traceback } : {}),
    };
    return {
      error: {
        code: this.code,
        numericCode: this.numericCode,
        message: this.message,
        details: this.details,
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

import { isSnakepitErrorCode } from '../errors/error-codes';
import { SnakepitError } from '../errors/snakepit-error';
import type { ErrorInfo__Output } from './generated/snakepit/bridge/v1/ErrorInfo';

/** Turns a worker's structured ErrorInfo into a SnakepitError, keeping the Python exception whole. */
export function errorFromWorker(info: ErrorInfo__Output | null | undefined): SnakepitError {
  if (!info) return new SnakepitError('INTERNAL', 'The worker reported an error without details');
  const code = isSnakepitErrorCode(info.code) ? info.code : 'PYTHON_EXCEPTION';
  let details: Record<string, unknown> = {};
  if (info.detailsJson && info.detailsJson.length > 0) {
    try {
      const parsed: unknown = JSON.parse(info.detailsJson.toString('utf8'));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) details = parsed as Record<string, unknown>;
    } catch {
      details = { raw: info.detailsJson.toString('utf8') };
    }
  }
  const python = info.python
    ? {
        type: info.python.type,
        message: info.python.message,
        traceback: info.python.traceback,
        chain: info.python.chain.map((link) => ({ type: link.type, message: link.message, relation: link.relation })),
      }
    : undefined;
  const message = python && code === 'PYTHON_EXCEPTION' ? `${python.type}: ${python.message}` : info.message;
  return new SnakepitError(code, message, { details, python });
}

/** A host-side SnakepitError as the wire's ErrorInfo (a host-call reply, or a call the channel fails itself). */
export function errorInfoOf(error: SnakepitError): ErrorInfo__Output {
  let details = '{}';
  try {
    details = JSON.stringify(error.details) ?? '{}';
  } catch {
    // details that do not serialize (a cycle, a BigInt) are dropped, not the error
  }
  return { code: error.code, message: error.message, python: null, detailsJson: Buffer.from(details) };
}

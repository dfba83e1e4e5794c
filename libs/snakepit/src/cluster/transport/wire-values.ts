import { errorFromWorker } from '../../bridge/error-info';
import type { ErrorInfo, ErrorInfo__Output } from '../../bridge/generated/snakepit/bridge/v1/ErrorInfo';
import type { Payload } from '../../bridge/generated/snakepit/bridge/v1/Payload';
import type { SnakepitError } from '../../errors/snakepit-error';

/** A result or chunk on the wire: Buffers stay raw bytes, everything else travels as JSON. */
export function encodeValue(value: unknown): Payload {
  if (Buffer.isBuffer(value)) return { binary: value };
  return { json: Buffer.from(JSON.stringify(value ?? null)) };
}

/**
 * A SnakepitError as the worker bridge's ErrorInfo, so the calling node rebuilds
 * it with the same code, message, details and Python exception (errorFromWorker).
 */
export function encodeError(error: SnakepitError): ErrorInfo {
  return {
    code: error.code,
    message: error.message,
    detailsJson: Buffer.from(JSON.stringify(error.details)),
    python: error.python && {
      type: error.python.type,
      message: error.python.message,
      traceback: error.python.traceback,
      chain: error.python.chain,
    },
  };
}

/** The SnakepitError a remote node reported, with the node that ran the call added to its details. */
export function decodeError(info: ErrorInfo__Output | null | undefined, nodeId: string): SnakepitError {
  const error = errorFromWorker(info);
  return error.withDetails({ node: nodeId });
}

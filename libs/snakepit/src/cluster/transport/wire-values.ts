import { errorFromWorker } from '../../bridge/error-info';
import { encodeValue as encodeBridgeValue } from '../../bridge/payload';
import type { ErrorInfo, ErrorInfo__Output } from '../../bridge/generated/snakepit/bridge/v1/ErrorInfo';
import type { Payload } from '../../bridge/generated/snakepit/bridge/v1/Payload';
import type { SnakepitError } from '../../errors/snakepit-error';

/**
 * A result or chunk forwarded to the calling node, encoded as the worker bridge
 * encodes values (arrays and byte strings as blobs beside the JSON), so an
 * NdArray or a nested Buffer arrives as it left. It already fit its pool's
 * maxPayloadBytes; the node-to-node channel has its own message limit.
 */
export function encodeValue(value: unknown): Payload {
  return encodeBridgeValue(value, Number.MAX_SAFE_INTEGER);
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

import { SnakepitError } from '../errors/snakepit-error';
import type { Payload, Payload__Output } from './generated/snakepit/bridge/v1/Payload';

/** Nesting deeper than this is refused before it reaches JSON.stringify or Python. */
export const MAX_JSON_DEPTH = 64;

/**
 * Checks that `value` survives JSON unchanged; JSON.stringify would silently
 * turn NaN into null, drop undefined and functions, and write Maps as {}.
 * Dates are allowed: they travel as ISO-8601 strings (their toJSON).
 */
export function assertJsonSafe(value: unknown, path = '$', depth = 0): void {
  if (depth > MAX_JSON_DEPTH) {
    throw new SnakepitError('INVALID_ARGUMENTS', `Arguments are nested deeper than ${MAX_JSON_DEPTH} levels at ${path}`, {
      details: { path, maxDepth: MAX_JSON_DEPTH },
    });
  }
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (Number.isFinite(value)) return;
      throw serializationError(path, `${value} is not a finite number`);
    case 'object': {
      if (value === null) return;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) assertJsonSafe(value[i], `${path}[${i}]`, depth + 1);
        return;
      }
      if (value instanceof Date) return;
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw serializationError(path, `${proto?.constructor?.name ?? 'object'} is not a plain JSON object`);
      }
      for (const key of Object.keys(value)) assertJsonSafe((value as Record<string, unknown>)[key], `${path}.${key}`, depth + 1);
      return;
    }
    default:
      throw serializationError(path, `${typeof value} cannot be carried as JSON`);
  }
}

function serializationError(path: string, reason: string): SnakepitError {
  return new SnakepitError('SERIALIZATION_ERROR', `Cannot send ${path}: ${reason}`, { details: { path, reason } });
}

/** Arguments become one payload: a Buffer travels as raw bytes, anything else as JSON. */
export function encodeArgs(args: unknown, maxBytes: number): Payload {
  if (Buffer.isBuffer(args) || args instanceof Uint8Array) return encodeValue(args, maxBytes);
  const value = args ?? {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new SnakepitError('INVALID_ARGUMENTS', 'Arguments must be a JSON object of named parameters (or a Buffer)', {
      details: { got: Array.isArray(value) ? 'array' : typeof value },
    });
  }
  return encodeValue(value, maxBytes);
}

/** Any value as a payload: a Buffer as raw bytes, anything else as checked JSON. */
export function encodeValue(value: unknown, maxBytes: number): Payload {
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    checkSize(value.byteLength, maxBytes);
    return { binary: Buffer.from(value.buffer, value.byteOffset, value.byteLength) };
  }
  assertJsonSafe(value);
  const json = Buffer.from(JSON.stringify(value ?? null));
  checkSize(json.byteLength, maxBytes);
  return { json };
}

function checkSize(bytes: number, maxBytes: number): void {
  if (bytes > maxBytes) {
    throw new SnakepitError('PAYLOAD_TOO_LARGE', `Arguments are ${bytes} bytes; the limit is ${maxBytes}`, {
      details: { bytes, maxBytes },
    });
  }
}

/** A worker's payload as a JS value: parsed JSON, or a Buffer for binary. */
export function decodePayload(payload: Payload__Output | null | undefined): unknown {
  if (!payload) return null;
  if (payload.binary) return payload.binary;
  if (payload.json && payload.json.length > 0) return JSON.parse(payload.json.toString('utf8'));
  return null;
}

import { SnakepitError } from '../errors/snakepit-error';
import type { Payload, Payload__Output } from './generated/snakepit/bridge/v1/Payload';

/** Nesting deeper than this is refused before it reaches JSON.stringify or Python. */
export const MAX_JSON_DEPTH = 64;

/**
 * Checks that `value` survives JSON unchanged; JSON.stringify would silently
 * turn NaN into null, drop undefined and functions, and write Maps as {}.
 * Dates are allowed: they travel as ISO-8601 strings (their toJSON).
 * `root` names the value in the error's path (`$.metadata.x`).
 */
export function assertJsonSafe(value: unknown, root = '$'): void {
  const problem = findUnsafe(value, 0);
  if (!problem) return;
  const path = root + formatPath(problem.path.reverse());
  if (problem.tooDeep) {
    throw new SnakepitError('INVALID_ARGUMENTS', `Arguments are nested deeper than ${MAX_JSON_DEPTH} levels at ${path}`, {
      details: { path, maxDepth: MAX_JSON_DEPTH },
    });
  }
  throw new SnakepitError('SERIALIZATION_ERROR', `Cannot send ${path}: ${problem.reason}`, { details: { path, reason: problem.reason } });
}

/** What is wrong and where; `path` is innermost first, because it is built on the way out. */
interface Unsafe {
  reason: string;
  tooDeep: boolean;
  path: Array<string | number>;
}

// The walk allocates nothing for a valid value: paths are only built for the error.
function findUnsafe(value: unknown, depth: number): Unsafe | undefined {
  if (depth > MAX_JSON_DEPTH) return { reason: 'too deep', tooDeep: true, path: [] };
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : unsafe(`${value} is not a finite number`);
    case 'object': {
      if (value === null || value instanceof Date) return undefined;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const problem = findUnsafe(value[i], depth + 1);
          if (problem) return within(problem, i);
        }
        return undefined;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        return unsafe(`${(proto as { constructor?: { name?: string } } | null)?.constructor?.name ?? 'object'} is not a plain JSON object`);
      }
      for (const key of Object.keys(value)) {
        const problem = findUnsafe((value as Record<string, unknown>)[key], depth + 1);
        if (problem) return within(problem, key);
      }
      return undefined;
    }
    default:
      return unsafe(`${typeof value} cannot be carried as JSON`);
  }
}

function within(problem: Unsafe, segment: string | number): Unsafe {
  problem.path.push(segment);
  return problem;
}

function unsafe(reason: string): Unsafe {
  return { reason, tooDeep: false, path: [] };
}

function formatPath(segments: Array<string | number>): string {
  return segments.map((segment) => (typeof segment === 'number' ? `[${segment}]` : `.${segment}`)).join('');
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

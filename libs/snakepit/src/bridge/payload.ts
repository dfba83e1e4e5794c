import { SnakepitError } from '../errors/snakepit-error';
import type { Blob__Output } from './generated/snakepit/bridge/v1/Blob';
import type { Payload, Payload__Output } from './generated/snakepit/bridge/v1/Payload';
import { arrayFromBytes } from './ndarray';

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

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `.a[2].b`, keys that are not identifiers quoted (`["a b"]`): the worker names paths the same way. */
function formatPath(segments: ReadonlyArray<string | number>): string {
  return segments
    .map((segment) => (typeof segment === 'number' ? `[${segment}]` : IDENTIFIER.test(segment) ? `.${segment}` : `[${JSON.stringify(segment)}]`))
    .join('');
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

/**
 * A worker's payload as a JS value: a Buffer for a binary body, else the
 * parsed JSON with each blob placed where its path points (array blobs as
 * NdArray, byte strings as Buffer). A malformed blob is a SERIALIZATION_ERROR
 * naming its path.
 */
export function decodePayload(payload: Payload__Output | null | undefined): unknown {
  if (!payload) return null;
  const blobs = payload.blobs ?? [];
  if (payload.binary) {
    if (blobs.length > 0) throw malformed([], 'blobs come only with a JSON body, not a binary one');
    return payload.binary;
  }
  const value: unknown = payload.json && payload.json.length > 0 ? JSON.parse(payload.json.toString('utf8')) : null;
  return blobs.length > 0 ? placeBlobs(value, blobs) : value;
}

function placeBlobs(root: unknown, blobs: Blob__Output[]): unknown {
  for (const blob of blobs) {
    const path: Array<string | number> = [];
    for (const segment of blob.path) {
      if (segment.segment === 'key') path.push(segment.key ?? '');
      else if (segment.segment === 'index') path.push(segment.index ?? 0);
      else throw malformed(path, 'a path segment has neither a key nor an index');
    }
    root = put(root, path, blobValue(blob, path));
  }
  return root;
}

/** A byte string as a Buffer (the received bytes themselves), an array as an NdArray over them. */
function blobValue(blob: Blob__Output, path: Array<string | number>): unknown {
  if (blob.dtype === 'bytes') {
    if (blob.shape.length > 0) throw malformed(path, `a bytes blob has no shape, got ${JSON.stringify(blob.shape)}`);
    return blob.data;
  }
  const array = arrayFromBytes(blob.dtype, blob.shape, blob.data);
  if (typeof array === 'string') throw malformed(path, array);
  return array;
}

/** `root` with `value` at `path`, where the JSON must hold a null. */
function put(root: unknown, path: Array<string | number>, value: unknown): unknown {
  if (path.length === 0) {
    if (root !== null) throw malformed(path, 'the JSON value is not null where the blob stands');
    return value;
  }
  let node = root;
  for (let i = 0; i < path.length - 1; i++) node = child(node, path, i);
  if (child(node, path, path.length - 1) !== null) throw malformed(path, 'the JSON value is not null where the blob stands');
  // defineProperty, not assignment: a `__proto__` key (an own property after JSON.parse) must stay a key.
  Object.defineProperty(node, path[path.length - 1], { value, writable: true, enumerable: true, configurable: true });
  return root;
}

function child(node: unknown, path: Array<string | number>, at: number): unknown {
  const segment = path[at];
  const found =
    typeof segment === 'number'
      ? Array.isArray(node) && segment < node.length
      : typeof node === 'object' && node !== null && !Array.isArray(node) && Object.hasOwn(node, segment);
  if (!found) throw malformed(path, 'its path does not exist in the JSON value');
  return (node as Record<string | number, unknown>)[segment];
}

function malformed(path: Array<string | number>, reason: string): SnakepitError {
  const where = '$' + formatPath(path);
  return new SnakepitError('SERIALIZATION_ERROR', `A worker's value has a malformed blob at ${where}: ${reason}`, { details: { path: where, reason } });
}

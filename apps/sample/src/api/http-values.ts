import { NdArray, SnakepitError, type NdArrayDtype } from '@snakepit/nestjs';

/*
 * The sample app's JSON encoding of arrays and bytes (HTTP only; the library
 * carries them as raw bytes beside the JSON):
 *   an array: {"$ndarray": {"dtype": "float32", "shape": [2, 3], "data": "<base64 of the elements, little-endian, C order>"}}
 *   bytes:    {"$bytes": "<base64>"}
 * Both ways: in a request's args at any depth, and in results and stream chunks.
 * An object whose only key is `$ndarray` or `$bytes` is always read this way.
 */

export interface NdArrayJson {
  $ndarray: { dtype: NdArrayDtype; shape: number[]; data: string };
}

export interface BytesJson {
  $bytes: string;
}

/** The library refuses args nested deeper than this (MAX_JSON_DEPTH): below it nothing is looked at. */
const MAX_DEPTH = 64;

// Standard base64 with padding, nothing else: Buffer.from(text, 'base64') would silently skip stray characters.
/** A character outside the standard base64 alphabet. */
const NOT_BASE64 = /[^A-Za-z0-9+/]/;

/**
 * Standard-alphabet, padded base64. Checked by length, padding and one scan for
 * a foreign character: a regex over the whole text's structure backtracks, and
 * V8 overflows its stack on a few megabytes of it (a 4 MB array's `data`).
 */
function isBase64(text: string): boolean {
  if (text.length % 4 !== 0) return false;
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  return !NOT_BASE64.test(padding > 0 ? text.slice(0, -padding) : text);
}
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `args` with every `$ndarray` object made an NdArray and every `$bytes` object a Buffer (in place). */
export function decodeHttpArgs(args: Record<string, unknown>): Record<string, unknown> {
  return decode(args, [], 0) as Record<string, unknown>;
}

function decode(value: unknown, path: Array<string | number>, depth: number): unknown {
  if (typeof value !== 'object' || value === null || depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      value[i] = decode(value[i], path, depth + 1);
      path.pop();
    }
    return value;
  }
  const fields = value as Record<string, unknown>;
  const keys = Object.keys(fields);
  if (keys.length === 1 && keys[0] === '$bytes') return base64(fields.$bytes, path, '$bytes');
  if (keys.length === 1 && keys[0] === '$ndarray') return ndArray(fields.$ndarray, path);
  for (const key of keys) {
    path.push(key);
    const decoded = decode(fields[key], path, depth + 1);
    path.pop();
    // defineProperty: a `__proto__` key stays a key.
    if (decoded !== fields[key]) Object.defineProperty(fields, key, { value: decoded, writable: true, enumerable: true, configurable: true });
  }
  return value;
}

function ndArray(spec: unknown, path: Array<string | number>): NdArray {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw invalid(path, '$ndarray must be an object { dtype, shape, data }');
  const { dtype, shape, data } = spec as Record<string, unknown>;
  if (typeof dtype !== 'string') throw invalid(path, '$ndarray.dtype must be a string such as "float32"');
  if (!Array.isArray(shape)) throw invalid(path, '$ndarray.shape must be an array of dimensions, e.g. [2, 3]');
  const bytes = base64(data, path, '$ndarray.data');
  try {
    return NdArray.fromBytes(dtype as NdArrayDtype, shape as number[], bytes);
  } catch (error) {
    if (error instanceof SnakepitError) throw invalid(path, String(error.details.reason));
    throw error;
  }
}

function base64(text: unknown, path: Array<string | number>, field: string): Buffer {
  if (typeof text !== 'string' || !isBase64(text)) throw invalid(path, `${field} must be a base64 string (standard alphabet, padded)`);
  return Buffer.from(text, 'base64');
}

function invalid(path: Array<string | number>, reason: string): SnakepitError {
  const where = '$' + path.map((key) => (typeof key === 'number' ? `[${key}]` : IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`)).join('');
  return new SnakepitError('INVALID_ARGUMENTS', `args at ${where}: ${reason}`, { details: { path: where, reason } });
}

/** A result or chunk for a JSON answer: every NdArray as `$ndarray`, every Buffer / Uint8Array as `$bytes` (in place). */
export function encodeHttpValue(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof NdArray) {
    const array = value as NdArray; // instanceof of a generic class narrows to NdArray<any>
    return { $ndarray: { dtype: array.dtype, shape: [...array.shape], data: array.bytes.toString('base64') } } satisfies NdArrayJson;
  }
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') } satisfies BytesJson;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = encodeHttpValue(value[i]);
    return value;
  }
  const fields = value as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    const encoded = encodeHttpValue(fields[key]);
    if (encoded !== fields[key]) Object.defineProperty(fields, key, { value: encoded, writable: true, enumerable: true, configurable: true });
  }
  return value;
}

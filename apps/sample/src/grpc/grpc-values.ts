import { NdArray, SnakepitError, type NdArrayDtype } from '@snakepit/nestjs';
import type { Blob, Blob__Output } from '../generated/snakepit/v1/Blob';
import type { PathSegment__Output } from '../generated/snakepit/v1/PathSegment';

/*
 * The public gRPC API's arrays and bytes (proto/snakepit/v1/snakepit.proto, Blob):
 * JSON text with raw-byte blobs beside it, each placed at a path of keys and
 * indices. A request's blobs become NdArrays and Buffers in the args; every
 * NdArray and Buffer in a result or chunk becomes a blob, with null in the JSON.
 */

/** The library refuses values nested deeper than this (MAX_JSON_DEPTH): deeper arrays are left for it to refuse. */
const MAX_DEPTH = 64;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

type Path = Array<string | number>;

/**
 * A request's arguments: `argsJson` (an object, "{}" when empty) with each blob
 * set at its path. A lone bytes blob with an empty path and no JSON is the whole
 * arguments (a Buffer). INVALID_ARGUMENTS names the blob and its path otherwise.
 */
export function decodeGrpcArgs(argsJson: string, blobs: readonly Blob__Output[]): Record<string, unknown> | Buffer {
  if (blobs.length === 1 && blobs[0].path.length === 0 && blobs[0].dtype === 'bytes' && !argsJson) return blobs[0].data;
  const args = parseJsonObject(argsJson, 'args_json');
  blobs.forEach((blob, index) => place(args, blob, index));
  return args;
}

/** `text` as a JSON object ({} when empty), or INVALID_ARGUMENTS naming `field`. */
export function parseJsonObject(text: string, field: string): Record<string, unknown> {
  if (!text) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SnakepitError('INVALID_ARGUMENTS', `${field} is not valid JSON`, { details: { field } });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SnakepitError('INVALID_ARGUMENTS', `${field} must be a JSON object`, { details: { field } });
  }
  return value as Record<string, unknown>;
}

function place(args: Record<string, unknown>, blob: Blob__Output, index: number): void {
  const path = blob.path.map(segmentOf);
  const refuse = (reason: string) =>
    new SnakepitError('INVALID_ARGUMENTS', `blobs[${index}] at ${format(path)}: ${reason}`, { details: { field: 'blobs', index, path: format(path), reason } });
  if (path.length === 0) throw refuse('an empty path is the whole arguments: only one bytes blob, with args_json empty, may have it');
  const value = valueOf(blob, refuse);
  let parent: unknown = args;
  for (const [depth, segment] of path.entries()) {
    const last = depth === path.length - 1;
    if (typeof segment === 'number') {
      if (!Array.isArray(parent)) throw refuse(`${format(path.slice(0, depth))} is not a JSON array`);
      if (segment >= parent.length) throw refuse(`${format(path.slice(0, depth))} has ${parent.length} elements`);
      if (last && parent[segment] !== null) throw refuse('args_json must hold null where a blob stands');
      if (last) parent[segment] = value;
      else parent = parent[segment];
    } else {
      if (typeof parent !== 'object' || parent === null || Array.isArray(parent) || ArrayBuffer.isView(parent) || parent instanceof NdArray) {
        throw refuse(`${format(path.slice(0, depth))} is not a JSON object`);
      }
      const fields = parent as Record<string, unknown>;
      const present = Object.hasOwn(fields, segment);
      if (last && present && fields[segment] !== null) throw refuse('args_json must hold null (or nothing) where a blob stands');
      if (!last && !present) throw refuse(`args_json has no ${format(path.slice(0, depth + 1))}`);
      // defineProperty: a `__proto__` key stays a key.
      if (last) Object.defineProperty(fields, segment, { value, writable: true, enumerable: true, configurable: true });
      else parent = fields[segment];
    }
  }
}

function valueOf(blob: Blob__Output, refuse: (reason: string) => SnakepitError): NdArray | Buffer {
  if (blob.dtype === 'bytes') {
    if (blob.shape.length > 0) throw refuse('a bytes blob has no shape');
    return blob.data;
  }
  try {
    return NdArray.fromBytes(blob.dtype as NdArrayDtype, blob.shape, blob.data);
  } catch (error) {
    if (error instanceof SnakepitError) throw refuse(String(error.details.reason));
    throw error;
  }
}

function segmentOf(segment: PathSegment__Output): string | number {
  return segment.segment === 'index' ? (segment.index ?? 0) : (segment.key ?? '');
}

function format(path: Path): string {
  return '$' + path.map((key) => (typeof key === 'number' ? `[${key}]` : IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`)).join('');
}

/** A result or chunk for the wire: its JSON text, with null where each NdArray / Buffer stands, and those as blobs. */
export function encodeGrpcValue(value: unknown): { json: string; blobs: Blob[] } {
  const blobs: Blob[] = [];
  const json = JSON.stringify(extract(value, [], 0, blobs)) ?? 'null';
  return { json, blobs };
}

/** `value` with its arrays and bytes taken out: containers holding one are copied, the rest is returned as it is. */
function extract(value: unknown, path: Path, depth: number, blobs: Blob[]): unknown {
  if (typeof value !== 'object' || value === null || depth > MAX_DEPTH) return value;
  if (value instanceof NdArray) {
    const array = value as NdArray; // instanceof of a generic class narrows to NdArray<any>
    blobs.push({ path: segments(path), dtype: array.dtype, shape: [...array.shape], data: array.bytes });
    return null;
  }
  if (value instanceof Uint8Array) {
    blobs.push({ path: segments(path), dtype: 'bytes', shape: [], data: value });
    return null;
  }
  const before = blobs.length;
  if (Array.isArray(value)) {
    const items = value.map((item: unknown, index) => {
      path.push(index);
      const taken = extract(item, path, depth + 1, blobs);
      path.pop();
      return taken;
    });
    return blobs.length > before ? items : value;
  }
  const fields = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(fields)) {
    path.push(key);
    // defineProperty: a `__proto__` key stays a key.
    Object.defineProperty(out, key, { value: extract(fields[key], path, depth + 1, blobs), writable: true, enumerable: true, configurable: true });
    path.pop();
  }
  return blobs.length > before ? out : value;
}

function segments(path: Path): Blob['path'] {
  return path.map((segment) => (typeof segment === 'number' ? { index: segment } : { key: segment }));
}

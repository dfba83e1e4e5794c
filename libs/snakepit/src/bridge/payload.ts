import { SnakepitError } from '../errors/snakepit-error';
import type { Blob, Blob__Output } from './generated/snakepit/bridge/v1/Blob';
import type { Payload, Payload__Output } from './generated/snakepit/bridge/v1/Payload';
import { arrayFromBytes, dtypeOfTypedArray, NdArray, ndArrayProblem } from './ndarray';

/** Nesting deeper than this is refused before it reaches JSON.stringify or Python. */
export const MAX_JSON_DEPTH = 64;

/**
 * Checks that `value` survives JSON unchanged; JSON.stringify would silently
 * turn NaN into null, drop undefined and functions, and write Maps as {}.
 * Dates are allowed: they travel as ISO-8601 strings (their toJSON).
 * `root` names the value in the error's path (`$.metadata.x`). For JSON-only
 * values (sessions, metadata): arrays and bytes are refused here.
 */
export function assertJsonSafe(value: unknown, root = '$'): void {
  const problem = findUnsafe(value, 0, undefined);
  if (problem) throw unsafeError(problem, root);
}

function unsafeError(problem: Unsafe, root: string): SnakepitError {
  const path = root + formatPath(problem.path.reverse());
  if (problem.kind === 'tooDeep') {
    return new SnakepitError('INVALID_ARGUMENTS', `Arguments are nested deeper than ${MAX_JSON_DEPTH} levels at ${path}`, {
      details: { path, maxDepth: MAX_JSON_DEPTH },
    });
  }
  if (problem.kind === 'badArray') {
    return new SnakepitError('INVALID_ARGUMENTS', `Cannot send ${path}: ${problem.reason}`, { details: { path, reason: problem.reason } });
  }
  return new SnakepitError('SERIALIZATION_ERROR', `Cannot send ${path}: ${problem.reason}`, { details: { path, reason: problem.reason } });
}

/** What is wrong and where; `path` is innermost first, because it is built on the way out. */
interface Unsafe {
  reason: string;
  /** tooDeep and badArray (an NdArray that does not hold together) are the caller's INVALID_ARGUMENTS. */
  kind: 'unsafe' | 'tooDeep' | 'badArray';
  path: Array<string | number>;
}

/** The arrays and byte strings a payload's walk takes out, and where each stood. */
interface Taken {
  /** Innermost first, like an Unsafe's: each container adds its segment on the way out. */
  readonly paths: Array<Array<string | number>>;
  /** Without their paths until the walk is over. */
  readonly blobs: Blob[];
}

// The walk allocates nothing for a valid value without blobs: paths are built on the way out, only for an error or a blob.
function findUnsafe(value: unknown, depth: number, taken: Taken | undefined): Unsafe | undefined {
  if (depth > MAX_JSON_DEPTH) return { reason: 'too deep', kind: 'tooDeep', path: [] };
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
          const before = taken ? taken.paths.length : 0;
          const problem = findUnsafe(value[i], depth + 1, taken);
          if (problem) return within(problem, i);
          if (taken && taken.paths.length !== before) addSegment(taken, before, i);
        }
        return undefined;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return taken ? take(value, taken) : unsafe(notJson(value));
      for (const key of Object.keys(value)) {
        const before = taken ? taken.paths.length : 0;
        const problem = findUnsafe((value as Record<string, unknown>)[key], depth + 1, taken);
        if (problem) return within(problem, key);
        if (taken && taken.paths.length !== before) addSegment(taken, before, key);
      }
      return undefined;
    }
    default:
      return unsafe(`${typeof value} cannot be carried as JSON`);
  }
}

/** Takes an array or byte string out as a blob; anything else that is not plain JSON is refused. */
function take(value: object, taken: Taken): Unsafe | undefined {
  let blob: Blob;
  if (value instanceof NdArray) {
    const array = value as NdArray; // instanceof of a generic class narrows to NdArray<any>
    const problem = ndArrayProblem(array.dtype, array.shape, array.data);
    if (problem) return { reason: problem, kind: 'badArray', path: [] };
    blob = { dtype: array.dtype, shape: [...array.shape], data: array.bytes };
  } else if (value instanceof Uint8Array) {
    blob = { dtype: 'bytes', shape: [], data: Buffer.from(value.buffer, value.byteOffset, value.byteLength) };
  } else {
    const dtype = dtypeOfTypedArray(value);
    if (!dtype) return unsafe(notJson(value));
    const array = value as ArrayBufferView & { length: number };
    blob = { dtype, shape: [array.length], data: Buffer.from(array.buffer, array.byteOffset, array.byteLength) };
  }
  taken.paths.push([]);
  taken.blobs.push(blob);
  return undefined;
}

/** Adds a container's segment to the paths of the blobs its child at `segment` gave (from index `from`). */
function addSegment(taken: Taken, from: number, segment: string | number): void {
  for (let i = from; i < taken.paths.length; i++) taken.paths[i].push(segment);
}

/** Each blob's path, outermost first, as its wire segments; an Unsafe for a key a path cannot hold. */
function placePaths(taken: Taken): Unsafe | undefined {
  for (let i = 0; i < taken.blobs.length; i++) {
    const path = taken.paths[i].reverse();
    const segments: Blob['path'] = [];
    for (const segment of path) {
      if (typeof segment === 'number') segments.push({ index: segment });
      // Protobuf strings are UTF-8: a lone surrogate, which JSON could escape, cannot be in a path.
      else if (Buffer.from(segment, 'utf8').toString('utf8') !== segment) {
        return { reason: `the key ${JSON.stringify(segment)} on the way to it is not valid UTF-8`, kind: 'unsafe', path: [...path].reverse() };
      } else segments.push({ key: segment });
    }
    taken.blobs[i].path = segments;
  }
  return undefined;
}

function notJson(value: object): string {
  const name = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor?.name ?? 'object';
  if (value instanceof NdArray || ArrayBuffer.isView(value))
    return `${name} is not JSON (sessions and metadata hold JSON; arrays and bytes travel in arguments and results)`;
  if (value instanceof ArrayBuffer) return 'ArrayBuffer is not JSON: wrap it in a Uint8Array (bytes) or a typed array';
  return `${name} is not a plain JSON object`;
}

function within(problem: Unsafe, segment: string | number): Unsafe {
  problem.path.push(segment);
  return problem;
}

function unsafe(reason: string): Unsafe {
  return { reason, kind: 'unsafe', path: [] };
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `.a[2].b`, keys that are not identifiers quoted (`["a b"]`): the worker names paths the same way. */
function formatPath(segments: ReadonlyArray<string | number>): string {
  return segments
    .map((segment) => (typeof segment === 'number' ? `[${segment}]` : IDENTIFIER.test(segment) ? `.${segment}` : `[${JSON.stringify(segment)}]`))
    .join('');
}

/**
 * Arguments become one payload: a Buffer (or Uint8Array) as the whole
 * arguments travels as raw bytes; otherwise a JSON object of named parameters,
 * with every array and byte string in it carried beside the JSON (encodeValue).
 */
export function encodeArgs(args: unknown, maxBytes: number): Payload {
  if (args instanceof Uint8Array) return encodeValue(args, maxBytes);
  const value = args ?? {};
  if (typeof value !== 'object' || Array.isArray(value) || value instanceof NdArray || ArrayBuffer.isView(value)) {
    const got = Array.isArray(value) ? 'array' : typeof value === 'object' ? value.constructor.name : typeof value;
    throw new SnakepitError('INVALID_ARGUMENTS', 'Arguments must be a JSON object of named parameters (or a Buffer); pass an array by name: { x: array }', {
      details: { got },
    });
  }
  return encodeValue(value, maxBytes);
}

/**
 * Any value as a payload. A Buffer or Uint8Array as the whole value travels
 * as raw bytes (`binary`). Otherwise the value is checked JSON in which, at any
 * depth, a Buffer / Uint8Array (bytes), another TypedArray (a 1-d array of
 * its element type) or an NdArray is replaced by null and carried as a blob
 * with its path. Blobs are views of the caller's memory, read when the call
 * is written to the worker, not copies.
 */
export function encodeValue(value: unknown, maxBytes: number): Payload {
  if (value instanceof Uint8Array) {
    checkSize(value.byteLength, maxBytes);
    return { binary: Buffer.from(value.buffer, value.byteOffset, value.byteLength) };
  }
  const taken: Taken = { paths: [], blobs: [] };
  const problem = findUnsafe(value, 0, taken) ?? placePaths(taken);
  if (problem) throw unsafeError(problem, '$');
  if (taken.blobs.length === 0) {
    const json = Buffer.from(JSON.stringify(value ?? null));
    checkSize(json.byteLength, maxBytes);
    return { json };
  }
  const json = Buffer.from(JSON.stringify(withNulls(value, taken.paths)));
  checkSize(
    taken.blobs.reduce((bytes, blob) => bytes + (blob.data as Buffer).byteLength, json.byteLength),
    maxBytes,
  );
  return { json, blobs: taken.blobs };
}

/** `root` with null at each path, copying only the containers on the way: the caller's value stays as it was. */
function withNulls(root: unknown, paths: Array<Array<string | number>>): unknown {
  if (paths[0].length === 0) return null; // the whole value is one array
  type Container = Record<string | number, unknown>;
  const copies = new Map<object, Container>();
  const copyOf = (node: Container): Container => {
    let copy = copies.get(node);
    // Null-prototype copies: assigning a `__proto__` key to them makes a key, not a prototype.
    if (!copy) copies.set(node, (copy = Array.isArray(node) ? ([...node] as unknown as Container) : (Object.assign(Object.create(null), node) as Container)));
    return copy;
  };
  const top = copyOf(root as Container);
  for (const path of paths) {
    let original = root as Container;
    let copy = top;
    for (let i = 0; i < path.length - 1; i++) {
      original = original[path[i]] as Container;
      copy = copy[path[i]] = copyOf(original);
    }
    copy[path[path.length - 1]] = null;
  }
  return top;
}

function checkSize(bytes: number, maxBytes: number): void {
  if (bytes > maxBytes) {
    throw new SnakepitError('PAYLOAD_TOO_LARGE', `The payload is ${bytes} bytes; the pool's maxPayloadBytes is ${maxBytes}`, {
      details: { bytes, maxBytes, option: 'maxPayloadBytes' },
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

import { SnakepitError } from '../errors/snakepit-error';

/**
 * The runtime's `Float16Array` (Node 24 has one, Node 20 does not), typed by
 * what Snakepit uses of it: the ES2023 lib the library compiles against does
 * not declare it.
 */
export interface Float16ArrayLike extends ArrayBufferView {
  readonly length: number;
  readonly BYTES_PER_ELEMENT: number;
  [index: number]: number;
}

/** The `data` of an NdArray of each dtype (elements little-endian, C order). */
export interface NdArrayDataTypes {
  bool: Uint8Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  uint16: Uint16Array;
  uint32: Uint32Array;
  uint64: BigUint64Array;
  /** The raw half-precision bits, or a Float16Array where the runtime has one. */
  float16: Uint16Array | Float16ArrayLike;
  float32: Float32Array;
  float64: Float64Array;
  /** Interleaved real and imaginary parts: two elements per value. */
  complex64: Float32Array;
  complex128: Float64Array;
}

/** The element types that travel as arrays (numpy's dtype names). */
export type NdArrayDtype = keyof NdArrayDataTypes;

/** Any TypedArray; every one but a Uint8Array has a dtype of its own (see NdArray). */
export type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array
  | Float16ArrayLike;

/** The dtype `NdArray.from` gives a TypedArray of type T. */
export type DtypeOf<T extends TypedArray> = T extends Int8Array
  ? 'int8'
  : T extends Uint8Array | Uint8ClampedArray
    ? 'uint8'
    : T extends Int16Array
      ? 'int16'
      : T extends Uint16Array
        ? 'uint16'
        : T extends Int32Array
          ? 'int32'
          : T extends Uint32Array
            ? 'uint32'
            : T extends Float32Array
              ? 'float32'
              : T extends Float64Array
                ? 'float64'
                : T extends BigInt64Array
                  ? 'int64'
                  : T extends BigUint64Array
                    ? 'uint64'
                    : 'float16';

interface TypedArrayConstructor {
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
  new (length: number): TypedArray;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray;
}

const FLOAT16_ARRAY = (globalThis as { Float16Array?: TypedArrayConstructor }).Float16Array;

interface DtypeInfo {
  /** What a received array's data is made as. */
  readonly array: TypedArrayConstructor;
  /** What a caller's data may be (float16: Uint16Array or Float16Array). */
  readonly accepts: readonly TypedArrayConstructor[];
  /** Bytes per value (numpy's itemsize). */
  readonly itemsize: number;
  /** TypedArray elements per value: 2 for complex (real, imaginary). */
  readonly parts: number;
}

function info(array: TypedArrayConstructor, parts = 1, accepts: readonly TypedArrayConstructor[] = [array]): DtypeInfo {
  return { array, accepts, itemsize: array.BYTES_PER_ELEMENT * parts, parts };
}

/** The one table of dtypes (python/snakepit_bridge/arrays.py ITEMSIZES is its Python side). */
const DTYPES: Readonly<Record<NdArrayDtype, DtypeInfo>> = {
  bool: info(Uint8Array),
  int8: info(Int8Array),
  int16: info(Int16Array),
  int32: info(Int32Array),
  int64: info(BigInt64Array),
  uint8: info(Uint8Array),
  uint16: info(Uint16Array),
  uint32: info(Uint32Array),
  uint64: info(BigUint64Array),
  float16: info(FLOAT16_ARRAY ?? Uint16Array, 1, FLOAT16_ARRAY ? [Uint16Array, FLOAT16_ARRAY] : [Uint16Array]),
  float32: info(Float32Array),
  float64: info(Float64Array),
  complex64: info(Float32Array, 2),
  complex128: info(Float64Array, 2),
};

const SUPPORTED = Object.keys(DTYPES).join(', ');

export function isDtype(dtype: unknown): dtype is NdArrayDtype {
  return typeof dtype === 'string' && Object.hasOwn(DTYPES, dtype);
}

/**
 * The dtype a TypedArray travels as when it stands alone in arguments (a 1-d
 * array); undefined for a Uint8Array, which travels as bytes, and for what is
 * not a TypedArray.
 */
export function dtypeOfTypedArray(value: unknown): NdArrayDtype | undefined {
  if (!ArrayBuffer.isView(value) || value instanceof DataView || value instanceof Uint8Array) return undefined;
  if (value instanceof Uint8ClampedArray) return 'uint8';
  if (FLOAT16_ARRAY && value instanceof FLOAT16_ARRAY) return 'float16';
  if (value instanceof Int8Array) return 'int8';
  if (value instanceof Int16Array) return 'int16';
  if (value instanceof Uint16Array) return 'uint16';
  if (value instanceof Int32Array) return 'int32';
  if (value instanceof Uint32Array) return 'uint32';
  if (value instanceof Float32Array) return 'float32';
  if (value instanceof Float64Array) return 'float64';
  if (value instanceof BigInt64Array) return 'int64';
  if (value instanceof BigUint64Array) return 'uint64';
  return undefined;
}

/** The number of values of an array of `shape` (1 for a 0-d array), or why `shape` is not one. */
function sizeOf(shape: unknown): number | string {
  if (!Array.isArray(shape)) return `shape must be an array of dimensions, got ${typeof shape}`;
  let size = 1;
  for (const dim of shape as unknown[]) {
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) return `shape ${JSON.stringify(shape)} must hold non-negative integers`;
    size *= dim;
  }
  return size;
}

/** Why `dtype`, `shape` and `data` do not make an NdArray, or undefined when they do. */
export function ndArrayProblem(dtype: unknown, shape: unknown, data: unknown): string | undefined {
  if (!isDtype(dtype)) return `dtype ${JSON.stringify(dtype)} is not one that travels (supported: ${SUPPORTED})`;
  const size = sizeOf(shape);
  if (typeof size === 'string') return size;
  const { accepts, parts } = DTYPES[dtype];
  if (!accepts.some((array) => data instanceof array)) {
    const got = ArrayBuffer.isView(data) ? data.constructor.name : typeof data;
    return `the data of a ${dtype} array must be a ${accepts.map((array) => array.name).join(' or ')}, got ${got}`;
  }
  const length = (data as TypedArray).length;
  if (length !== size * parts) {
    const per = parts === 1 ? '' : ` (${parts} per value: real, imaginary)`;
    return `a ${dtype} array of shape ${JSON.stringify(shape)} has ${size * parts} elements${per}, its data has ${length}`;
  }
  return undefined;
}

/**
 * The array that raw little-endian `bytes` hold, or why they cannot hold one.
 * Its data is a view over `bytes` when their offset suits the element size,
 * else a copy (a TypedArray cannot start at an unaligned offset).
 */
export function arrayFromBytes(dtype: string, shape: readonly number[], bytes: Uint8Array): NdArray | string {
  if (!isDtype(dtype)) return `dtype ${JSON.stringify(dtype)} is not one that travels (supported: ${SUPPORTED})`;
  const size = sizeOf(shape);
  if (typeof size === 'string') return size;
  const { array, itemsize, parts } = DTYPES[dtype];
  if (bytes.byteLength !== size * itemsize) {
    return `a ${dtype} array of shape ${JSON.stringify(shape)} takes ${size * itemsize} bytes, got ${bytes.byteLength}`;
  }
  const elements = size * parts;
  let data: TypedArray;
  if (bytes.byteOffset % array.BYTES_PER_ELEMENT === 0) {
    data = new array(bytes.buffer, bytes.byteOffset, elements);
  } else {
    data = new array(elements);
    new Uint8Array(data.buffer).set(bytes);
  }
  return new NdArray(dtype, shape, data);
}

/**
 * An n-dimensional array as it travels to and from Python (`numpy.ndarray`):
 * an element type, the dimensions (C order) and the elements, little-endian
 * (the byte order of every platform Node runs on but s390x).
 *
 * | dtype (numpy)          | `data`                                              |
 * | ---------------------- | --------------------------------------------------- |
 * | bool                   | Uint8Array (0 or 1)                                 |
 * | int8 / uint8           | Int8Array / Uint8Array                              |
 * | int16 / uint16         | Int16Array / Uint16Array                            |
 * | int32 / uint32         | Int32Array / Uint32Array                            |
 * | int64 / uint64         | BigInt64Array / BigUint64Array                      |
 * | float16                | Float16Array where the runtime has it, else Uint16Array (the raw bits) |
 * | float32 / float64      | Float32Array / Float64Array                         |
 * | complex64 / complex128 | Float32Array / Float64Array, real and imaginary interleaved |
 *
 * In a call's arguments, at any depth: an NdArray travels with its dtype and
 * shape; a Buffer or plain Uint8Array travels as bytes (Python `bytes`); any
 * other TypedArray as a 1-d array of its element type (Uint8ClampedArray:
 * uint8). So a uint8, bool, float16 or complex array, or any with more than
 * one dimension, is sent as an NdArray. In results, stream chunks and host
 * tool arguments, every numpy array comes back as an NdArray whose `data` is a
 * view over the received message's bytes when they are aligned for the
 * element size, else a copy of them; every byte string as a Buffer.
 *
 * A plain carrier, not a compute library: scijs `ndarray` and `@stdlib/ndarray`
 * add strides and operations but name no float16 or complex dtypes as numpy
 * does; wrap `data` and `shape` in one of them without a copy when needed.
 */
export class NdArray<D extends NdArrayDtype = NdArrayDtype> {
  readonly dtype: D;
  /** Dimensions, outermost first (C order); empty for a 0-d array. */
  readonly shape: readonly number[];
  readonly data: NdArrayDataTypes[D];

  /** Checks that `data` is the TypedArray of `dtype` with the values `shape` has; INVALID_ARGUMENTS otherwise. */
  constructor(dtype: D, shape: readonly number[], data: NdArrayDataTypes[D]) {
    const problem = ndArrayProblem(dtype, shape, data);
    if (problem) throw new SnakepitError('INVALID_ARGUMENTS', `Not an NdArray: ${problem}`, { details: { reason: problem } });
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.data = data;
  }

  /**
   * An array over `data` (not a copy) of its element type, 1-d unless `shape`
   * says otherwise (its values must number `data.length`). A Uint8Array is a
   * uint8 array here; a Uint8ClampedArray becomes a Uint8Array over its memory.
   */
  static from<T extends TypedArray>(data: T, shape: readonly number[] = [data.length]): NdArray<DtypeOf<T>> {
    const dtype = data instanceof Uint8Array ? 'uint8' : dtypeOfTypedArray(data);
    if (!dtype) throw new SnakepitError('INVALID_ARGUMENTS', 'NdArray.from takes a TypedArray', { details: { reason: 'not a TypedArray' } });
    const elements = data instanceof Uint8ClampedArray ? new Uint8Array(data.buffer, data.byteOffset, data.length) : data;
    return new NdArray(dtype as DtypeOf<T>, shape, elements as NdArrayDataTypes[DtypeOf<T>]);
  }

  /**
   * An array of `dtype` and `shape` over raw little-endian bytes (a file, a
   * socket, base64): a view when `bytes` are aligned for the element size,
   * else a copy. INVALID_ARGUMENTS when their length does not fit.
   */
  static fromBytes<D extends NdArrayDtype>(dtype: D, shape: readonly number[], bytes: Uint8Array): NdArray<D> {
    const array = arrayFromBytes(dtype, shape, bytes);
    if (typeof array === 'string') throw new SnakepitError('INVALID_ARGUMENTS', `Not an NdArray: ${array}`, { details: { reason: array } });
    return array as NdArray<D>;
  }

  /** The number of values (the product of the dimensions). */
  get size(): number {
    return this.shape.reduce((product, dim) => product * dim, 1);
  }

  /** The number of dimensions. */
  get ndim(): number {
    return this.shape.length;
  }

  /** The elements' bytes, as they travel (a view, not a copy). */
  get bytes(): Buffer {
    return Buffer.from(this.data.buffer, this.data.byteOffset, this.data.byteLength);
  }
}

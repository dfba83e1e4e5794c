import { SnakepitError } from '../errors/snakepit-error';
import { dtypeOfTypedArray, NdArray } from './ndarray';

function errorOf(fn: () => unknown): SnakepitError | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof SnakepitError) return error;
    throw error;
  }
  return undefined;
}

describe('NdArray', () => {
  it('wraps a TypedArray without copying it, 1-d unless a shape says otherwise', () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const flat = NdArray.from(data);
    expect([flat.dtype, flat.shape, flat.size, flat.ndim]).toEqual(['float32', [6], 6, 1]);
    const matrix = NdArray.from(data, [2, 3]);
    expect([matrix.shape, matrix.size, matrix.ndim]).toEqual([[2, 3], 6, 2]);
    expect(matrix.data).toBe(data);
    expect(matrix.bytes.buffer).toBe(data.buffer);
    expect(NdArray.from(new Uint8Array(2)).dtype).toBe('uint8');
    expect(NdArray.from(new BigInt64Array(1), []).ndim).toBe(0);
    const clamped = NdArray.from(new Uint8ClampedArray([7, 8]));
    expect(clamped.dtype).toBe('uint8');
    expect(clamped.data).toBeInstanceOf(Uint8Array);
  });

  it('keeps its shape its own', () => {
    const shape = [2];
    const array = new NdArray('int32', shape, new Int32Array(2));
    shape.push(3);
    expect(array.shape).toEqual([2]);
    expect(Object.isFrozen(array.shape)).toBe(true);
  });

  it('takes bool, complex and float16 data in the TypedArrays the table names', () => {
    expect(new NdArray('bool', [2], new Uint8Array([0, 1])).size).toBe(2);
    expect(new NdArray('complex128', [2], new Float64Array(4)).size).toBe(2);
    expect(new NdArray('float16', [1], new Uint16Array([0x3c00])).data[0]).toBe(0x3c00);
  });

  it('refuses an unknown dtype, a bad shape, the wrong TypedArray or a length that does not fit, with INVALID_ARGUMENTS', () => {
    const cases: Array<[() => unknown, RegExp]> = [
      [() => new NdArray('float128' as 'float64', [1], new Float64Array(1)), /float128.*supported/],
      [() => new NdArray('float32', [-1], new Float32Array(0)), /non-negative integers/],
      [() => new NdArray('float32', [1.5], new Float32Array(1)), /non-negative integers/],
      [() => new NdArray('float32', [2], new Float64Array(2) as unknown as Float32Array), /must be a Float32Array, got Float64Array/],
      [() => new NdArray('float32', [2, 2], new Float32Array(3)), /shape \[2,2\] has 4 elements, its data has 3/],
      [() => new NdArray('complex64', [2], new Float32Array(2)), /has 4 elements \(2 per value/],
      [() => NdArray.from(new Float32Array(3), [2]), /has 2 elements, its data has 3/],
      [() => NdArray.fromBytes('int32', [2], new Uint8Array(7)), /takes 8 bytes, got 7/],
    ];
    for (const [make, reason] of cases) {
      const error = errorOf(make);
      expect(error?.code).toBe('INVALID_ARGUMENTS');
      expect(error?.message).toMatch(reason);
    }
  });

  it('reads raw little-endian bytes: a view when aligned, a copy when not', () => {
    const raw = Buffer.alloc(32);
    raw.writeDoubleLE(2.5, 8);
    raw.writeDoubleLE(-1, 17);
    const view = NdArray.fromBytes('float64', [1], raw.subarray(8, 16));
    expect(view.data[0]).toBe(2.5);
    expect(view.data.buffer).toBe(raw.buffer);
    const copy = NdArray.fromBytes('float64', [1], raw.subarray(17, 25));
    expect(copy.data[0]).toBe(-1);
    expect(copy.data.buffer).not.toBe(raw.buffer);
  });
});

describe('dtypeOfTypedArray', () => {
  it('names the dtype of every TypedArray but a Uint8Array (bytes) and of nothing else', () => {
    const named: Array<[ArrayBufferView, string]> = [
      [new Int8Array(1), 'int8'],
      [new Uint8ClampedArray(1), 'uint8'],
      [new Int16Array(1), 'int16'],
      [new Uint16Array(1), 'uint16'],
      [new Int32Array(1), 'int32'],
      [new Uint32Array(1), 'uint32'],
      [new Float32Array(1), 'float32'],
      [new Float64Array(1), 'float64'],
      [new BigInt64Array(1), 'int64'],
      [new BigUint64Array(1), 'uint64'],
    ];
    for (const [array, dtype] of named) expect(dtypeOfTypedArray(array)).toBe(dtype);
    for (const other of [new Uint8Array(1), Buffer.alloc(1), new DataView(new ArrayBuffer(1)), [1], {}]) expect(dtypeOfTypedArray(other)).toBeUndefined();
  });
});

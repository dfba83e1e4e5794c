import { join } from 'node:path';
import * as protobuf from 'protobufjs';
import type { SnakepitError } from '../errors/snakepit-error';
import type { Payload__Output } from './generated/snakepit/bridge/v1/Payload';
import { NdArray } from './ndarray';
import { assertJsonSafe, decodePayload, encodeArgs, encodeValue, MAX_JSON_DEPTH } from './payload';
import { PROTO_LOADER_OPTIONS } from './proto';

function errorOf(fn: () => unknown): SnakepitError | undefined {
  try {
    fn();
  } catch (error) {
    return error as SnakepitError;
  }
  return undefined;
}

const codeOf = (fn: () => unknown) => errorOf(fn)?.code;

describe('payload encoding', () => {
  it('sends arguments as compact JSON and keeps integers integral', () => {
    const payload = encodeArgs({ a: 2, b: 3, nested: { list: [1, 'x', null, true] } }, 1024);
    expect(payload.json?.toString()).toBe('{"a":2,"b":3,"nested":{"list":[1,"x",null,true]}}');
    expect(decodePayload({ json: Buffer.from('{"result":5}'), blobs: [] })).toEqual({ result: 5 });
  });

  it('sends a Buffer untouched as binary', () => {
    const payload = encodeArgs(Buffer.from([0, 255, 7]), 1024);
    expect(payload.binary).toEqual(Buffer.from([0, 255, 7]));
    expect(decodePayload({ binary: Buffer.from([1, 2]), blobs: [] })).toEqual(Buffer.from([1, 2]));
  });

  it('rejects values JSON would silently change, naming the path', () => {
    for (const bad of [{ a: NaN }, { a: Infinity }, { a: [1, undefined] }, { a: new Map() }, { a: () => 1 }, { a: 10n }]) {
      expect(codeOf(() => assertJsonSafe(bad))).toBe('SERIALIZATION_ERROR');
    }
    expect(errorOf(() => encodeArgs({ outer: { list: [0, NaN] } }, 1024))?.details.path).toBe('$.outer.list[1]');
  });

  it('refuses nesting deeper than the limit', () => {
    let deep: unknown = 1;
    for (let i = 0; i <= MAX_JSON_DEPTH + 1; i++) deep = [deep];
    expect(codeOf(() => encodeArgs({ deep }, 1 << 20))).toBe('INVALID_ARGUMENTS');
  });

  it('refuses arguments that are not an object, and payloads over the limit', () => {
    expect(codeOf(() => encodeArgs([1, 2], 1024))).toBe('INVALID_ARGUMENTS');
    expect(codeOf(() => encodeArgs('text', 1024))).toBe('INVALID_ARGUMENTS');
    expect(codeOf(() => encodeArgs({ text: 'x'.repeat(100) }, 50))).toBe('PAYLOAD_TOO_LARGE');
    expect(codeOf(() => encodeArgs(Buffer.alloc(51), 50))).toBe('PAYLOAD_TOO_LARGE');
  });
});

/** A Payload as the worker sends it, through protobufjs's real encoding and the decoding options the host loads protos with. */
function fromWire(payload: Record<string, unknown>): Payload__Output {
  const bytes = PayloadType.encode(PayloadType.fromObject(payload)).finish();
  const { longs, enums, defaults, oneofs, arrays } = PROTO_LOADER_OPTIONS;
  return PayloadType.toObject(PayloadType.decode(bytes), { longs, enums, defaults, oneofs, arrays }) as Payload__Output;
}

const PayloadType = protobuf.loadSync(join(__dirname, '../../../../proto/snakepit/bridge/v1/bridge.proto')).lookupType('snakepit.bridge.v1.Payload');
const f32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer);

describe('payload decoding: blobs', () => {
  it('places arrays and bytes at their paths (keys, indices, an empty key, index 0) as NdArray and Buffer', () => {
    const value = decodePayload(
      fromWire({
        json: Buffer.from('{"x":null,"parts":[null,{"b":null}],"":null,"n":1}'),
        blobs: [
          { path: [{ key: 'x' }], dtype: 'float32', shape: [2, 2], data: f32([1, 2, 3, 4]) },
          { path: [{ key: 'parts' }, { index: 0 }], dtype: 'bytes', data: Buffer.from('ab') },
          { path: [{ key: 'parts' }, { index: 1 }, { key: 'b' }], dtype: 'int64', shape: [1], data: Buffer.from(new BigInt64Array([-(2n ** 60n)]).buffer) },
          { path: [{ key: '' }], dtype: 'bool', shape: [], data: Buffer.from([1]) },
        ],
      }),
    ) as { x: NdArray<'float32'>; parts: [Buffer, { b: NdArray<'int64'> }]; '': NdArray<'bool'>; n: number };
    expect(value.x).toBeInstanceOf(NdArray);
    expect(value.x.dtype).toBe('float32');
    expect(value.x.shape).toEqual([2, 2]);
    expect(Array.from(value.x.data)).toEqual([1, 2, 3, 4]);
    expect(value.parts[0]).toEqual(Buffer.from('ab'));
    expect(Buffer.isBuffer(value.parts[0])).toBe(true);
    expect(value.parts[1].b.data).toEqual(new BigInt64Array([-(2n ** 60n)]));
    expect(value[''].data).toEqual(new Uint8Array([1]));
    expect(value[''].ndim).toBe(0);
    expect(value.n).toBe(1);
  });

  it('gives a whole value that is an array (null JSON, one blob with an empty path)', () => {
    const value = decodePayload(
      fromWire({ json: Buffer.from('null'), blobs: [{ path: [], dtype: 'float64', shape: [3], data: Buffer.from(new Float64Array([1, 2, 3]).buffer) }] }),
    );
    expect(value).toBeInstanceOf(NdArray);
    expect((value as NdArray<'float64'>).data).toEqual(new Float64Array([1, 2, 3]));
  });

  it('keeps a __proto__ key a key', () => {
    const value = decodePayload({
      json: Buffer.from('{"__proto__":null}'),
      blobs: [{ path: [{ key: '__proto__', segment: 'key' }], dtype: 'bytes', shape: [], data: Buffer.from('z'), shared: null }],
    }) as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.hasOwn(value, '__proto__')).toBe(true);
    expect(value['__proto__']).toEqual(Buffer.from('z'));
  });

  it('views the received bytes when aligned for the element size, and copies them when not', () => {
    const message = Buffer.alloc(64);
    const aligned = message.subarray(8, 24);
    const unaligned = message.subarray(9, 25);
    f32([1, 2, 3, 4]).copy(aligned);
    f32([5, 6, 7, 8]).copy(unaligned);
    const blob = (key: string, data: Buffer) => ({ path: [{ key, segment: 'key' as const }], dtype: 'float32', shape: [4], data, shared: null });
    const value = decodePayload({ json: Buffer.from('{"a":null,"u":null}'), blobs: [blob('a', aligned), blob('u', unaligned)] }) as Record<
      string,
      NdArray<'float32'>
    >;
    expect(value.a.data.buffer).toBe(message.buffer);
    expect(value.a.data.byteOffset).toBe(aligned.byteOffset);
    expect(Array.from(value.u.data)).toEqual([5, 6, 7, 8]);
    expect(value.u.data.buffer).not.toBe(message.buffer);
  });

  it('maps every dtype to its TypedArray, complex interleaved and float16 as the runtime allows', () => {
    const cases: Array<[string, number[], number, unknown]> = [
      ['bool', [2], 2, Uint8Array],
      ['int8', [2], 2, Int8Array],
      ['uint8', [2], 2, Uint8Array],
      ['int16', [2], 4, Int16Array],
      ['uint16', [2], 4, Uint16Array],
      ['int32', [2], 8, Int32Array],
      ['uint32', [2], 8, Uint32Array],
      ['int64', [2], 16, BigInt64Array],
      ['uint64', [2], 16, BigUint64Array],
      ['float16', [2], 4, (globalThis as { Float16Array?: unknown }).Float16Array ?? Uint16Array],
      ['float32', [2], 8, Float32Array],
      ['float64', [2], 16, Float64Array],
      ['complex64', [2], 16, Float32Array],
      ['complex128', [2, 1], 32, Float64Array],
    ];
    for (const [dtype, shape, bytes, array] of cases) {
      const value = decodePayload({ json: Buffer.from('null'), blobs: [{ path: [], dtype, shape, data: Buffer.alloc(bytes), shared: null }] }) as NdArray;
      expect([dtype, value.data.constructor]).toEqual([dtype, array]);
      expect(value.size).toBe(2);
    }
    const complex = decodePayload({
      json: Buffer.from('null'),
      blobs: [{ path: [], dtype: 'complex64', shape: [1], data: f32([1.5, -2]), shared: null }],
    }) as NdArray<'complex64'>;
    expect(Array.from(complex.data)).toEqual([1.5, -2]);
  });

  it('refuses malformed blobs with SERIALIZATION_ERROR naming the path', () => {
    const one = (json: string, blob: Record<string, unknown>) =>
      errorOf(() =>
        decodePayload({
          json: Buffer.from(json),
          blobs: [{ path: [], dtype: 'float32', shape: [1], data: f32([1]), shared: null, ...blob }] as Payload__Output['blobs'],
        }),
      );
    const key = (k: string) => ({ key: k, segment: 'key' as const });
    const cases: Array<[SnakepitError | undefined, string, RegExp]> = [
      [one('{"x":null}', { path: [key('x')], shape: [3] }), '$.x', /takes 12 bytes, got 4/],
      [one('{"x":null}', { path: [key('x')], dtype: 'float128' }), '$.x', /float128.*supported: bool/],
      [one('{"x":null}', { path: [key('x')], dtype: 'bytes', shape: [1] }), '$.x', /no shape/],
      [one('{"x":1}', { path: [key('x')] }), '$.x', /not null where the blob stands/],
      [one('{"x":[null]}', { path: [key('x'), { index: 1, segment: 'index' }] }), '$.x[1]', /does not exist/],
      [one('{"a b":{}}', { path: [key('a b'), key('c')] }), '$["a b"].c', /does not exist/],
      [one('{"x":null}', { path: [{}] }), '$', /neither a key nor an index/],
      [one('{}', {}), '$', /not null/],
    ];
    for (const [error, path, reason] of cases) {
      expect(error?.code).toBe('SERIALIZATION_ERROR');
      expect(error?.details.path).toBe(path);
      expect(error?.message).toMatch(reason);
    }
    const beside = errorOf(() =>
      decodePayload({ binary: Buffer.from('x'), blobs: [{ path: [], dtype: 'bytes', shape: [], data: Buffer.from('y'), shared: null }] }),
    );
    expect(beside?.code).toBe('SERIALIZATION_ERROR');
  });
});

describe('payload encoding: arrays and bytes', () => {
  it('takes every array and byte string out at any depth, leaving null in the JSON and the caller’s value as it was', () => {
    const x = new Float32Array([1, 2, 3]);
    const raw = Buffer.from('hello');
    const matrix = new NdArray('int16', [2, 2], new Int16Array([1, -2, 3, -4]));
    const args = { x, meta: { raw, list: [1, new Uint8Array([9]), { m: matrix }] }, n: 2 };
    const payload = encodeArgs(args, 1 << 20);
    expect(payload.json?.toString()).toBe('{"x":null,"meta":{"raw":null,"list":[1,null,{"m":null}]},"n":2}');
    expect(payload.blobs?.map(({ path, dtype, shape }) => ({ path, dtype, shape }))).toEqual([
      { path: [{ key: 'x' }], dtype: 'float32', shape: [3] },
      { path: [{ key: 'meta' }, { key: 'raw' }], dtype: 'bytes', shape: [] },
      { path: [{ key: 'meta' }, { key: 'list' }, { index: 1 }], dtype: 'bytes', shape: [] },
      { path: [{ key: 'meta' }, { key: 'list' }, { index: 2 }, { key: 'm' }], dtype: 'int16', shape: [2, 2] },
    ]);
    // Views of the caller's memory, not copies.
    expect((payload.blobs?.[0].data as Buffer).buffer).toBe(x.buffer);
    expect(payload.blobs?.[1].data).toEqual(raw);
    expect(args.x).toBe(x);
    expect(args.meta.raw).toBe(raw);
    expect(args.meta.list[2]).toEqual({ m: matrix });
  });

  it('round-trips through the wire: arrays as NdArray of the same dtype, shape and values, bytes as Buffer', () => {
    const args = {
      a: NdArray.from(new Float64Array([0.5, -1, 2, 4, 8, 16]), [2, 3]),
      b: new BigUint64Array([2n ** 64n - 1n]),
      c: [Buffer.from([0, 255])],
      d: new NdArray('bool', [2], new Uint8Array([1, 0])),
      e: new NdArray('complex64', [1], new Float32Array([1, -1])),
    };
    const back = decodePayload(fromWire(encodeArgs(args, 1 << 20) as Record<string, unknown>)) as Record<string, unknown>;
    const a = back.a as NdArray<'float64'>;
    expect([a.dtype, a.shape, Array.from(a.data)]).toEqual(['float64', [2, 3], [0.5, -1, 2, 4, 8, 16]]);
    const b = back.b as NdArray<'uint64'>;
    expect([b.dtype, b.shape, b.data[0]]).toEqual(['uint64', [1], 2n ** 64n - 1n]);
    expect(back.c).toEqual([Buffer.from([0, 255])]);
    expect((back.d as NdArray).dtype).toBe('bool');
    expect(Array.from((back.e as NdArray<'complex64'>).data)).toEqual([1, -1]);
  });

  it('sends a whole value that is an array as null JSON and one blob with an empty path (a host tool’s result)', () => {
    const payload = encodeValue(new Int32Array([7]), 1024);
    expect(payload.json?.toString()).toBe('null');
    expect(payload.blobs).toEqual([{ path: [], dtype: 'int32', shape: [1], data: Buffer.from(new Int32Array([7]).buffer) }]);
    expect(encodeValue(Buffer.from('x'), 1024).binary).toEqual(Buffer.from('x'));
  });

  it('keeps a __proto__ key a key in the JSON and in the path', () => {
    const args = JSON.parse('{"__proto__":{"k":null}}') as Record<string, Record<string, unknown>>;
    args['__proto__'].k = new Uint8Array([1]);
    const payload = encodeArgs(args, 1024);
    expect(payload.json?.toString()).toBe('{"__proto__":{"k":null}}');
    expect(payload.blobs?.[0].path).toEqual([{ key: '__proto__' }, { key: 'k' }]);
  });

  it('refuses an NdArray that does not hold together with INVALID_ARGUMENTS naming the path', () => {
    const broken = Object.assign(Object.create(NdArray.prototype) as NdArray, { dtype: 'float32', shape: [3], data: new Float32Array(2) });
    const error = errorOf(() => encodeArgs({ a: { x: broken } }, 1024));
    expect(error?.code).toBe('INVALID_ARGUMENTS');
    expect(error?.details).toEqual({ path: '$.a.x', reason: expect.stringMatching(/has 3 elements, its data has 2/) as unknown });
  });

  it('still refuses what JSON cannot carry, and arrays in JSON-only values (sessions)', () => {
    expect(errorOf(() => encodeArgs({ v: new DataView(new ArrayBuffer(1)) }, 1024))?.details.path).toBe('$.v');
    expect(errorOf(() => encodeArgs({ v: new ArrayBuffer(1) }, 1024))?.message).toMatch(/wrap it in a Uint8Array/);
    expect(errorOf(() => encodeArgs({ x: new Float32Array(1), bad: [NaN] }, 1024))?.details.path).toBe('$.bad[0]');
    const surrogate = errorOf(() => encodeArgs({ ok: { '\uD800': [new Uint8Array(1)] } }, 1024));
    expect(surrogate).toMatchObject({ code: 'SERIALIZATION_ERROR', details: { path: '$.ok["\\ud800"][0]' } });
    const session = errorOf(() => assertJsonSafe({ x: new Float32Array(1) }, '$.set["k"]'));
    expect(session?.code).toBe('SERIALIZATION_ERROR');
    expect(session?.details.path).toBe('$.set["k"].x');
    let deep: unknown = new Float32Array(1);
    for (let i = 0; i <= MAX_JSON_DEPTH + 1; i++) deep = [deep];
    expect(codeOf(() => encodeArgs({ deep }, 1 << 20))).toBe('INVALID_ARGUMENTS');
  });

  it('refuses an array as the whole arguments (only a Buffer may be), and counts blobs toward the limit', () => {
    expect(codeOf(() => encodeArgs(new Float32Array(1), 1024))).toBe('INVALID_ARGUMENTS');
    expect(codeOf(() => encodeArgs(NdArray.from(new Int8Array(1)), 1024))).toBe('INVALID_ARGUMENTS');
    expect(encodeArgs(new Uint8Array([1]), 1024).binary).toEqual(Buffer.from([1]));
    const tooLarge = errorOf(() => encodeArgs({ x: new Float64Array(16) }, 100));
    expect(tooLarge?.code).toBe('PAYLOAD_TOO_LARGE');
    expect(tooLarge?.details).toMatchObject({ option: 'maxPayloadBytes', maxBytes: 100, bytes: 128 + '{"x":null}'.length });
    expect(encodeArgs({ x: new Float64Array(11) }, 98).blobs).toHaveLength(1);
  });
});

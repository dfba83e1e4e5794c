import * as grpc from '@grpc/grpc-js';
import type { Blob, Blob__Output } from '../../apps/sample/src/generated/snakepit/v1/Blob';
import { errorBody, snakepitClient } from '../helpers/grpc-client';
import { startSampleApp, type SampleApp } from '../helpers/sample-app';

jest.setTimeout(90_000);

const key = (name: string) => ({ key: name });
const bytesOf = (data: ArrayBufferView) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);
const float32Of = (blob: Blob__Output) =>
  Array.from(new Float32Array(blob.data.buffer.slice(blob.data.byteOffset, blob.data.byteOffset + blob.data.byteLength)));

/**
 * Arrays and bytes over the sample app's public gRPC API (`blobs` beside the
 * JSON in ExecuteRequest, ExecuteResponse and StreamChunk), black-box: the built
 * app, a grpc-js client, real Python workers with numpy (showcase adapter).
 */
describe('sample app: arrays and bytes over gRPC', () => {
  let app: SampleApp;
  let client: ReturnType<typeof snakepitClient>;

  beforeAll(async () => {
    app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1' });
    client = snakepitClient(app.grpcAddress);
  });

  afterAll(async () => {
    client?.client.close();
    client?.health.close();
    await app?.stop();
  });

  const execute = (tool: string, argsJson: string, blobs: Blob[]) => client.unary('Execute', { tool, argsJson, blobs });
  const refusal = (tool: string, argsJson: string, blobs: Blob[]) =>
    execute(tool, argsJson, blobs).then(
      () => {
        throw new Error('the call should have been refused');
      },
      (error: grpc.ServiceError) => error,
    );

  it('array_sum: a float32 blob at $.x, the JSON leaving x out', async () => {
    const out = await execute('array_sum', '{}', [{ path: [key('x')], dtype: 'float32', shape: [2, 2], data: bytesOf(new Float32Array([1, 2, 3, 4.5])) }]);
    expect(JSON.parse(out.resultJson)).toBe(10.5);
    expect(out.blobs).toEqual([]);
  });

  it('array_scale: an array result comes back as one blob with an empty path, result_json null', async () => {
    const x = new Float32Array([1, -2, 3, -4, 5, -6]);
    const out = await execute('array_scale', '{"x":null,"factor":0.5}', [{ path: [key('x')], dtype: 'float32', shape: [3, 2], data: bytesOf(x) }]);
    expect(out.resultJson).toBe('null');
    expect(out.blobs).toHaveLength(1);
    const [blob] = out.blobs;
    expect([blob.path, blob.dtype, blob.shape]).toEqual([[], 'float32', [3, 2]]);
    expect(float32Of(blob)).toEqual([0.5, -1, 1.5, -2, 2.5, -3]);
  });

  it('an array larger than grpc-js’s 4 MiB default both ways: 6 MiB of float32 in, scaled back out', async () => {
    const x = Float32Array.from({ length: 1536 * 1024 }, (_, i) => (i % 1000) - 500);
    const out = await execute('array_scale', '{"x":null,"factor":2}', [{ path: [key('x')], dtype: 'float32', shape: [x.length], data: bytesOf(x) }]);
    const y = float32Of(out.blobs[0]);
    expect(y.length).toBe(x.length);
    expect(y.every((v, i) => v === x[i] * 2)).toBe(true);
  });

  it('int64 values beyond 2^53 and nested arrays keep their exact bits both ways', async () => {
    const big = new BigInt64Array([2n ** 62n + 1n, -(2n ** 63n)]);
    const out = await execute('echo', '{"value":{"meta":{"n":1},"items":[1,null]}}', [
      { path: [key('value'), key('items'), { index: 1 }], dtype: 'int64', shape: [2], data: bytesOf(big) },
      { path: [key('value'), key('raw')], dtype: 'bytes', shape: [], data: Buffer.from([0, 255]) },
    ]);
    expect(JSON.parse(out.resultJson)).toEqual({ meta: { n: 1 }, items: [1, null], raw: null });
    const byPath = new Map(out.blobs.map((blob) => [JSON.stringify(blob.path.map((s) => (s.segment === 'index' ? s.index : s.key))), blob]));
    const items = byPath.get('["items",1]')!;
    expect([items.dtype, items.shape]).toEqual(['int64', [2]]);
    expect(items.data.equals(bytesOf(big))).toBe(true);
    const raw = byPath.get('["raw"]')!;
    expect([raw.dtype, raw.shape, [...raw.data]]).toEqual(['bytes', [], [0, 255]]);
  });

  it('bytes in and a list of bytes out; one bytes blob with an empty path is the whole arguments', async () => {
    const split = await execute('bytes_split', '{"size":2}', [{ path: [key('data')], dtype: 'bytes', shape: [], data: Buffer.from('hello') }]);
    expect(JSON.parse(split.resultJson)).toEqual([null, null, null]);
    expect(split.blobs.map((blob) => [blob.path[0].index, blob.data.toString()])).toEqual([
      [0, 'he'],
      [1, 'll'],
      [2, 'o'],
    ]);
    const whole = await execute('reverse_bytes', '', [{ path: [], dtype: 'bytes', shape: [], data: Buffer.from([1, 2, 3]) }]);
    expect(whole.resultJson).toBe('null');
    expect([whole.blobs[0].dtype, [...whole.blobs[0].data]]).toEqual(['bytes', [3, 2, 1]]);
  });

  it('streams arrays: each chunk carries its array as a blob', async () => {
    const { messages, error } = await client.serverStream('ExecuteStream', {
      tool: 'array_split',
      argsJson: '{"parts":2}',
      blobs: [{ path: [key('x')], dtype: 'float32', shape: [5], data: bytesOf(new Float32Array([1, 2, 3, 4, 5])) }],
    });
    expect(error).toBeUndefined();
    expect(messages.map((m) => [m.dataJson, m.seq, m.blobs[0].shape])).toEqual([
      ['null', 0, [3]],
      ['null', 1, [2]],
    ]);
    expect(messages.flatMap((m) => float32Of(m.blobs[0]))).toEqual([1, 2, 3, 4, 5]);
  });

  it('an old client (no blobs) works as before', async () => {
    const out = await client.unary('Execute', { tool: 'add', argsJson: '{"a":40,"b":2}' });
    expect(JSON.parse(out.resultJson)).toBe(42);
    expect(out.blobs).toEqual([]);
  });

  describe('bad blobs: INVALID_ARGUMENT naming the blob and its path, the worker kept', () => {
    let pid: number;

    beforeAll(async () => {
      pid = (await app.workers())[0].pid;
    });

    afterEach(async () => {
      expect((await app.workers())[0].pid).toBe(pid);
    });

    it('data that does not fit the shape', async () => {
      const error = await refusal('array_sum', '{}', [{ path: [key('x')], dtype: 'float32', shape: [2, 2], data: Buffer.alloc(4) }]);
      expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(errorBody(error)).toMatchObject({
        code: 'INVALID_ARGUMENTS',
        details: { field: 'blobs', index: 0, path: '$.x', reason: expect.stringMatching(/takes 16 bytes, got 4/) as unknown },
      });
    });

    it('a dtype that does not travel', async () => {
      const error = await refusal('array_sum', '{}', [{ path: [key('x')], dtype: 'float128', shape: [1], data: Buffer.alloc(16) }]);
      expect(errorBody(error)).toMatchObject({ code: 'INVALID_ARGUMENTS', details: { path: '$.x', reason: expect.stringContaining('float128') as unknown } });
    });

    it('a path into a value that is not there, or onto a value that is', async () => {
      const blob = (path: Blob['path']): Blob => ({ path, dtype: 'bytes', shape: [], data: Buffer.from('a') });
      const missing = errorBody(await refusal('echo', '{"value":[1]}', [blob([key('value'), { index: 3 }])]));
      expect(missing.details).toMatchObject({ index: 0, path: '$.value[3]', reason: '$.value has 1 elements' });
      const taken = errorBody(await refusal('echo', '{"value":1}', [blob([key('value')])]));
      expect(taken.details).toMatchObject({ path: '$.value', reason: expect.stringContaining('must hold null') as unknown });
      const empty = errorBody(await refusal('echo', '{"value":1}', [blob([])]));
      expect(empty.details).toMatchObject({ path: '$', reason: expect.stringContaining('whole arguments') as unknown });
    });

    it('a JSON list where the tool declares an ndarray: the tool says to send an array', async () => {
      const error = await refusal('array_sum', '{"x":[1,2]}', []);
      expect(errorBody(error).details.errors).toEqual([expect.objectContaining({ path: '$.x', expected: 'ndarray', got: 'array' })]);
    });
  });
});

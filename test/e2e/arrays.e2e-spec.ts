import { expect } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { embeddedSnakepit } from '../helpers/embedded-snakepit';
import { HostTool, NdArray, PoolService, type NdArrayDtype, type SnakepitErrorBody } from '@snakepit/nestjs';
import { randomBytes } from 'node:crypto';
import { parseSse, startSampleApp, type ExecuteOutcome, type SampleApp, type ToolList } from '../helpers/sample-app';

jest.setTimeout(90_000);

/** The sample app's JSON form of an array (apps/sample/src/api/http-values.ts). */
interface NdArrayJson {
  $ndarray: { dtype: string; shape: number[]; data: string };
}

const ndarrayJson = (dtype: string, shape: number[], data: ArrayBufferView): NdArrayJson => ({
  $ndarray: { dtype, shape, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') },
});

const float32Of = (json: NdArrayJson): number[] => {
  const bytes = Buffer.from(json.$ndarray.data, 'base64');
  return Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
};

/** 6 MB: a 5 MB binary body fits, 7 MB does not. */
const MAX_PAYLOAD_BYTES = 6_000_000;

/**
 * Arrays and bytes as values, black-box: the built sample app over HTTP (its
 * `$ndarray` / `$bytes` JSON and the binary route), real Python workers with
 * numpy (showcase adapter), one worker so "the worker was kept" is one pid.
 */
describe('arrays and bytes through the sample app', () => {
  let app: SampleApp;

  beforeAll(async () => {
    app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1', SNAKEPIT_MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES), BODY_LIMIT_BYTES: String(8 * 1024 * 1024) });
  });

  afterAll(async () => {
    await app?.stop();
  });

  const workerPid = async (): Promise<number> => (await app.workers())[0].pid;

  it('sums a float32 array sent as $ndarray', async () => {
    const { status, body } = await app.execute<ExecuteOutcome>('array_sum', { x: ndarrayJson('float32', [4], new Float32Array([1, 2, 3, 4.5])) });
    expect(status).toBe(200);
    expect(body.result).toBe(10.5);
  });

  it('scales a 700×700 float64 matrix (3.9 MB, its base64 5.2 MB) both ways: large $ndarray data is read and written whole', async () => {
    const x = Float64Array.from({ length: 700 * 700 }, (_, i) => (i % 7) - 3);
    const { status, body } = await app.execute<ExecuteOutcome>('array_scale', { x: ndarrayJson('float64', [700, 700], x), factor: 2 });
    expect(status).toBe(200);
    const { $ndarray: out } = body.result as NdArrayJson;
    expect([out.dtype, out.shape]).toEqual(['float64', [700, 700]]);
    const y = new Float64Array(new Uint8Array(Buffer.from(out.data, 'base64')).buffer);
    expect(y.every((v, i) => v === x[i] * 2)).toBe(true);
  });

  it('scales an array: the result comes back as $ndarray with its dtype, shape and values', async () => {
    const x = new Float32Array([1, -2, 3, -4, 5, -6]);
    const { status, body } = await app.execute<ExecuteOutcome>('array_scale', { x: ndarrayJson('float32', [2, 3], x), factor: 0.5 });
    expect(status).toBe(200);
    const result = body.result as NdArrayJson;
    expect(result.$ndarray.dtype).toBe('float32');
    expect(result.$ndarray.shape).toEqual([2, 3]);
    expect(float32Of(result)).toEqual([0.5, -1, 1.5, -2, 2.5, -3]);
  });

  it('streams arrays as server-sent events, each chunk an $ndarray', async () => {
    const response = await fetch(`${app.baseUrl}/api/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tool: 'array_split', args: { x: ndarrayJson('float32', [5], new Float32Array([1, 2, 3, 4, 5])), parts: 2 } }),
    });
    expect(response.status).toBe(200);
    const events = parseSse(await response.text());
    const chunks = events.filter((e) => e.event === 'message').map((e) => e.data as NdArrayJson);
    expect(chunks.map((c) => c.$ndarray.shape)).toEqual([[3], [2]]);
    expect(chunks.flatMap(float32Of)).toEqual([1, 2, 3, 4, 5]);
    expect(events.at(-1)?.event).toBe('end');
  });

  it('takes bytes nested in args and answers bytes nested in results as $bytes', async () => {
    const { status, body } = await app.execute<ExecuteOutcome>('bytes_split', { data: { $bytes: Buffer.from('hello').toString('base64') }, size: 2 });
    expect(status).toBe(200);
    expect((body.result as Array<{ $bytes: string }>).map((part) => Buffer.from(part.$bytes, 'base64').toString())).toEqual(['he', 'll', 'o']);
    const echoed = await app.execute<ExecuteOutcome>('echo', { value: { deep: [{ $bytes: 'AP8=' }, 1] } });
    expect(echoed.body.result).toEqual({ deep: [{ $bytes: 'AP8=' }, 1] });
  });

  it('lists an np.ndarray parameter as type "ndarray"', async () => {
    const tools = (await app.request<ToolList>('GET', '/api/tools')).body.pools[0].tools;
    expect(tools.find((tool) => tool.name === 'array_sum')?.parameters).toEqual([expect.objectContaining({ name: 'x', type: 'ndarray', required: true })]);
  });

  it('runs the binary route on a 5 MB body: octet-stream in, the bytes result streamed back', async () => {
    const body = randomBytes(5_000_000);
    const response = await fetch(`${app.baseUrl}/api/execute/reverse_bytes/binary`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/octet-stream');
    const answer = Buffer.from(await response.arrayBuffer());
    expect(answer.equals(Buffer.from(body).reverse())).toBe(true);
  });

  describe('bad input: a structured error, the worker kept', () => {
    let pid: number;

    beforeAll(async () => {
      pid = await workerPid();
    });

    afterEach(async () => {
      expect(await workerPid()).toBe(pid);
      expect((await app.execute<ExecuteOutcome>('ping')).body.result).toBe('pong');
    });

    it('a dtype that does not travel', async () => {
      const { status, body } = await app.execute<SnakepitErrorBody>('array_sum', { x: ndarrayJson('float128', [1], new Float64Array(2)) });
      expect(status).toBe(400);
      expect(body.error).toMatchObject({ code: 'INVALID_ARGUMENTS', details: { path: '$.x', reason: expect.stringContaining('float128') } });
    });

    it('a JSON list for an ndarray parameter', async () => {
      const { status, body } = await app.execute<SnakepitErrorBody>('array_sum', { x: [1, 2, 3] });
      expect(status).toBe(400);
      expect(body.error.code).toBe('INVALID_ARGUMENTS');
      expect(body.error.details.errors).toEqual([expect.objectContaining({ path: '$.x', expected: 'ndarray', got: 'array' })]);
    });

    it('data whose length does not fit the shape', async () => {
      const { status, body } = await app.execute<SnakepitErrorBody>('array_sum', { x: { $ndarray: { dtype: 'float32', shape: [2, 2], data: 'AAAAAA==' } } });
      expect(status).toBe(400);
      expect(body.error).toMatchObject({ code: 'INVALID_ARGUMENTS', details: { path: '$.x', reason: expect.stringMatching(/takes 16 bytes, got 4/) } });
    });

    it('data that is not base64, and an $ndarray without its fields', async () => {
      for (const data of ['AA!A', 'AAA', 'A=AA', 'AAAA='.repeat(2)]) {
        const notBase64 = await app.execute<SnakepitErrorBody>('array_sum', { x: { $ndarray: { dtype: 'float32', shape: [1], data } } });
        expect(notBase64.body.error).toMatchObject({ code: 'INVALID_ARGUMENTS', details: { path: '$.x' } });
      }
      const noShape = await app.execute<SnakepitErrorBody>('echo', { value: [{ $ndarray: { dtype: 'float32', data: '' } }] });
      expect(noShape.body.error).toMatchObject({ code: 'INVALID_ARGUMENTS', details: { path: '$.value[0]' } });
    });

    it('a binary body over maxPayloadBytes: the error names the option', async () => {
      const response = await fetch(`${app.baseUrl}/api/execute/reverse_bytes/binary`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: Buffer.alloc(MAX_PAYLOAD_BYTES + 1_000_000),
      });
      expect(response.status).toBe(413);
      const { error } = (await response.json()) as SnakepitErrorBody;
      expect(error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { option: 'maxPayloadBytes', maxBytes: MAX_PAYLOAD_BYTES } });
      expect(error.message).toContain('maxPayloadBytes');
    });

    it('a tool without a bytes parameter on the binary route, and octet-stream on a JSON route', async () => {
      const noBytes = await fetch(`${app.baseUrl}/api/execute/add/binary`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: Buffer.from('x'),
      });
      expect(noBytes.status).toBe(400);
      expect(((await noBytes.json()) as SnakepitErrorBody).error).toMatchObject({
        code: 'INVALID_ARGUMENTS',
        message: expect.stringContaining('no bytes parameter'),
      });
      const jsonRoute = await fetch(`${app.baseUrl}/api/execute`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: Buffer.from('x'),
      });
      expect(jsonRoute.status).toBe(400);
      expect(((await jsonRoute.json()) as SnakepitErrorBody).error.message).toContain('/binary');
    });
  });
});

describe('the binary route: its own body limit', () => {
  let app: SampleApp;

  beforeAll(async () => {
    app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1', BINARY_BODY_LIMIT_BYTES: '4096' });
  });

  afterAll(async () => {
    await app?.stop();
  });

  it('refuses a body over BINARY_BODY_LIMIT_BYTES, naming it, whether its length is declared or not', async () => {
    const declared = await fetch(`${app.baseUrl}/api/execute/reverse_bytes/binary`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(4097),
    });
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as SnakepitErrorBody).error).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      details: { option: 'BINARY_BODY_LIMIT_BYTES', limitBytes: 4096 },
    });
    // A chunked body (no content-length) is counted as it arrives.
    const chunked = await fetch(`${app.baseUrl}/api/execute/reverse_bytes/binary`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: new Blob([Buffer.alloc(3000), Buffer.alloc(3000)]).stream(),
      duplex: 'half',
    });
    expect(chunked.status).toBe(413);
    const ok = await fetch(`${app.baseUrl}/api/execute/reverse_bytes/binary`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(4096, 1),
    });
    expect(ok.status).toBe(200);
    expect((await ok.arrayBuffer()).byteLength).toBe(4096);
  });
});

@Injectable()
class ArrayHostTools {
  /** Called from Python through the showcase's call_host tool: arrays and bytes come in as NdArray and Buffer, and go back. */
  @HostTool('scale_on_host', { parameters: [{ name: 'x', type: 'any', required: true }] })
  scaleOnHost({ x, raw }: { x: NdArray<'float32'>; raw: Buffer }): unknown {
    return {
      y: NdArray.from(
        x.data.map((v) => v * 10),
        [...x.shape],
      ),
      kind: x.constructor.name,
      raw: Buffer.concat([raw, raw]),
      rawIsBuffer: Buffer.isBuffer(raw),
    };
  }
}

/** The same values seen from an embedding app: PoolService with NdArray, TypedArrays and Buffers. */
describe('arrays and bytes in process', () => {
  let moduleRef: TestingModule;
  let pools: PoolService;

  beforeAll(async () => {
    moduleRef = await embeddedSnakepit(
      'arrays-e2e',
      [{ name: 'default', size: 1, adapter: 'snakepit_bridge.examples.showcase:ShowcaseAdapter', maxPayloadBytes: 1024 * 1024 }],
      [ArrayHostTools],
    );
    pools = moduleRef.get(PoolService);
  });

  afterAll(async () => {
    await moduleRef?.close();
  });

  const workerPid = (): number => pools.poolInfo()[0].workers[0].pid;

  it('sums a Float32Array and scales an NdArray: dtype, shape and values intact', async () => {
    expect((await pools.execute('array_sum', { x: new Float32Array([0.5, 1.5, 2]) })).result).toBe(4);
    const x = NdArray.from(new Float32Array([1, 2, 3, 4, 5, 6]), [3, 2]);
    const { result } = await pools.execute<NdArray<'float32'>>('array_scale', { x, factor: 2 });
    expect(result).toBeInstanceOf(NdArray);
    expect([result.dtype, result.shape, Array.from(result.data)]).toEqual(['float32', [3, 2], [2, 4, 6, 8, 10, 12]]);
    expect(result.data).toBeInstanceOf(Float32Array);
  });

  it('round-trips every dtype through numpy unchanged, nested in a value', async () => {
    const float16 = new Uint16Array([0x3c00, 0xc000]); // 1.0, -2.0 as half-precision bits
    const arrays: Record<NdArrayDtype, NdArray> = {
      bool: new NdArray('bool', [2], new Uint8Array([1, 0])),
      int8: NdArray.from(new Int8Array([-128, 127])),
      int16: NdArray.from(new Int16Array([-32768, 32767])),
      int32: NdArray.from(new Int32Array([-(2 ** 31), 2 ** 31 - 1])),
      int64: NdArray.from(new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n])),
      uint8: NdArray.from(new Uint8Array([0, 255])),
      uint16: NdArray.from(new Uint16Array([0, 65535])),
      uint32: NdArray.from(new Uint32Array([0, 2 ** 32 - 1])),
      uint64: NdArray.from(new BigUint64Array([0n, 2n ** 64n - 1n])),
      float16: new NdArray('float16', [2], float16),
      float32: NdArray.from(new Float32Array([1.5, -0]), [2, 1]),
      float64: NdArray.from(new Float64Array([Math.PI, -1e300])),
      complex64: new NdArray('complex64', [1], new Float32Array([1, -2])),
      complex128: new NdArray('complex128', [], new Float64Array([0.25, 4])),
    };
    const { result } = await pools.execute<{ nested: Array<Record<NdArrayDtype, NdArray>> }>('echo', { value: { nested: [arrays] } });
    const back = result.nested[0];
    for (const [dtype, sent] of Object.entries(arrays)) {
      const got = back[dtype as NdArrayDtype];
      expect([dtype, got.dtype, got.shape]).toEqual([dtype, sent.dtype, sent.shape]);
      expect(got.bytes.equals(sent.bytes)).toBe(true);
    }
  });

  it('streams an array in parts, each chunk an NdArray', async () => {
    const parts: NdArray[] = [];
    for await (const chunk of pools.stream<NdArray<'int32'>>('array_split', { x: NdArray.from(new Int32Array([1, 2, 3, 4, 5, 6, 7]), [7]), parts: 3 })) {
      parts.push(chunk.data);
    }
    expect(parts.map((p) => p.shape)).toEqual([[3], [2], [2]]);
    expect(parts.flatMap((p) => Array.from(p.data as Int32Array))).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('carries bytes nested in args and results as Buffers, and a Buffer as the whole args as before', async () => {
    const { result } = await pools.execute<Buffer[]>('bytes_split', { data: Buffer.from('abcde'), size: 2 });
    expect(result.map((part) => part.toString())).toEqual(['ab', 'cd', 'e']);
    expect(result.every((part) => Buffer.isBuffer(part))).toBe(true);
    const whole = await pools.execute<Buffer>('reverse_bytes', Buffer.from([1, 2, 3]));
    expect(whole.result).toEqual(Buffer.from([3, 2, 1]));
  });

  it('hands arrays and bytes to a host tool and back: NdArray and Buffer on both sides', async () => {
    const { result } = await pools.execute<{ y: NdArray<'float32'>; kind: string; raw: Buffer; rawIsBuffer: boolean }>('call_host', {
      name: 'scale_on_host',
      args: { x: new Float32Array([1, 2]), raw: Buffer.from('ab') },
    });
    expect(result.kind).toBe('NdArray');
    expect(result.rawIsBuffer).toBe(true);
    expect([result.y.dtype, Array.from(result.y.data)]).toEqual(['float32', [10, 20]]);
    expect(result.raw.toString()).toBe('abab');
  });

  describe('bad input: a structured error, the worker kept', () => {
    let pid: number;

    beforeAll(() => {
      pid = workerPid();
    });

    afterEach(async () => {
      expect(workerPid()).toBe(pid);
      expect((await pools.execute('ping')).pid).toBe(pid);
    });

    it('a dtype that does not travel, and data that does not fit the shape, are refused as the NdArray is made', () => {
      expect(() => new NdArray('float128' as 'float64', [1], new Float64Array(1))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENTS' }));
      expect(() => NdArray.from(new Float32Array(3), [2, 2])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENTS' }));
    });

    it('an NdArray altered after it was made is refused at the call, naming its path', async () => {
      const altered = NdArray.from(new Float32Array(4), [4]);
      (altered as unknown as { data: Float32Array }).data = new Float32Array(3);
      await expect(pools.execute('array_sum', { x: altered })).rejects.toMatchObject({ code: 'INVALID_ARGUMENTS', details: { path: '$.x' } });
    });

    it('a JSON list for an ndarray parameter', async () => {
      await expect(pools.execute('array_sum', { x: [1, 2] })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENTS',
        details: { errors: [expect.objectContaining({ path: '$.x', expected: 'ndarray' })] },
      });
    });

    it('an array where a number is declared', async () => {
      await expect(pools.execute('array_scale', { x: new Float32Array(1), factor: new Float32Array(1) })).rejects.toMatchObject({ code: 'INVALID_ARGUMENTS' });
    });

    it('arrays over maxPayloadBytes: the error names the option', async () => {
      await expect(pools.execute('array_sum', { x: new Float64Array(200_000) })).rejects.toMatchObject({
        code: 'PAYLOAD_TOO_LARGE',
        details: { option: 'maxPayloadBytes', maxBytes: 1024 * 1024 },
      });
    });
  });
});

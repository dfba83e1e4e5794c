import { NdArray } from '../../bridge/ndarray';
import { encodeValue } from './wire-values';

describe('forwarded values', () => {
  it('carry arrays and nested bytes as blobs beside the JSON, as the worker bridge does (not as JSON text)', () => {
    const array = NdArray.from(new Float32Array([1.5, 2, 3, 4, 5, 6]), [2, 3]);
    const payload = encodeValue({ scaled: array, raw: Buffer.from('abc'), n: 1 });
    expect(JSON.parse(payload.json!.toString())).toEqual({ scaled: null, raw: null, n: 1 });
    expect(payload.blobs?.map((blob) => [blob.path, blob.dtype, blob.shape])).toEqual([
      [[{ key: 'scaled' }], 'float32', [2, 3]],
      [[{ key: 'raw' }], 'bytes', []],
    ]);
    expect(encodeValue(Buffer.from('whole'))).toEqual({ binary: Buffer.from('whole') });
  });
});

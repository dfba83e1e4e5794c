import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { HostTool, NdArray, PoolService, type SnakepitError } from '@snakepit/nestjs';
import { embeddedSnakepit } from '../helpers/embedded-snakepit';

jest.setTimeout(60_000);

@Injectable()
class MatrixHostTools {
  /** Declares a 2-d float32 array and bytes: the registry checks both before this runs. */
  @HostTool('row_sums', {
    parameters: [
      { name: 'matrix', type: 'ndarray', dtype: 'float32', ndim: 2, required: true },
      { name: 'tag', type: 'binary', required: true },
    ],
  })
  rowSums({ matrix, tag }: { matrix: NdArray<'float32'>; tag: Buffer }): { sums: NdArray<'float32'>; tag: Buffer } {
    const [rows, columns] = matrix.shape;
    const sums = new Float32Array(rows);
    for (let r = 0; r < rows; r++) for (let c = 0; c < columns; c++) sums[r] += matrix.data[r * columns + c];
    return { sums: NdArray.from(sums), tag: Buffer.concat([tag, Buffer.from('!')]) };
  }
}

/** Host tools with ndarray and binary parameters, called from real Python workers (showcase's call_host / host_failure). */
describe('host tools: ndarray and binary parameters', () => {
  let moduleRef: TestingModule;
  let pools: PoolService;

  beforeAll(async () => {
    moduleRef = await embeddedSnakepit(
      'host-tool-arrays',
      [{ name: 'default', size: 1, adapter: 'snakepit_bridge.examples.showcase:ShowcaseAdapter' }],
      [MatrixHostTools],
    );
    pools = moduleRef.get(PoolService);
  });

  afterAll(async () => {
    await moduleRef?.close();
  });

  it('a numpy array and bytes from Python arrive as the declared NdArray and a Buffer; the answer goes back as arrays', async () => {
    const matrix = NdArray.from(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    const { result } = await pools.execute<{ sums: NdArray<'float32'>; tag: Buffer }>('call_host', {
      name: 'row_sums',
      args: { matrix, tag: Buffer.from('m') },
    });
    expect([result.sums.dtype, Array.from(result.sums.data)]).toEqual(['float32', [6, 15]]);
    expect(result.tag.toString()).toBe('m!');
  });

  it('another dtype, another ndim, a list or a string: refused before the method runs, INVALID_ARGUMENTS in Python', async () => {
    const code = async (args: Record<string, unknown>) =>
      (await pools.execute<{ ok: boolean; code: string }>('host_failure', { name: 'row_sums', args })).result;
    expect(await code({ matrix: NdArray.from(new Int32Array(4), [2, 2]), tag: Buffer.from('m') })).toMatchObject({ ok: false, code: 'INVALID_ARGUMENTS' });
    expect(await code({ matrix: new Float32Array(4), tag: Buffer.from('m') })).toMatchObject({ ok: false, code: 'INVALID_ARGUMENTS' });
    expect(await code({ matrix: [[1, 2]], tag: 'm' })).toMatchObject({ ok: false, code: 'INVALID_ARGUMENTS' });
    const error = (await pools
      .execute('call_host', { name: 'row_sums', args: { matrix: NdArray.from(new Float64Array(4), [2, 2]), tag: Buffer.from('m') } })
      .catch((e: unknown) => e)) as SnakepitError;
    expect(error.code).toBe('PYTHON_EXCEPTION');
    expect(error.message).toContain('$.matrix must be an array of dtype float32, got float64');
  });
});

import type { TestingModule } from '@nestjs/testing';
import { embeddedSnakepit } from '../helpers/embedded-snakepit';
import { PoolService, TelemetryService, type SnakepitError } from '@snakepit/nestjs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/sample-app';

jest.setTimeout(60_000);

const recipe = (name: string) => join(REPO_ROOT, 'docs', 'cookbook', name);

/**
 * The cookbook recipes, run as a user would embed them: SnakepitModule in a
 * Nest module of their own, real Python workers, the recipe's adapter.
 */
describe('cookbook recipes', () => {
  let moduleRef: TestingModule;
  let pools: PoolService;

  beforeAll(async () => {
    moduleRef = await embeddedSnakepit('cookbook', [
      { name: 'models', size: 1, profile: 'thread', threadsPerWorker: 4, adapter: 'model_adapter:ModelAdapter', env: { PYTHONPATH: recipe('model-serving') } },
      { name: 'reports', size: 2, adapter: 'reports_adapter:ReportsAdapter', env: { PYTHONPATH: recipe('pandas-reports') } },
    ]);
    pools = moduleRef.get(PoolService);
  });

  afterAll(async () => {
    await moduleRef?.close();
  });

  it('model serving: loaded once per worker, predictions served concurrently on threads', async () => {
    const slots: string[] = [];
    const subscription = moduleRef
      .get(TelemetryService)
      .on('pool.checkout', 'pool.checkin')
      .subscribe((event) => slots.push(`${event.name}:${event.data.pool}`));
    const predictions = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        pools.execute<number[]>(
          'predict',
          {
            rows: [
              [i, 0],
              [0, i],
            ],
          },
          { pool: 'models' },
        ),
      ),
    );
    subscription.unsubscribe();
    predictions.forEach(({ result }, i) => {
      expect(result[0]).toBeCloseTo(3 * i + 1, 4);
      expect(result[1]).toBeCloseTo(-2 * i + 1, 4);
    });
    // Every call took a slot and gave it back.
    expect(slots.filter((s) => s === 'pool.checkout:models')).toHaveLength(8);
    expect(slots.filter((s) => s === 'pool.checkin:models')).toHaveLength(8);
    const infos = await Promise.all(
      [1, 2, 3].map(() => pools.execute<{ pid: number; loaded_at: number; coef: number[] }>('model_info', {}, { pool: 'models' })),
    );
    expect(new Set(infos.map((info) => `${info.result.pid}:${info.result.loaded_at}`)).size).toBe(1);
    expect(infos[0].result.coef.map((c) => Math.round(c))).toEqual([3, -2, 1]);
  });

  it('pandas reports: aggregates in process pools, numpy scalars arrive as numbers', async () => {
    const records = [
      { city: 'Oslo', sales: 10 },
      { city: 'Lima', sales: 4 },
      { city: 'Oslo', sales: 30 },
    ];
    const { result } = await pools.execute('summarize', { records, by: 'city', value: 'sales' }, { pool: 'reports' });
    expect(result).toEqual([
      { city: 'Lima', count: 1, sum: 4, mean: 4 },
      { city: 'Oslo', count: 2, sum: 40, mean: 20 },
    ]);
    const error = (await pools.execute('summarize', { records, by: 'country', value: 'sales' }, { pool: 'reports' }).catch((e: unknown) => e)) as SnakepitError;
    expect(error.code).toBe('INVALID_ARGUMENTS');
    expect(error.details.columns).toEqual(['city', 'sales']);
  });
});

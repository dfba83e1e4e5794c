import { Injectable } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { NdArray } from '../bridge/ndarray';
import { SnakepitError } from '../errors/snakepit-error';
import { MAX_TIMER_MS, type ResolvedOptions } from '../options/resolve-options';
import { SNAKEPIT_RESOLVED_OPTIONS } from '../options/tokens';
import { HostTool, type HostToolContext, type HostToolParameter } from './host-tool.decorator';
import { HostToolRegistry, type HostToolInvocation } from './host-tool.registry';

const THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000;

@Injectable()
class Tools {
  /** Answers after 20 ms, so a budget timer that Node runs after 1 ms would win the race. */
  @HostTool('later')
  later(args: { value: string }): Promise<string> {
    return new Promise((resolve) => setTimeout(() => resolve(args.value), 20));
  }

  /** Never answers until aborted. */
  @HostTool('hang')
  hang(_args: unknown, context: HostToolContext): Promise<never> {
    return new Promise((_, reject) => context.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
  }
}

describe('HostToolRegistry time budgets', () => {
  let registry: HostToolRegistry;

  beforeAll(async () => {
    const module = await Test.createTestingModule({
      imports: [DiscoveryModule],
      providers: [Tools, HostToolRegistry, { provide: SNAKEPIT_RESOLVED_OPTIONS, useValue: { maxHostCallDepth: 4 } as ResolvedOptions }],
    }).compile();
    await module.init();
    registry = module.get(HostToolRegistry);
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  const invocation = (tool: string, timeoutMs: number): HostToolInvocation => ({
    tool,
    args: { value: 'done' },
    timeoutMs,
    context: { pool: 'default', workerId: 'default-1', depth: 1 },
    signal: new AbortController().signal,
  });

  it('a budget beyond what a Node timer can wait does not time out at once', async () => {
    // Unclamped, Node would run this 30-day timer after 1 ms, before the tool's 20 ms answer.
    await expect(registry.invoke(invocation('later', THIRTY_DAYS_MS))).resolves.toBe('done');
  });

  it('such a budget is clamped to MAX_TIMER_MS and says so when it runs out', async () => {
    jest.useFakeTimers();
    const outcome = registry.invoke(invocation('hang', THIRTY_DAYS_MS)).catch((error: unknown) => error);
    await jest.advanceTimersByTimeAsync(MAX_TIMER_MS - 1);
    await jest.advanceTimersByTimeAsync(1);
    const error = (await outcome) as SnakepitError;
    expect(error).toBeInstanceOf(SnakepitError);
    expect(error.code).toBe('TIMEOUT');
    expect(error.details).toEqual({ tool: 'hang', timeoutMs: MAX_TIMER_MS });
    expect(error.message).toBe(`Host tool hang did not finish within ${MAX_TIMER_MS} ms`);
  });

  it('a budget within the limit is kept as it is', async () => {
    await expect(registry.invoke(invocation('hang', 30))).rejects.toMatchObject({ code: 'TIMEOUT', details: { tool: 'hang', timeoutMs: 30 } });
  });
});

@Injectable()
class ArrayTools {
  @HostTool('embed', {
    description: 'Scales an image and keeps a label',
    parameters: [
      { name: 'image', type: 'ndarray', dtype: 'uint8', ndim: 3, required: true },
      { name: 'weights', type: 'ndarray' },
      { name: 'raw', type: 'binary' },
      { name: 'label', type: 'string' },
      { name: 'count', type: 'integer' },
    ],
  })
  embed(args: { image: NdArray<'uint8'>; raw?: Buffer }): { shape: readonly number[]; raw: number } {
    return { shape: args.image.shape, raw: args.raw?.length ?? -1 };
  }
}

describe('HostToolRegistry parameters: ndarray and binary', () => {
  let registry: HostToolRegistry;

  beforeAll(async () => {
    const module = await Test.createTestingModule({
      imports: [DiscoveryModule],
      providers: [ArrayTools, HostToolRegistry, { provide: SNAKEPIT_RESOLVED_OPTIONS, useValue: { maxHostCallDepth: 4 } as ResolvedOptions }],
    }).compile();
    await module.init();
    registry = module.get(HostToolRegistry);
  });

  const call = (args: Record<string, unknown>) =>
    registry.invoke({
      tool: 'embed',
      args,
      timeoutMs: 5_000,
      context: { pool: 'default', workerId: 'default-1', depth: 1 },
      signal: new AbortController().signal,
    });
  const image = NdArray.from(new Uint8Array(12), [2, 2, 3]);
  const refusal = async (args: Record<string, unknown>): Promise<SnakepitError> => {
    const error = (await call(args).catch((e: unknown) => e)) as SnakepitError;
    expect(error).toBeInstanceOf(SnakepitError);
    expect(error.code).toBe('INVALID_ARGUMENTS');
    expect(error.details.tool).toBe('embed');
    return error;
  };

  it('tells workers the types, with the dtype and ndim of ndarray parameters', () => {
    const [spec] = registry.specs();
    expect(spec.parameters?.map(({ name, type, dtype, ndim, required }) => ({ name, type, dtype, ndim, required }))).toEqual([
      { name: 'image', type: 'ndarray', dtype: 'uint8', ndim: 3, required: true },
      { name: 'weights', type: 'ndarray', dtype: '', ndim: 0, required: false },
      { name: 'raw', type: 'binary', dtype: '', ndim: 0, required: false },
      { name: 'label', type: 'string', dtype: '', ndim: 0, required: false },
      { name: 'count', type: 'integer', dtype: '', ndim: 0, required: false },
    ]);
  });

  it('runs the method with an NdArray of the declared dtype and ndim, any array for a bare ndarray, and a Buffer or Uint8Array for binary', async () => {
    await expect(call({ image, weights: new Float64Array(2), raw: Buffer.from('abc') })).resolves.toEqual({ shape: [2, 2, 3], raw: 3 });
    await expect(call({ image, weights: NdArray.from(new Int16Array(4), [2, 2]), raw: new Uint8Array(5) })).resolves.toEqual({ shape: [2, 2, 3], raw: 5 });
    // Not required: absent or null is fine; undeclared arguments pass through.
    await expect(call({ image, weights: null, extra: [1] })).resolves.toEqual({ shape: [2, 2, 3], raw: -1 });
  });

  it('refuses an array of another dtype or ndim, naming the parameter and what was expected', async () => {
    const error = await refusal({ image: NdArray.from(new Float32Array(12), [2, 2, 3]) });
    expect(error.details.errors).toEqual([{ path: '$.image', problem: 'wrong_dtype', expected: 'uint8', got: 'float32' }]);
    expect(error.message).toBe('invalid arguments for host tool embed: $.image must be an array of dtype uint8, got float32');
    const flat = await refusal({ image: NdArray.from(new Uint8Array(12)) });
    expect(flat.details.errors).toEqual([{ path: '$.image', problem: 'wrong_ndim', expected: '3-d', got: '1-d' }]);
  });

  it('refuses a list, a number or bytes where an ndarray is declared, and an array or a string where binary is', async () => {
    const error = await refusal({ image: [[1, 2, 3]], weights: 2.5, raw: NdArray.from(new Uint8Array(2)), label: 7 });
    expect(error.details.errors).toEqual([
      expect.objectContaining({
        path: '$.image',
        problem: 'wrong_type',
        expected: 'ndarray[uint8, 3-d]',
        got: 'array',
      }),
      expect.objectContaining({ path: '$.weights', problem: 'wrong_type', expected: 'ndarray', got: 'number' }),
      { path: '$.raw', problem: 'wrong_type', expected: 'binary', got: 'ndarray[uint8]' },
      { path: '$.label', problem: 'wrong_type', expected: 'string', got: 'integer' },
    ]);
    expect((error.details.errors as Array<{ hint?: string }>)[0].hint).toContain('NdArray');
    expect(error.details.parameters).toEqual(['image', 'weights', 'raw', 'label', 'count']);
    expect(error.message).toContain('(and 1 more)');
    const bytes = await refusal({ image: Buffer.alloc(12), raw: 'abc' });
    expect(bytes.details.errors).toEqual([
      expect.objectContaining({ path: '$.image', problem: 'wrong_type', got: 'binary' }),
      { path: '$.raw', problem: 'wrong_type', expected: 'binary', got: 'string' },
    ]);
  });

  it('refuses a missing required array and a non-integer count', async () => {
    const error = await refusal({ count: 1.5 });
    expect(error.details.errors).toEqual([
      { path: '$.image', problem: 'missing', expected: 'ndarray[uint8, 3-d]' },
      { path: '$.count', problem: 'wrong_type', expected: 'integer', got: 'number' },
    ]);
  });
});

describe('HostToolRegistry refuses parameters that cannot be checked, at start', () => {
  const start = async (parameters: HostToolParameter[]) => {
    @Injectable()
    class Declared {
      @HostTool('declared', { parameters })
      declared(): null {
        return null;
      }
    }
    const module = await Test.createTestingModule({
      imports: [DiscoveryModule],
      providers: [Declared, HostToolRegistry, { provide: SNAKEPIT_RESOLVED_OPTIONS, useValue: { maxHostCallDepth: 4 } as ResolvedOptions }],
    }).compile();
    return module.init();
  };

  it('a dtype that does not travel, a dtype or ndim on a non-array parameter, a bad ndim', async () => {
    await expect(start([{ name: 'x', type: 'ndarray', dtype: 'float128' as 'float64' }])).rejects.toThrow('x declares dtype "float128", not one that travels');
    await expect(start([{ name: 'x', type: 'binary', dtype: 'uint8' }])).rejects.toThrow('dtype is for "ndarray" parameters, x is "binary"');
    await expect(start([{ name: 'x', type: 'string', ndim: 2 }])).rejects.toThrow('ndim is for "ndarray" parameters');
    await expect(start([{ name: 'x', type: 'ndarray', ndim: 0 }])).rejects.toThrow('declares ndim 0');
    await expect(start([{ name: 'x', type: 'ndarray', dtype: 'float32', ndim: 2 }])).resolves.toBeDefined();
  });
});

import { Injectable } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { SnakepitError } from '../errors/snakepit-error';
import { MAX_TIMER_MS, type ResolvedOptions } from '../options/resolve-options';
import { SNAKEPIT_RESOLVED_OPTIONS } from '../options/tokens';
import { HostTool, type HostToolContext } from './host-tool.decorator';
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

import { expect } from '@jest/globals';
import { resolveTimeout } from '../pool/pool.service';
import { MAX_TIMER_MS, resolveOptions, SnakepitConfigError } from './resolve-options';

const python = process.execPath; // any executable file will do for validation

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof SnakepitConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('resolveOptions', () => {
  it('applies defaults and resolves the interpreter', () => {
    const resolved = resolveOptions({ python, pools: [{ name: 'default', size: 2, adapter: 'pkg.mod:Adapter' }] });
    expect(resolved.pools[0]).toMatchObject({
      name: 'default',
      size: 2,
      profile: 'process',
      capacityPerWorker: 1,
      timeoutMs: 30_000,
      maxQueueSize: 1000,
      python,
    });
    const threaded = resolveOptions({ python, pools: [{ name: 't', size: 1, adapter: 'a:B', profile: 'thread', threadsPerWorker: 8 }] });
    expect(threaded.pools[0].capacityPerWorker).toBe(8);
    expect(resolved.transport).toBe('unix');
    expect(resolved.inheritEnv).toContain('PATH');
  });

  it('lists every problem at once', () => {
    const problems = problemsOf(() =>
      resolveOptions({
        python: '/nonexistent/python3',
        pools: [
          { name: 'bad name!', size: 0, adapter: '' },
          { name: 'ok', size: 1.5, adapter: 'no-colon' },
        ],
      }),
    );
    expect(problems.join('\n')).toMatch(/name must match/);
    expect(problems.join('\n')).toMatch(/size must be an integer/);
    expect(problems.join('\n')).toMatch(/adapter is missing/);
    expect(problems.join('\n')).toMatch(/must look like "package.module:Class"/);
    expect(problems.join('\n')).toMatch(/python executable not found: "\/nonexistent\/python3"/);
  });

  it('refuses an option it does not know, instead of ignoring it', () => {
    const problems = problemsOf(() => resolveOptions({ python, pools: [{ name: 'p', size: 1, adapter: 'a:B', capacityPerWorker: 4 } as never] }));
    expect(problems).toEqual([expect.stringMatching(/^pools\[0\] \(p\)\.capacityPerWorker is not a pool option/)]);
  });

  it('refuses an empty pool list and duplicate names', () => {
    expect(problemsOf(() => resolveOptions({ pools: [] }))[0]).toMatch(/at least one pool/);
    const problems = problemsOf(() => resolveOptions({ python, pools: [1, 2].map(() => ({ name: 'same', size: 1, adapter: 'a:B' })) }));
    expect(problems).toEqual(['pools[1] (same).name is used by another pool']);
  });
});

const pool = { name: 'p', size: 1, adapter: 'a:B' };

/** Node runs a timer longer than 2^31-1 ms after 1 ms: no budget may ask for one. */
describe('time budgets within what a Node timer can wait', () => {
  const poolFields = [
    'timeoutMs',
    'maxTimeoutMs',
    'queueTimeoutMs',
    'cancelGraceMs',
    'startTimeoutMs',
    'restartBackoffMs',
    'maxRestartBackoffMs',
    'heartbeatIntervalMs',
    'heartbeatTimeoutMs',
    'crashLoopWindowMs',
    'crashLoopCooldownMs',
    'lifecycleCheckIntervalMs',
  ] as const;

  it('MAX_TIMER_MS is the longest delay Node keeps', () => {
    expect(MAX_TIMER_MS).toBe(2 ** 31 - 1);
  });

  it.each(poolFields)('pool option %s above MAX_TIMER_MS is refused with the reason', (field) => {
    expect(problemsOf(() => resolveOptions({ python, pools: [{ ...pool, [field]: MAX_TIMER_MS + 1 }] }))).toEqual([
      `pools[0] (p).${field} must be an integer between 1 and ${MAX_TIMER_MS} ms (about 24.8 days: a Node timer cannot wait longer) (got ${MAX_TIMER_MS + 1})`,
    ]);
  });

  it('a 30-day call budget is refused, and MAX_TIMER_MS itself is accepted', () => {
    const thirtyDays = 30 * 24 * 3600 * 1000;
    expect(problemsOf(() => resolveOptions({ python, pools: [{ ...pool, maxTimeoutMs: thirtyDays }] }))).toHaveLength(1);
    const every = Object.fromEntries(poolFields.map((field) => [field, MAX_TIMER_MS]));
    expect(problemsOf(() => resolveOptions({ python, pools: [{ ...pool, ...every }] }))).toEqual([]);
  });

  it('the circuit breaker, session sweep and shutdown durations are capped too', () => {
    const problems = problemsOf(() =>
      resolveOptions({
        python,
        pools: [{ ...pool, circuitBreaker: { resetTimeoutMs: MAX_TIMER_MS + 1 } }],
        sessions: { sweepIntervalMs: MAX_TIMER_MS + 1 },
        drainTimeoutMs: MAX_TIMER_MS + 1,
        stopGraceMs: MAX_TIMER_MS + 1,
      }),
    );
    expect(problems.map((problem) => problem.split(' ')[0])).toEqual(['pools[0]', 'sessions.sweepIntervalMs', 'drainTimeoutMs', 'stopGraceMs']);
    expect(problems[0]).toMatch(/^pools\[0\] \(p\)\.circuitBreaker\.resetTimeoutMs must be an integer between 1 and 2147483647 ms/);
  });

  describe('a per-call timeoutMs', () => {
    it('is refused above maxTimeoutMs', () => {
      expect(() => resolveTimeout(5000, { timeoutMs: 1000, maxTimeoutMs: 4000 })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENTS', details: { timeoutMs: 5000, maxTimeoutMs: 4000 } }),
      );
    });

    it('is refused above MAX_TIMER_MS even when a hand-built config allows more', () => {
      const config = { timeoutMs: 1000, maxTimeoutMs: Number.MAX_SAFE_INTEGER };
      expect(() => resolveTimeout(MAX_TIMER_MS + 1, config)).toThrow(
        expect.objectContaining({
          code: 'INVALID_ARGUMENTS',
          message: `timeoutMs must be a number of milliseconds between 1 and ${MAX_TIMER_MS}`,
          details: { timeoutMs: MAX_TIMER_MS + 1, maxTimeoutMs: MAX_TIMER_MS },
        }),
      );
      expect(resolveTimeout(MAX_TIMER_MS, config)).toBe(MAX_TIMER_MS);
    });

    it('defaults to the pool timeout and keeps a budget within the limits', () => {
      expect(resolveTimeout(undefined, { timeoutMs: 1000, maxTimeoutMs: 4000 })).toBe(1000);
      expect(resolveTimeout(2500, { timeoutMs: 1000, maxTimeoutMs: 4000 })).toBe(2500);
    });
  });
});

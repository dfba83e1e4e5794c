import { expect } from '@jest/globals';
import { resolveOptions, SnakepitConfigError } from './resolve-options';

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

import { Logger } from '@nestjs/common';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveOptions } from '../options/resolve-options';
import { WorkerRuntime } from './worker-runtime';

describe('WorkerRuntime', () => {
  let base: string;

  beforeEach(() => (base = mkdtempSync(join(tmpdir(), 'spruntime-'))));
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  const options = () =>
    resolveOptions({
      python: process.execPath, // any executable file will do for validation
      pools: [{ name: 'default', size: 1, adapter: 'a:B' }],
      socketDir: base,
      stateDir: join(base, 'state'),
      instanceName: 'runtime-spec',
      watchdog: false,
    });

  it('makes its socket directory only when started, and removes it when disposed', () => {
    const runtime = new WorkerRuntime(options());
    // A module that is built but never started (a compile-only test) leaves nothing on disk.
    expect(readdirSync(base).filter((name) => name.startsWith('snakepit-'))).toEqual([]);
    runtime.start(new Logger('test'));
    const made = readdirSync(base).filter((name) => name.startsWith('snakepit-'));
    expect(made).toHaveLength(1);
    expect(runtime.addressFor('default-1')).toBe(`unix://${join(base, made[0], 'default-1.sock')}`);
    runtime.dispose();
    expect(readdirSync(base).filter((name) => name.startsWith('snakepit-'))).toEqual([]);
  });
});

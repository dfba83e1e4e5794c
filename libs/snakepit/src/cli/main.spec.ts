import { expect } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, USAGE } from './main';

async function run(...argv: string[]) {
  const output = { out: '', err: '' };
  const code = await main(argv, { out: (text) => (output.out += text), err: (text) => (output.err += text) });
  return { code, ...output };
}

describe('snakepit command line', () => {
  it('prints the usage on --help, and with exit code 2 when the command is missing or unknown', async () => {
    expect(await run('--help')).toEqual({ code: 0, out: USAGE, err: '' });
    expect(await run('doctor', '--help')).toEqual({ code: 0, out: USAGE, err: '' });
    expect(await run()).toMatchObject({ code: 2, err: `snakepit: no command given\n\n${USAGE}` });
    expect(await run('docter')).toMatchObject({ code: 2, err: expect.stringContaining('unknown command "docter"') });
  });

  it('refuses unknown options and a missing NAME with exit code 2', async () => {
    expect(await run('doctor', '--pyhton', 'x')).toMatchObject({ code: 2, err: expect.stringContaining("Unknown option '--pyhton'") });
    expect(await run('new-adapter')).toMatchObject({ code: 2, err: expect.stringContaining('give exactly one NAME') });
  });

  it('doctor exits with 1 when a check fails, and prints JSON with --json', async () => {
    const result = await run('doctor', '--python', '/nonexistent/python', '--json');
    expect(result.code).toBe(1);
    const report = JSON.parse(result.out) as { ok: boolean; checks: Array<{ name: string; status: string }> };
    expect(report.ok).toBe(false);
    expect(report.checks[0]).toMatchObject({ name: 'python', status: 'FAIL' });
  });

  describe('new-adapter', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'snakepit-cli-'));
    });
    afterEach(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    it('prints the files and the module configuration to use', async () => {
      const result = await run('new-adapter', 'sentiment', '--dir', dir);
      expect(result.code).toBe(0);
      expect(result.out).toContain(`  ${join(dir, 'sentiment', 'adapter.py')}\n`);
      expect(result.out).toContain(
        `SnakepitModule.forRoot({ pools: [{ name: 'default', size: 2, adapter: 'sentiment.adapter:SentimentAdapter', python: '.venv/bin/python', env: { PYTHONPATH: '${dir}' } }] })`,
      );
    });

    it('exits with 1 and says why when it would overwrite', async () => {
      await run('new-adapter', 'sentiment', '--dir', dir);
      expect(await run('new-adapter', 'sentiment', '--dir', dir)).toMatchObject({ code: 1, err: expect.stringContaining('not overwriting existing files') });
    });
  });
});

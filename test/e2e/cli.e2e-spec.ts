import { expect } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/sample-app';

jest.setTimeout(30_000);

/** The built `snakepit` command (libs/snakepit/dist/cli/main.js), black-box, against real interpreters. */
const CLI = join(REPO_ROOT, 'libs', 'snakepit', 'dist', 'cli', 'main.js');
const VENV_PYTHON = join(REPO_ROOT, '.venv', 'bin', 'python');
const SHOWCASE = 'snakepit_bridge.examples.showcase:ShowcaseAdapter';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: options.cwd ?? REPO_ROOT, env: options.env ?? process.env, timeout: 25_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

const snakepit = (args: string[], options?: { cwd?: string; env?: NodeJS.ProcessEnv }) => run(process.execPath, [CLI, ...args], options);

/** The report line of one check, e.g. `FAIL  grpcio  not importable: ...`. */
function line(output: string, name: string): string {
  return output.split('\n').find((text) => new RegExp(`^(PASS|WARN|FAIL|SKIP)\\s+${name}\\s`).test(text)) ?? `(no ${name} line in)\n${output}`;
}

/** The `fix:` line printed under a check. */
function fixOf(output: string, name: string): string {
  const lines = output.split('\n');
  const next = lines[lines.indexOf(line(output, name)) + 1] ?? '';
  return next.trim().startsWith('fix: ') ? next.trim() : `(no fix under ${name})`;
}

describe('snakepit CLI (built)', () => {
  let scratch: string;

  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
    scratch = mkdtempSync(join(tmpdir(), 'snakepit-cli-e2e-'));
  });

  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it('doctor passes the project virtualenv with the showcase adapter', async () => {
    const { code, stdout } = await snakepit(['doctor', '--adapter', SHOWCASE]);
    expect(stdout).not.toMatch(/^(WARN|FAIL|SKIP) /m);
    expect(code).toBe(0);
    expect(line(stdout, 'python')).toContain(`${VENV_PYTHON}: Python 3.`);
    for (const name of ['virtualenv', 'grpcio', 'grpcio-health-checking', 'protobuf', 'snakepit_bridge', 'stubs', 'socket-dir']) {
      expect(line(stdout, name)).toMatch(/^PASS /);
    }
    expect(line(stdout, 'adapter')).toMatch(new RegExp(`^PASS\\s+adapter\\s+${SHOWCASE}: \\d+ tools \\(.*count \\(stream\\).*\\); thread_safe`));
  });

  it('doctor fails a broken interpreter path, says how to fix it, and exits with 1', async () => {
    const { code, stdout } = await snakepit(['doctor', '--python', '/nonexistent/python', '--adapter', SHOWCASE]);
    expect(code).toBe(1);
    expect(line(stdout, 'python')).toMatch(/^FAIL\s+python\s+\/nonexistent\/python: not found or not executable$/);
    expect(fixOf(stdout, 'python')).toContain('pass --python with the path of a Python');
    expect(line(stdout, 'adapter')).toMatch(/^SKIP /);
  });

  it('doctor fails an interpreter that lacks the dependencies, naming the pip command', async () => {
    const venv = join(scratch, 'bare-venv');
    const created = await run('python3', ['-m', 'venv', '--without-pip', venv]);
    expect(created).toMatchObject({ code: 0 });
    const python = join(venv, 'bin', 'python');
    // Without PYTHONPATH, nothing but the empty virtualenv can be imported.
    const env = { ...process.env, PYTHONPATH: '' };
    const { code, stdout } = await snakepit(['doctor', '--python', python], { env, cwd: scratch });
    expect(code).toBe(1);
    expect(line(stdout, 'python')).toMatch(/^PASS /);
    expect(line(stdout, 'virtualenv')).toMatch(/^PASS /);
    expect(line(stdout, 'grpcio')).toMatch(/^FAIL\s+grpcio\s+not importable: ModuleNotFoundError: No module named 'grpc'$/);
    expect(fixOf(stdout, 'grpcio')).toBe(`fix: ${python} -m pip install grpcio`);
    expect(line(stdout, 'protobuf')).toMatch(/^FAIL /);
    expect(line(stdout, 'snakepit_bridge')).toMatch(/^FAIL\s+snakepit_bridge\s+not importable/);
    expect(fixOf(stdout, 'snakepit_bridge')).toMatch(
      /^fix: \S+ -m pip install snakepit_bridge-\d+\.\d+\.\d+-py3-none-any\.whl .* -m pip install <that checkout>\/python$/,
    );
    expect(line(stdout, 'stubs')).toMatch(/^SKIP /);
  });

  it('doctor --json reports an adapter that fails to import, with the error it raised', async () => {
    writeFileSync(join(scratch, 'broken_adapter.py'), 'raise RuntimeError("model file missing")\n');
    const { code, stdout } = await snakepit(['doctor', '--python', VENV_PYTHON, '--adapter', 'broken_adapter:BrokenAdapter', '--json'], { cwd: scratch });
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as { ok: boolean; checks: Array<{ name: string; status: string; message: string; fix?: string }> };
    expect(report.ok).toBe(false);
    expect(report.checks.find((check) => check.name === 'adapter')).toMatchObject({
      status: 'FAIL',
      message: expect.stringContaining("importing adapter module 'broken_adapter' failed: RuntimeError: model file missing"),
      fix: expect.stringContaining('PYTHONPATH'),
    });
  });

  it('new-adapter writes an adapter whose tests pass and that doctor loads', async () => {
    const created = await snakepit(['new-adapter', 'sentiment_models', '--dir', scratch]);
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(created.stdout).toContain("adapter: 'sentiment_models.adapter:SentimentModelsAdapter'");

    const env = { ...process.env, PYTHONPATH: scratch, PYTHONDONTWRITEBYTECODE: '1' };
    const tests = await run(VENV_PYTHON, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', join(scratch, 'sentiment_models')], { env, cwd: scratch });
    expect(tests.stdout).toMatch(/4 passed/);
    expect(tests.code).toBe(0);

    const doctor = await snakepit(['doctor', '--python', VENV_PYTHON, '--adapter', 'sentiment_models.adapter:SentimentModelsAdapter'], { env });
    expect(line(doctor.stdout, 'adapter')).toBe(
      'PASS  adapter                 sentiment_models.adapter:SentimentModelsAdapter: 3 tools (countdown (stream), greet, visit); not thread_safe: one call at a time per worker',
    );
    expect(doctor.code).toBe(0);

    const again = await snakepit(['new-adapter', 'sentiment_models', '--dir', scratch]);
    expect(again).toMatchObject({ code: 1, stderr: expect.stringContaining('not overwriting existing files') });
  });
});

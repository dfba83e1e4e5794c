import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bridgeInstallCommand, libraryVersion } from './doctor';
import { adapterClassName, adapterNameProblem, createAdapter, NewAdapterError, nextSteps } from './new-adapter';

describe('new-adapter', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'snakepit-new-adapter-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts Python identifiers only', () => {
    for (const name of ['models', 'my_models', '_private', 'v2']) expect(adapterNameProblem(name)).toBeUndefined();
    expect(adapterNameProblem('my-models')).toMatch(/not a valid Python package name/);
    expect(adapterNameProblem('2fast')).toMatch(/not starting with a digit/);
    expect(adapterNameProblem('__')).toMatch(/not a valid Python package name/);
    expect(adapterNameProblem('import')).toBe('"import" is a Python keyword and cannot name a package');
  });

  it('names the class after the package', () => {
    expect(adapterClassName('sentiment')).toBe('SentimentAdapter');
    expect(adapterClassName('my_models')).toBe('MyModelsAdapter');
    expect(adapterClassName('_gpu__v2')).toBe('GpuV2Adapter');
  });

  it('writes the package, its adapter and its tests', () => {
    const created = createAdapter('my_models', dir);
    expect(created.adapterSpec).toBe('my_models.adapter:MyModelsAdapter');
    expect(created.files.map((file) => file.slice(dir.length + 1))).toEqual([
      'my_models/__init__.py',
      'my_models/adapter.py',
      'my_models/tests/__init__.py',
      'my_models/tests/test_adapter.py',
    ]);
    const adapter = readFileSync(join(dir, 'my_models', 'adapter.py'), 'utf8');
    expect(adapter).toContain('class MyModelsAdapter(Adapter):');
    expect(adapter).toContain('def setup(self) -> None:');
    expect(adapter).toContain('ctx.session["visits"] = visits');
    const tests = readFileSync(join(dir, 'my_models', 'tests', 'test_adapter.py'), 'utf8');
    expect(tests).toContain('from my_models.adapter import MyModelsAdapter');
    // Through the public testing harness, not the bridge's internals or hand-encoded session JSON.
    expect(tests).toContain('from snakepit_bridge.testing import ToolHarness');
    expect(tests).toContain('with ToolHarness.serving(MyModelsAdapter) as serving:');
    expect(tests).not.toMatch(/snakepit_bridge\.adapter|json\.dumps|CallContext\(/);
    expect(tests).toContain('.venv/bin/python -m pip install pytest'); // pytest is no dependency of the bridge
  });

  describe('next steps', () => {
    const created = () => createAdapter('my_models', dir);

    it('names the virtualenv interpreter in the commands and in the pool configuration', () => {
      mkdirSync(join(dir, '.venv', 'bin'), { recursive: true });
      writeFileSync(join(dir, '.venv', 'bin', 'python'), '');
      const text = nextSteps(created(), dir, dir);
      expect(text).toContain('Its tests need pytest:  .venv/bin/python -m pip install pytest\n');
      expect(text).toContain('Run its tests:    .venv/bin/python -m pytest my_models\n');
      expect(text).toContain('Check it loads:   npx snakepit doctor --python .venv/bin/python --adapter my_models.adapter:MyModelsAdapter\n');
      expect(text).toContain(
        "  SnakepitModule.forRoot({ pools: [{ name: 'default', size: 2, adapter: 'my_models.adapter:MyModelsAdapter', python: '.venv/bin/python' }] })\n",
      );
      expect(text).not.toContain('python3 -m venv'); // it exists
    });

    it('says how to create the virtualenv and install the bridge when there is none', () => {
      const text = nextSteps(created(), dir, dir);
      expect(text).toContain("Create the workers' virtualenv:  python3 -m venv .venv\n");
      expect(text).toContain(`Install snakepit-bridge into it:  ${bridgeInstallCommand('.venv/bin/python', libraryVersion())}\n`);
    });

    it('puts an adapter written elsewhere on PYTHONPATH', () => {
      const app = join(dir, 'app');
      mkdirSync(app);
      const text = nextSteps(created(), dir, app);
      expect(text).toContain(`Run its tests:    PYTHONPATH=${dir} .venv/bin/python -m pytest ${join(dir, 'my_models')}\n`);
      expect(text).toContain(`python: '.venv/bin/python', env: { PYTHONPATH: '${dir}' } }] })`);
    });
  });

  it('refuses an invalid name and writes nothing', () => {
    expect(() => createAdapter('my-models', dir)).toThrow(NewAdapterError);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses to overwrite, writing none of the files when one exists', () => {
    mkdirSync(join(dir, 'models', 'tests'), { recursive: true });
    writeFileSync(join(dir, 'models', 'tests', 'test_adapter.py'), 'mine');
    expect(() => createAdapter('models', dir)).toThrow(`not overwriting existing files: ${join(dir, 'models', 'tests', 'test_adapter.py')}`);
    expect(readdirSync(join(dir, 'models'))).toEqual(['tests']);
    expect(readFileSync(join(dir, 'models', 'tests', 'test_adapter.py'), 'utf8')).toBe('mine');
  });
});

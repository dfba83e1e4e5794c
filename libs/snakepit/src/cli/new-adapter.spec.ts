import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adapterClassName, adapterNameProblem, createAdapter, NewAdapterError } from './new-adapter';

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
    expect(readFileSync(join(dir, 'my_models', 'tests', 'test_adapter.py'), 'utf8')).toContain('from my_models.adapter import MyModelsAdapter');
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

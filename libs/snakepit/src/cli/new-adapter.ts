import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { adapterModule, adapterTests, packageInit, type AdapterNames } from './adapter-templates';
import { bridgeInstallCommand, libraryVersion, VENV_PYTHON } from './doctor';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Python's hard keywords (keyword.kwlist): valid-looking identifiers that cannot name a module.
const PYTHON_KEYWORDS = new Set(
  'False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield'.split(
    ' ',
  ),
);

/** Why new-adapter wrote nothing: an invalid NAME or files already there. */
export class NewAdapterError extends Error {
  override readonly name = 'NewAdapterError';
}

/** Why `name` cannot be the adapter's Python package, or undefined when it can. */
export function adapterNameProblem(name: string): string | undefined {
  if (!IDENTIFIER.test(name) || !/[A-Za-z]/.test(name)) {
    return `${JSON.stringify(name)} is not a valid Python package name: use letters, digits and underscores, not starting with a digit (e.g. my_models)`;
  }
  if (PYTHON_KEYWORDS.has(name)) return `${JSON.stringify(name)} is a Python keyword and cannot name a package`;
  return undefined;
}

/** my_models → MyModelsAdapter */
export function adapterClassName(name: string): string {
  const camel = name
    .split('_')
    .filter(Boolean)
    .map((part) => part[0].toUpperCase() + part.slice(1))
    .join('');
  return `${camel}Adapter`;
}

export interface NewAdapter extends AdapterNames {
  /** The files written, absolute. */
  files: string[];
  /** What a pool's `adapter` option names. */
  adapterSpec: string;
}

/**
 * Writes DIR/NAME/{__init__.py, adapter.py, tests/__init__.py, tests/test_adapter.py}.
 * Refuses, writing nothing, when any of them exists. (tests/__init__.py lets pytest
 * import the tests as NAME.tests.test_adapter, so several adapters' tests never collide.)
 */
export function createAdapter(name: string, dir: string): NewAdapter {
  const problem = adapterNameProblem(name);
  if (problem) throw new NewAdapterError(problem);
  const names: AdapterNames = { name, className: adapterClassName(name) };
  const root = resolve(dir, name);
  const contents = new Map<string, string>([
    [join(root, '__init__.py'), packageInit(names)],
    [join(root, 'adapter.py'), adapterModule(names)],
    [join(root, 'tests', '__init__.py'), ''],
    [join(root, 'tests', 'test_adapter.py'), adapterTests(names)],
  ]);
  const existing = [...contents.keys()].filter((file) => existsSync(file));
  if (existing.length > 0) {
    throw new NewAdapterError(`not overwriting existing files: ${existing.join(', ')} (remove them or choose another NAME or --dir)`);
  }
  for (const [file, content] of contents) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content, { flag: 'wx' }); // wx: never clobber a file created since the check
  }
  return { ...names, files: [...contents.keys()], adapterSpec: `${name}.adapter:${names.className}` };
}

/**
 * What to do next, printed by `snakepit new-adapter`: the commands and the pool configuration all name the
 * virtualenv interpreter in `cwd` (the app's directory, where workers start), and how to create it when it is
 * missing, so the workers run where snakepit-bridge and the tests' pytest are installed.
 */
export function nextSteps(created: NewAdapter, dir: string, cwd: string = process.cwd()): string {
  const shown = (path: string) => {
    const fromHere = relative(cwd, path);
    return fromHere.startsWith('..') || isAbsolute(fromHere) ? path : fromHere || '.';
  };
  const elsewhere = resolve(dir) !== resolve(cwd);
  // Workers import adapters from the app's working directory; anywhere else needs PYTHONPATH.
  const pythonPath = elsewhere ? `PYTHONPATH=${shown(dir)} ` : '';
  const poolEnv = elsewhere ? `, env: { PYTHONPATH: '${resolve(dir)}' }` : '';
  const venv = existsSync(resolve(cwd, VENV_PYTHON))
    ? []
    : ["Create the workers' virtualenv:  python3 -m venv .venv", `Install snakepit-bridge into it:  ${bridgeInstallCommand(VENV_PYTHON, libraryVersion())}`];
  return [
    `Created the adapter package ${created.name}:`,
    ...created.files.map((file) => `  ${shown(file)}`),
    '',
    ...venv,
    `Its tests need pytest:  ${VENV_PYTHON} -m pip install pytest`,
    `Run its tests:    ${pythonPath}${VENV_PYTHON} -m pytest ${shown(resolve(dir, created.name))}`,
    `Check it loads:   ${pythonPath}npx snakepit doctor --python ${VENV_PYTHON} --adapter ${created.adapterSpec}`,
    'Use it in a pool (python: the interpreter that has snakepit-bridge):',
    `  SnakepitModule.forRoot({ pools: [{ name: 'default', size: 2, adapter: '${created.adapterSpec}', python: '${VENV_PYTHON}'${poolEnv} }] })`,
    '',
  ].join('\n');
}

import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODULE_DEFAULTS } from '../options/defaults';
import { findExecutable } from '../options/resolve-options';
import { fail, pass, skip, warn, type Check } from './check';
import {
  ADAPTER_PROBE,
  ENVIRONMENT_PROBE,
  environmentProbeArgs,
  isAdapterAnswer,
  isAttempt,
  isEnvironmentAnswer,
  REQUIRED_PACKAGES,
  type EnvironmentAnswer,
  type RequiredPackage,
} from './doctor-probes';
import { runPythonProbe } from './python-probe';
import { checkSharedMemory } from './shared-memory-check';
import { checkSocketDir } from './socket-dir-check';

/** snakepit_bridge needs 3.11 (python/pyproject.toml `requires-python`; it subscripts logging.LoggerAdapter). */
export const MIN_PYTHON: readonly [number, number] = [3, 11];

export interface DoctorOptions {
  /** The interpreter to check; by default `.venv/bin/python` in the current directory if there is one, else `python3`. */
  python?: string;
  /** `module:Class` of an adapter to load. */
  adapter?: string;
  /** Where workers' sockets go (the module's `socketDir`); the OS temp directory by default. */
  socketDir?: string;
}

/** The version of this npm package, which the Python bridge must match. */
export function libraryVersion(): string {
  // ../../package.json is the package root both from src/cli (tests) and from dist/cli (installed).
  const manifest: unknown = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));
  if (typeof manifest !== 'object' || manifest === null || !('version' in manifest) || typeof manifest.version !== 'string') {
    throw new Error('the @snakepit/nestjs package.json has no version');
  }
  return manifest.version;
}

/**
 * The command that installs the snakepit-bridge matching this library into `python`'s environment. The package is
 * not on a registry: `npm run pack` in a Snakepit checkout builds its wheel into dist/packages/, and pip builds the
 * same package from the checkout's python/ directory (both generate its gRPC stubs).
 */
export function bridgeInstallCommand(python: string, version: string, pipOptions = ''): string {
  const install = `${python} -m pip install ${pipOptions ? `${pipOptions} ` : ''}`;
  return `${install}snakepit_bridge-${version}-py3-none-any.whl (in dist/packages/ after npm run pack in a Snakepit checkout), or ${install}<that checkout>/python`;
}

/** The interpreter of a virtualenv in the app's directory, as doctor, new-adapter and the pool option name it. */
export const VENV_PYTHON = join('.venv', 'bin', 'python');

export function defaultPython(): string {
  return existsSync(VENV_PYTHON) ? VENV_PYTHON : MODULE_DEFAULTS.python;
}

/** Every check, in report order. Python probes are bounded by a timeout, so this always settles. */
export async function runDoctor(options: DoctorOptions): Promise<Check[]> {
  const [pythonChecks, socketCheck, sharedCheck] = await Promise.all([
    checkPython(options.python ?? defaultPython(), options.adapter, libraryVersion()),
    checkSocketDir(options.socketDir ?? tmpdir()),
    checkSharedMemory(),
  ]);
  return [...pythonChecks, socketCheck, sharedCheck];
}

const DEPENDENT_CHECKS = ['virtualenv', ...Object.keys(REQUIRED_PACKAGES), 'snakepit_bridge', 'stubs'];

async function checkPython(python: string, adapter: string | undefined, expectedBridge: string): Promise<Check[]> {
  const skipAll = (reason: string) => [...DEPENDENT_CHECKS, ...(adapter ? ['adapter'] : [])].map((name) => skip(name, reason));
  const executable = findExecutable(python);
  if (!executable) {
    return [
      fail(
        'python',
        `${python}: not found or not executable`,
        `pass --python with the path of a Python ≥ ${MIN_PYTHON.join('.')}, or create a virtualenv here: python3 -m venv .venv`,
      ),
      ...skipAll('needs a working interpreter'),
    ];
  }
  const probe = await runPythonProbe(executable, ENVIRONMENT_PROBE, environmentProbeArgs());
  if (!probe.ok || !isEnvironmentAnswer(probe.answer)) {
    const problem = probe.ok ? `its answer was not understood: ${JSON.stringify(probe.answer).slice(0, 200)}` : probe.problem;
    return [
      fail(
        'python',
        `${executable} does not run as a Python 3 interpreter: ${problem}`,
        `check that \`${executable} -c "print(1)"\` works, or pass --python naming another interpreter`,
      ),
      ...skipAll('needs a working interpreter'),
    ];
  }
  const checks = environmentChecks(probe.answer, expectedBridge);
  if (!adapter) return checks;
  const stubsWork = checks.some((check) => check.name === 'stubs' && check.status === 'PASS');
  return [...checks, stubsWork ? await checkAdapter(executable, adapter) : skip('adapter', 'needs snakepit_bridge and its stubs to import')];
}

/** The checks an interpreter's answer to ENVIRONMENT_PROBE decides. */
export function environmentChecks(answer: EnvironmentAnswer, expectedBridge: string): Check[] {
  const python = answer.executable;
  const installBridge = bridgeInstallCommand(python, expectedBridge);
  const version = answer.version.join('.');
  const [major, minor] = answer.version;
  const recentEnough = major > MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor >= MIN_PYTHON[1]);
  const checks: Check[] = [
    recentEnough
      ? pass('python', `${python}: Python ${version}`)
      : fail(
          'python',
          `${python}: Python ${version} is older than ${MIN_PYTHON.join('.')}`,
          `install Python ≥ ${MIN_PYTHON.join('.')} and create a virtualenv with it (python3.12 -m venv .venv), then pass --python .venv/bin/python`,
        ),
    answer.isolated
      ? pass('virtualenv', `isolated environment at ${answer.prefix}`)
      : warn(
          'virtualenv',
          `${python} is a system-wide interpreter (${answer.prefix}); packages installed for Snakepit mix with the system's`,
          `python3 -m venv .venv, then ${bridgeInstallCommand(VENV_PYTHON, expectedBridge)}, and set the pool option python: '${VENV_PYTHON}'`,
        ),
  ];
  for (const name of Object.keys(REQUIRED_PACKAGES) as RequiredPackage[]) {
    const result = answer.packages[name];
    checks.push(result.ok ? pass(name, result.value) : fail(name, `not importable: ${result.error}`, `${python} -m pip install ${name}`));
  }
  const { bridge } = answer;
  if (!bridge.ok) {
    checks.push(fail('snakepit_bridge', `not importable: ${bridge.error}`, installBridge));
  } else if (bridge.value.version !== expectedBridge) {
    checks.push(
      fail(
        'snakepit_bridge',
        `version ${bridge.value.version} at ${bridge.value.location}, but @snakepit/nestjs ${expectedBridge} needs ${expectedBridge}`,
        installBridge,
      ),
    );
  } else {
    checks.push(pass('snakepit_bridge', `${bridge.value.version} at ${bridge.value.location}`));
  }
  const packagesImport = Object.values(answer.packages).every((result) => result.ok);
  if (!bridge.ok || !packagesImport) {
    checks.push(skip('stubs', 'needs snakepit_bridge, grpcio and protobuf'));
  } else if (!answer.stubs.ok) {
    checks.push(
      fail(
        'stubs',
        `the generated gRPC stubs do not load: ${answer.stubs.error}`,
        `reinstall snakepit-bridge, which brings the grpcio and protobuf versions its stubs were generated for: ${bridgeInstallCommand(python, expectedBridge, '--force-reinstall')}`,
      ),
    );
  } else {
    checks.push(pass('stubs', 'the generated gRPC stubs load with these protobuf and grpcio versions'));
  }
  return checks;
}

async function checkAdapter(python: string, adapter: string): Promise<Check> {
  const fixImport = `check the "module:Class" spelling, and run doctor from the directory your app starts in (the workers' cwd) or put the adapter's parent directory on PYTHONPATH`;
  const probe = await runPythonProbe(python, ADAPTER_PROBE, [adapter]);
  if (!probe.ok) return fail('adapter', `${adapter}: the import probe failed: ${probe.problem}`, fixImport);
  if (!isAttempt(probe.answer, isAdapterAnswer)) return fail('adapter', `${adapter}: the import probe's answer was not understood`, fixImport);
  if (!probe.answer.ok) return fail('adapter', `${adapter}: ${probe.answer.error}`, fixImport);
  const { tools, threadSafe } = probe.answer.value;
  if (tools.length === 0) return fail('adapter', `${adapter} has no tools`, 'mark the methods the host may call with @tool');
  const names = tools.map((tool) => (tool.streaming ? `${tool.name} (stream)` : tool.name)).join(', ');
  const concurrency = threadSafe ? 'thread_safe: a worker may run several calls at once' : 'not thread_safe: one call at a time per worker';
  return pass('adapter', `${adapter}: ${tools.length} tool${tools.length === 1 ? '' : 's'} (${names}); ${concurrency}`);
}

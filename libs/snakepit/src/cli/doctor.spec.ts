import { expect } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Check } from './check';
import { isEnvironmentAnswer, type EnvironmentAnswer } from './doctor-probes';
import { bridgeInstallCommand, environmentChecks, libraryVersion, runDoctor } from './doctor';

const healthy: EnvironmentAnswer = {
  version: [3, 12, 4],
  executable: '/app/.venv/bin/python',
  prefix: '/app/.venv',
  isolated: true,
  packages: {
    grpcio: { ok: true, value: '1.85.1' },
    'grpcio-health-checking': { ok: true, value: '1.85.1' },
    protobuf: { ok: true, value: '7.36.2' },
  },
  bridge: { ok: true, value: { version: '0.1.0', location: '/app/.venv/lib/python3.12/site-packages/snakepit_bridge' } },
  stubs: { ok: true, value: '1.85.1' },
};

const byName = (checks: Check[]) => Object.fromEntries(checks.map((check) => [check.name, check]));

describe('doctor: what the interpreter reports', () => {
  it('passes a complete environment', () => {
    const checks = environmentChecks(healthy, '0.1.0');
    expect(checks.map((check) => [check.name, check.status])).toEqual([
      ['python', 'PASS'],
      ['virtualenv', 'PASS'],
      ['grpcio', 'PASS'],
      ['grpcio-health-checking', 'PASS'],
      ['protobuf', 'PASS'],
      ['snakepit_bridge', 'PASS'],
      ['stubs', 'PASS'],
    ]);
    expect(byName(checks).grpcio.message).toBe('1.85.1');
  });

  it('fails a Python older than 3.11 and warns about a system-wide interpreter', () => {
    const checks = byName(environmentChecks({ ...healthy, version: [3, 10, 12], isolated: false, prefix: '/usr' }, '0.1.0'));
    expect(checks.python).toMatchObject({
      status: 'FAIL',
      message: '/app/.venv/bin/python: Python 3.10.12 is older than 3.11',
      fix: expect.stringContaining('venv'),
    });
    expect(checks.virtualenv).toMatchObject({
      status: 'WARN',
      fix: `python3 -m venv .venv, then ${bridgeInstallCommand('.venv/bin/python', '0.1.0')}, and set the pool option python: '.venv/bin/python'`,
    });
  });

  it('fails a missing package with the pip command for this interpreter, and skips the stubs', () => {
    const answer = { ...healthy, packages: { ...healthy.packages, grpcio: { ok: false as const, error: "ModuleNotFoundError: No module named 'grpc'" } } };
    const checks = byName(environmentChecks(answer, '0.1.0'));
    expect(checks.grpcio).toEqual({
      name: 'grpcio',
      status: 'FAIL',
      message: "not importable: ModuleNotFoundError: No module named 'grpc'",
      fix: '/app/.venv/bin/python -m pip install grpcio',
    });
    expect(checks.stubs.status).toBe('SKIP');
  });

  it('reports the error the stubs raise when protobuf cannot run them', () => {
    const error =
      'VersionError: Detected incompatible Protobuf Gencode/Runtime versions when loading snakepit/bridge/v1/bridge.proto: gencode 7.35.1 runtime 6.31.0.';
    const checks = byName(environmentChecks({ ...healthy, stubs: { ok: false, error } }, '0.1.0'));
    expect(checks.stubs).toMatchObject({
      status: 'FAIL',
      message: `the generated gRPC stubs do not load: ${error}`,
      fix: expect.stringContaining('/app/.venv/bin/python -m pip install --force-reinstall snakepit_bridge-0.1.0-py3-none-any.whl'),
    });
    expect(checks.stubs.fix).not.toContain('generate_stubs'); // a script of the repository, not of an install
  });

  it('fails a bridge whose version differs from the library, or that is missing', () => {
    const other = byName(environmentChecks({ ...healthy, bridge: { ok: true, value: { version: '0.0.9', location: '/x' } } }, '0.1.0'));
    expect(other.snakepit_bridge).toMatchObject({
      status: 'FAIL',
      message: 'version 0.0.9 at /x, but @snakepit/nestjs 0.1.0 needs 0.1.0',
      fix: bridgeInstallCommand('/app/.venv/bin/python', '0.1.0'),
    });
    const missing = byName(environmentChecks({ ...healthy, bridge: { ok: false, error: "ModuleNotFoundError: No module named 'snakepit_bridge'" } }, '0.1.0'));
    expect(missing.snakepit_bridge.status).toBe('FAIL');
    expect(missing.stubs.status).toBe('SKIP');
  });

  it('installs the bridge from the wheel npm run pack builds, or from a checkout', () => {
    // Not "pip install snakepit-bridge": the package is on no registry.
    expect(bridgeInstallCommand('/app/.venv/bin/python', '0.2.0')).toBe(
      '/app/.venv/bin/python -m pip install snakepit_bridge-0.2.0-py3-none-any.whl (in dist/packages/ after npm run pack in a Snakepit checkout), or /app/.venv/bin/python -m pip install <that checkout>/python',
    );
    expect(bridgeInstallCommand('python3', '0.2.0', '--force-reinstall')).toMatch(
      /^python3 -m pip install --force-reinstall snakepit_bridge-0\.2\.0-py3-none-any\.whl .* python3 -m pip install --force-reinstall <that checkout>\/python$/,
    );
  });

  it('accepts only answers of the expected shape', () => {
    expect(isEnvironmentAnswer(healthy)).toBe(true);
    expect(isEnvironmentAnswer({ ...healthy, version: [3, 12] })).toBe(false);
    expect(isEnvironmentAnswer({ ...healthy, packages: { grpcio: healthy.packages.grpcio } })).toBe(false);
    expect(isEnvironmentAnswer({ ...healthy, stubs: { ok: false } })).toBe(false);
  });
});

describe('doctor', () => {
  it('expects the bridge version the npm package declares', () => {
    const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    expect(libraryVersion()).toBe(manifest.version);
  });

  it('fails a missing interpreter with a fix and skips what depends on it', async () => {
    const checks = await runDoctor({ python: '/nonexistent/python', adapter: 'pkg.mod:Adapter' });
    expect(checks[0]).toMatchObject({
      name: 'python',
      status: 'FAIL',
      message: '/nonexistent/python: not found or not executable',
      fix: expect.stringContaining('--python'),
    });
    expect(checks.filter((check) => check.status === 'SKIP').map((check) => check.name)).toEqual([
      'virtualenv',
      'grpcio',
      'grpcio-health-checking',
      'protobuf',
      'snakepit_bridge',
      'stubs',
      'adapter',
    ]);
    expect(checks.slice(-2).map((check) => check.name)).toEqual(['socket-dir', 'shared-memory']);
  });
});

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The package as an app loads it: the built entry points, required by name
 * (through the workspace link and package.json `exports`) in a child process,
 * so this test's own module registry and mappings play no part.
 */
const repoRoot = resolve(__dirname, '../../..');
const packageDir = join(repoRoot, 'libs', 'snakepit');
const packageJson = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
  engines: { node: string };
  exports: Record<string, string | { types: string; default: string }>;
};

/** Runs `code` in a fresh Node from the repository root and returns its last stdout line, parsed. */
function inChild<T>(code: string): T {
  const result = spawnSync(process.execPath, ['-e', code], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`child exited ${result.status ?? result.signal}: ${result.stderr}`);
  const lines = result.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

/** Child-process prelude that makes `packages` unresolvable, as when they are not installed. */
const hide = (packages: string[]): string => `
  const hidden = ${JSON.stringify(packages)};
  const Module = require('node:module');
  const resolveFilename = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    if (hidden.some((name) => request === name || request.startsWith(name + '/'))) {
      throw Object.assign(new Error("Cannot find module '" + request + "'"), { code: 'MODULE_NOT_FOUND' });
    }
    return resolveFilename.call(this, request, ...rest);
  };`;

const loadedIoredis = `Object.keys(require.cache).filter((file) => file.includes('/node_modules/ioredis/')).length`;

beforeAll(() => {
  if (!existsSync(join(packageDir, 'dist', 'index.js'))) throw new Error('libs/snakepit is not built: run node scripts/setup.mjs --build');
});

describe('@snakepit/nestjs as installed', () => {
  it('loads neither ioredis nor cluster code from the root entry', () => {
    const loaded = inChild<{ ioredis: number; cluster: string[] }>(`
      require('@snakepit/nestjs');
      const cluster = Object.keys(require.cache).filter((file) => /libs.snakepit.dist.cluster/.test(file)).map((file) => file.split('dist/')[1]);
      console.log(JSON.stringify({ ioredis: ${loadedIoredis}, cluster }));`);
    expect(loaded.ioredis).toBe(0);
    // Only the `cluster` option's validation and the null-returning providers.
    expect(loaded.cluster.sort()).toEqual(['cluster/cluster-options.js', 'cluster/cluster.providers.js']);
  });

  it('loads ioredis with the cluster classes, which cluster mode requires lazily', () => {
    // The control for the test above: the check does see ioredis when it is loaded.
    const count = inChild<number>(`require('${join(packageDir, 'dist', 'cluster', 'cluster-classes.js')}'); console.log(${loadedIoredis});`);
    expect(count).toBeGreaterThan(0);
  });

  it('resolves every export to built code with its types beside it', () => {
    const subpaths = Object.keys(packageJson.exports).filter((subpath) => subpath !== './package.json');
    expect(subpaths.sort()).toEqual(['.', './cluster', './health', './metrics']);
    const resolved = inChild<Record<string, string>>(`
      const names = ${JSON.stringify(subpaths)};
      console.log(JSON.stringify(Object.fromEntries(names.map((subpath) => [subpath, require.resolve('@snakepit/nestjs' + subpath.slice(1))]))));`);
    for (const subpath of subpaths) {
      const target = packageJson.exports[subpath] as { types: string; default: string };
      expect(resolved[subpath]).toBe(join(packageDir, target.default));
      expect(existsSync(join(packageDir, target.types))).toBe(true);
    }
  });

  it.each([
    ['@snakepit/nestjs/metrics', ['@willsoto/nestjs-prometheus', 'prom-client']],
    ['@snakepit/nestjs/health', ['@nestjs/terminus']],
  ])('%s without its optional peers names them with the install command', (entry, peers) => {
    const message = inChild<string>(`${hide(peers)}
      try { require('${entry}'); console.log(JSON.stringify('loaded')); } catch (error) { console.log(JSON.stringify(error.message)); }`);
    expect(message).toContain(`${entry} needs the optional peer`);
    expect(message).toContain(`npm install ${peers.join(' ')}`);
  });

  it('cluster mode without ioredis fails at start naming it; a single node does not need it', () => {
    const start = (cluster: boolean): string =>
      inChild<string>(`${hide(['ioredis'])}
        require('reflect-metadata');
        const { Test } = require('@nestjs/testing');
        const { SnakepitModule } = require('@snakepit/nestjs');
        const options = {
          pools: [{ name: 'default', size: 1, adapter: 'snakepit_bridge.examples.counter:CounterAdapter' }],
          cluster: ${cluster ? "{ redis: 'redis://127.0.0.1:9/0', secret: 'a-secret-of-16-chars' }" : 'undefined'},
        };
        // compile() builds every provider but runs no lifecycle hook: no worker, no Redis connection.
        Test.createTestingModule({ imports: [SnakepitModule.forRoot(options)] }).compile().then(
          () => 'resolved',
          (error) => error.message,
        ).then((outcome) => { console.log(JSON.stringify(outcome)); process.exit(0); });`);
    const clusterMessage = start(true);
    expect(clusterMessage).toContain('Cluster mode (the `cluster` option) needs the optional peer package ioredis: npm install ioredis');
    expect(start(false)).toBe('resolved');
  });

  it('states one Node range, and takes its version from the root package.json like the Python package', () => {
    const root = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } };
    expect(packageJson.engines.node).toBe(root.engines.node);
    const check = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'pack.mjs'), '--check-versions'], { encoding: 'utf8', timeout: 30_000 });
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });
});

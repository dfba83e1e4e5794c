#!/usr/bin/env node
// One idempotent set-up step behind the README's commands: npm packages, the
// Python virtualenv (.venv), generated stubs for both languages and, with
// --build, an incremental TypeScript build. Every step keeps a fingerprint of
// its inputs in .setup/ and is skipped while they are unchanged, so a second
// run costs well under a second plus tsc's own no-op check.
// Only Node built-ins here: this runs before node_modules exists.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const stampDir = join(root, '.setup');
const venvPython = join(root, '.venv', 'bin', 'python');
const build = process.argv.includes('--build');

function run(cmd, args, options = {}) {
  const started = Date.now();
  const result = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.error) throw new Error(`setup: cannot run ${cmd}: ${result.error.message}`);
  if (result.status !== 0) {
    console.error(`setup: '${[cmd, ...args].join(' ')}' failed with exit code ${result.status}`);
    process.exit(result.status ?? 1);
  }
  return Date.now() - started;
}

function filesUnder(dir, predicate) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true })
    .map((entry) => join(dir, String(entry)))
    .filter((file) => statSync(file).isFile() && predicate(file))
    .sort();
}

function fingerprint(files, extra = '') {
  const hash = createHash('sha256').update(extra);
  for (const file of files) {
    hash.update(file);
    hash.update(existsSync(file) ? readFileSync(file) : 'missing');
  }
  return hash.digest('hex');
}

/** Runs `action` unless the fingerprint of `inputs` matches the last successful run. */
function step(name, inputs, isPresent, action) {
  const stamp = join(stampDir, `${name}.sha256`);
  const digest = fingerprint(inputs, name);
  if (isPresent() && existsSync(stamp) && readFileSync(stamp, 'utf8') === digest) return;
  console.log(`setup: ${name} ...`);
  const ms = action();
  mkdirSync(stampDir, { recursive: true });
  writeFileSync(stamp, digest);
  console.log(`setup: ${name} done${typeof ms === 'number' ? ` in ${(ms / 1000).toFixed(1)} s` : ''}`);
}

const protoFiles = filesUnder(join(root, 'proto'), (f) => f.endsWith('.proto'));
const ci = process.env.CI === 'true' || process.env.CI === '1';

step(
  'npm-packages',
  ['package.json', 'package-lock.json', 'libs/snakepit/package.json'].map((f) => join(root, f)),
  () => existsSync(join(root, 'node_modules', '.package-lock.json')),
  () => run('npm', [ci ? 'ci' : 'install', '--no-audit', '--no-fund', '--loglevel=error']),
);

step(
  'python-venv',
  ['requirements.txt', 'pyproject.toml', 'setup.py'].map((f) => join(root, 'python', f)),
  () => existsSync(venvPython),
  () => {
    let ms = 0;
    if (!existsSync(venvPython)) ms += run('python3', ['-m', 'venv', join(root, '.venv')]);
    const pip = [venvPython, '-m', 'pip', '--disable-pip-version-check', '-q'];
    ms += run(pip[0], [...pip.slice(1), 'install', '-r', join(root, 'python', 'requirements.txt')]);
    // The requirements hold the build requirements, so the editable build (which generates
    // the stubs) runs in the venv instead of downloading them into an isolated one.
    ms += run(pip[0], [...pip.slice(1), 'install', '--no-deps', '--no-build-isolation', '-e', join(root, 'python')]);
    return ms;
  },
);

step(
  'python-stubs',
  [...protoFiles, join(root, 'python', 'tools', 'generate_stubs.py')],
  () => existsSync(join(root, 'python', 'snakepit_bridge', '_proto')),
  () => run(venvPython, [join(root, 'python', 'tools', 'generate_stubs.py')]),
);

// TypeScript types of the wire messages, generated from the .proto files (never written by hand).
const protoTypeTargets = [
  { name: 'ts-bridge-types', proto: 'snakepit/bridge/v1/bridge.proto', out: 'libs/snakepit/src/bridge/generated' },
  { name: 'ts-api-types', proto: 'snakepit/v1/snakepit.proto', out: 'apps/sample/src/generated' },
  { name: 'ts-cluster-types', proto: 'snakepit/cluster/v1/cluster.proto', out: 'libs/snakepit/src/cluster/generated' },
];
for (const target of protoTypeTargets) {
  const outDir = join(root, target.out);
  // Every proto file is an input: a file's types include those of the files it imports (cluster imports bridge).
  step(
    target.name,
    protoFiles,
    () => existsSync(outDir),
    () =>
      run(join(root, 'node_modules', '.bin', 'proto-loader-gen-types'), [
        '--longs=Number',
        '--enums=String',
        '--oneofs',
        '--arrays',
        '--defaults',
        '--grpcLib=@grpc/grpc-js',
        '--includeDirs',
        join(root, 'proto'),
        '--outDir',
        outDir,
        target.proto,
      ]),
  );
}

if (build) {
  const started = Date.now();
  run(join(root, 'node_modules', '.bin', 'tsc'), ['-b', 'libs/snakepit/tsconfig.lib.json', 'apps/sample/tsconfig.app.json']);
  if (Date.now() - started > 3000) console.log(`setup: build done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

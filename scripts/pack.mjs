#!/usr/bin/env node
// npm run pack: builds both packages into dist/packages/ and prints them with their sizes:
//   @snakepit/nestjs  -> snakepit-nestjs-<version>.tgz (npm pack of a clean compile in a staging folder)
//   snakepit-bridge   -> snakepit_bridge-<version>-py3-none-any.whl and .tar.gz (python -m build)
// The version lives in the root package.json; libs/snakepit/package.json and
// python/snakepit_bridge/_version.py must repeat it (checked here, and by
// libs/snakepit/src/package.spec.ts through --check-versions).
// Expects `node scripts/setup.mjs` to have run (node_modules, .venv, generated stubs).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const libDir = join(root, 'libs', 'snakepit');
const outDir = join(root, 'dist', 'packages');
const venvPython = join(root, '.venv', 'bin', 'python');

function fail(message) {
  console.error(`pack: ${message}`);
  process.exit(1);
}

/** Runs a build step with its output captured, and shows that output only when the step fails. */
function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error) fail(`cannot run ${cmd}: ${result.error.message}`);
  if (result.status !== 0) {
    process.stderr.write(`${result.stdout}${result.stderr}`);
    fail(`'${[cmd, ...args].join(' ')}' failed with exit code ${result.status ?? result.signal}`);
  }
  return result;
}

function checkVersions() {
  const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
  const versionFile = join(root, 'python', 'snakepit_bridge', '_version.py');
  const found = {
    'libs/snakepit/package.json': JSON.parse(readFileSync(join(libDir, 'package.json'), 'utf8')).version,
    'python/snakepit_bridge/_version.py': /^__version__\s*=\s*["']([^"']+)["']/m.exec(readFileSync(versionFile, 'utf8'))?.[1],
  };
  const wrong = Object.entries(found).filter(([, v]) => v !== version);
  if (wrong.length > 0) {
    fail(`the version is ${version} (root package.json), but ${wrong.map(([file, v]) => `${file} says ${v ?? 'nothing'}`).join(' and ')}; set it there too`);
  }
  return version;
}

const version = checkVersions();
if (process.argv.includes('--check-versions')) process.exit(0);

for (const file of [join(libDir, 'README.md'), join(root, 'LICENSE')]) {
  if (!existsSync(file)) fail(`${relative(root, file)} is missing; the npm package ships it`);
}
if (spawnSync(venvPython, ['-c', 'import build'], { stdio: 'ignore' }).status !== 0) {
  fail(`${relative(root, venvPython)} has no 'build' module: run node scripts/setup.mjs (python/requirements.txt lists it)`);
}

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

// npm: a fresh compile into a staging folder, so nothing stale from libs/snakepit/dist
// (outputs of deleted sources, build info) can reach the tarball.
const staging = mkdtempSync(join(tmpdir(), 'snakepit-pack-'));
try {
  const pkgDir = join(staging, 'package');
  console.log('pack: compiling @snakepit/nestjs ...');
  run(join(root, 'node_modules', '.bin', 'tsc'), [
    '-p',
    join(libDir, 'tsconfig.lib.json'),
    '--outDir',
    join(pkgDir, 'dist'),
    '--tsBuildInfoFile',
    join(staging, 'lib.tsbuildinfo'),
  ]);
  // The published package.json has no scripts: they are this repository's (and prepack refuses a direct npm pack).
  const manifest = JSON.parse(readFileSync(join(libDir, 'package.json'), 'utf8'));
  delete manifest.scripts;
  writeFileSync(join(pkgDir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  cpSync(join(libDir, 'README.md'), join(pkgDir, 'README.md'));
  cpSync(join(root, 'LICENSE'), join(pkgDir, 'LICENSE'));
  cpSync(join(root, 'proto'), join(pkgDir, 'proto'), { recursive: true, filter: (src) => statSync(src).isDirectory() || src.endsWith('.proto') });

  const packed = run('npm', ['pack', pkgDir, '--pack-destination', outDir, '--json', '--ignore-scripts', '--loglevel=error'], { cwd: staging });
  const [info] = JSON.parse(packed.stdout);
  const files = info.files.map((file) => file.path);
  const leftovers = files.filter((file) => /\.(tsbuildinfo|map)$|\.spec\.|\/simulation\//.test(file));
  if (leftovers.length > 0) fail(`the npm package would ship build leftovers: ${leftovers.join(', ')}`);
  for (const target of Object.values(manifest.exports).flatMap((entry) => (typeof entry === 'string' ? [entry] : Object.values(entry)))) {
    if (!files.includes(target.replace(/^\.\//, ''))) fail(`package.json exports ${target}, which the tarball does not contain`);
  }
  for (const required of ['README.md', 'LICENSE', 'proto/snakepit/bridge/v1/bridge.proto']) {
    if (!files.includes(required)) fail(`the tarball has no ${required}`);
  }
  console.log(`pack: ${info.filename}: ${info.entryCount} files`);
} finally {
  rmSync(staging, { recursive: true, force: true });
}

// Python: sdist, then a wheel built from that sdist (python -m build's default), so the
// sdist is proven to build on its own.
console.log('pack: building snakepit-bridge ...');
run(venvPython, ['-m', 'build', '--outdir', outDir, join(root, 'python')]);

const expected = [`snakepit-nestjs-${version}.tgz`, `snakepit_bridge-${version}-py3-none-any.whl`, `snakepit_bridge-${version}.tar.gz`];
const artifacts = readdirSync(outDir).sort();
const absent = expected.filter((name) => !artifacts.includes(name));
if (absent.length > 0) fail(`expected ${absent.join(', ')} in ${relative(root, outDir)}, found ${artifacts.join(', ') || 'nothing'}`);

console.log(`pack: version ${version}, in ${relative(root, outDir)}/`);
for (const name of artifacts) console.log(`  ${name.padEnd(44)} ${(statSync(join(outDir, name)).size / 1024).toFixed(1).padStart(8)} kB`);

#!/usr/bin/env node
// npm run test:consumer [-- --artifacts DIR] [--keep]: installs the packed artifacts
// (dist/packages/, from npm run pack) into a fresh app outside this repository, the
// way a team would, and runs it:
//   1. copy the template test/consumer/ to a temporary folder;
//   2. npm install the @snakepit/nestjs tarball, the rest from the registry;
//   3. python3 -m venv .venv and pip install the snakepit-bridge wheel;
//   4. type-check (nodenext, and node10 resolution for older tsconfigs) and build with tsc;
//   5. import the entry points from ESM; run `snakepit doctor` on the app's adapter;
//   6. start it on loopback: one tool call, one bad call, GET /health;
//   7. SIGTERM: the app stops through Nest's shutdown hooks and leaves no process behind.
// Nothing but the artifacts and the template comes from the repository; every step
// is bounded in time; the temporary folder is removed (kept with --keep).
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argValue = (name) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const artifactsDir = resolve(argValue('--artifacts') ?? join(root, 'dist', 'packages'));
const keep = process.argv.includes('--keep');
const POOL_SIZE = 2;
const started = Date.now();
const deadline = started + 10 * 60_000;

function fail(message) {
  throw new Error(message);
}

function log(message) {
  console.log(`consumer-test [${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${message}`);
}

/** Time left for a step: its own bound, cut to what remains of the whole test's. */
function budget(ms) {
  const left = deadline - Date.now();
  if (left <= 0) fail('out of time (10 minutes for the whole test)');
  return Math.min(ms, left);
}

// The app must not see this repository: no npm project or workspace settings from an
// enclosing `npm run`, no Python path or virtualenv of the repository.
const env = Object.fromEntries(
  Object.entries(process.env).filter(
    ([key]) =>
      !/^npm_(package|lifecycle)_/.test(key) &&
      !['npm_config_local_prefix', 'npm_config_workspace', 'npm_config_workspaces', 'npm_config_include_workspace_root'].includes(key) &&
      !['INIT_CWD', 'NODE_PATH', 'PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV'].includes(key),
  ),
);

function run(cmd, args, cwd, timeoutMs, extraEnv = {}) {
  const result = spawnSync(cmd, args, { cwd, env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: budget(timeoutMs), maxBuffer: 64 * 1024 * 1024 });
  if (result.error) fail(`cannot run ${cmd}: ${result.error.message}`);
  if (result.status !== 0) {
    fail(`'${[cmd, ...args].join(' ')}' failed (${result.status ?? result.signal}):\n${result.stdout}${result.stderr}`);
  }
  return result.stdout;
}

function artifact(pattern, what) {
  const found = existsSync(artifactsDir) ? readdirSync(artifactsDir).filter((name) => pattern.test(name)) : [];
  if (found.length !== 1) fail(`expected one ${what} in ${artifactsDir}, found ${found.length}: run npm run pack first`);
  return join(artifactsDir, found[0]);
}

/** Live (not zombie) processes whose command line mentions `dir`: the app's workers, watchdog and host. */
function processesIn(dir) {
  const found = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state !== 'Z' && cmdline.some((arg) => arg.includes(dir))) found.push({ pid: Number(entry), ppid: Number(ppid), cmdline: cmdline.join(' ').trim() });
    } catch {
      // The process ended while it was being read.
    }
  }
  return found;
}

async function waitFor(what, timeoutMs, probe) {
  const until = Date.now() + budget(timeoutMs);
  for (let attempt = 0; Date.now() < until && attempt < 10_000; attempt++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((done) => setTimeout(done, 100));
  }
  fail(`timed out waiting for ${what}`);
}

async function request(url, init) {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(budget(30_000)) });
  return { status: response.status, body: await response.json() };
}

function expectEqual(what, actual, expected) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) fail(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

async function main(workDir) {
  const tarball = artifact(/^snakepit-nestjs-.+\.tgz$/, '@snakepit/nestjs tarball');
  const wheel = artifact(/^snakepit_bridge-.+\.whl$/, 'snakepit-bridge wheel');
  const appDir = join(workDir, 'app');
  cpSync(join(root, 'test', 'consumer'), appDir, { recursive: true });
  log(`app in ${appDir}`);

  run('npm', ['install', '--prefix', appDir, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], appDir, 300_000);
  const installed = JSON.parse(readFileSync(join(appDir, 'node_modules', '@snakepit', 'nestjs', 'package.json'), 'utf8'));
  // Cluster mode and metrics are optional: a plain app installs neither ioredis nor prom-client.
  const optional = ['ioredis', 'prom-client'].filter((name) => existsSync(join(appDir, 'node_modules', name)));
  if (optional.length > 0) fail(`npm installed the optional peers ${optional.join(', ')}`);
  log(`npm: @snakepit/nestjs ${installed.version} installed`);

  run('python3', ['-m', 'venv', join(appDir, '.venv')], appDir, 120_000);
  const python = join(appDir, '.venv', 'bin', 'python');
  run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', wheel], appDir, 300_000);
  log(`pip: ${run(python, ['-c', 'import snakepit_bridge; print(snakepit_bridge.__version__)'], appDir, 30_000).trim()} installed`);

  const tsc = join(appDir, 'node_modules', '.bin', 'tsc');
  // Older tsconfigs (`moduleResolution: node`) find the subpaths' types through typesVersions.
  run(
    tsc,
    ['-p', 'tsconfig.json', '--noEmit', '--module', 'commonjs', '--moduleResolution', 'node10', '--resolvePackageJsonExports', 'false'],
    appDir,
    120_000,
  );
  run(tsc, ['-p', 'tsconfig.json'], appDir, 120_000);
  log('tsc: types checked (nodenext and node10, skipLibCheck off), app built');

  // CommonJS package, ESM apps: named imports through Node's interop; the metrics entry, whose
  // optional peers this app lacks, refuses with their install command.
  const esm = run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
    import { SnakepitModule } from '@snakepit/nestjs';
    import { SnakepitHealthModule } from '@snakepit/nestjs/health';
    import { CLUSTER_DEFAULTS } from '@snakepit/nestjs/cluster';
    const metrics = await import('@snakepit/nestjs/metrics').then(() => 'loaded', (error) => error.message);
    console.log(JSON.stringify([typeof SnakepitModule, typeof SnakepitHealthModule, typeof CLUSTER_DEFAULTS, metrics]));`,
    ],
    appDir,
    30_000,
  );
  const [rootType, healthType, clusterType, metricsError] = JSON.parse(esm);
  expectEqual('ESM imports', [rootType, healthType, clusterType], ['function', 'function', 'object']);
  if (!metricsError.includes('npm install @willsoto/nestjs-prometheus prom-client')) fail(`@snakepit/nestjs/metrics without its peers: ${metricsError}`);
  log('ESM imports work; @snakepit/nestjs/metrics names its missing peers');

  // As the app's pool sees it: its adapter on PYTHONPATH, the interpreter .venv/bin/python (doctor's default).
  const snakepit = join(appDir, 'node_modules', '.bin', 'snakepit');
  const doctor = run(snakepit, ['doctor', '--adapter', 'consumer_models.text:TextAdapter'], appDir, 60_000, { PYTHONPATH: 'py' });
  if (!/tools \(flip, stats\)/.test(doctor)) fail(`snakepit doctor does not list the adapter's tool:\n${doctor}`);
  log('npx snakepit doctor: all checks pass');

  const host = spawn(process.execPath, [join(appDir, 'dist', 'main.js')], { cwd: appDir, env: { ...env, PORT: '0', POOL_SIZE: String(POOL_SIZE) } });
  const output = [];
  const exited = new Promise((done) => host.once('exit', (code, signal) => done({ code, signal })));
  for (const stream of [host.stdout, host.stderr]) stream.on('data', (data) => output.push(...String(data).split('\n').filter(Boolean)));
  try {
    const url = await waitFor('the app to listen', 60_000, () => {
      if (host.exitCode !== null) fail(`the app exited with ${host.exitCode}:\n${output.join('\n')}`);
      return output.map((line) => /consumer app listening at (http:\/\/\S+)/.exec(line)?.[1]).find(Boolean);
    });
    if (!/^http:\/\/(127\.0\.0\.1|localhost):\d+$/.test(url)) fail(`the app is not on loopback: ${url}`);
    log(`app listening at ${url}`);

    const call = await request(`${url}/text/stats`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'Red fish, blue fish, red fish and the old fish.', top: 2 }),
    });
    expectEqual('POST /text/stats', call, {
      status: 200,
      body: {
        words: 10,
        top: [
          ['fish', 4],
          ['red', 2],
        ],
      },
    });
    const bad = await request(`${url}/text/stats`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text": 42}' });
    expectEqual('POST /text/stats with a number as text', [bad.status, bad.body?.error?.code], [400, 'INVALID_ARGUMENTS']);
    log('tool call answered; bad arguments refused with INVALID_ARGUMENTS');

    // 4 MiB of bytes each way, over the threshold: through the run's shared-memory regions (no numpy needed).
    const flipped = await request(`${url}/text/flip`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"size": 4194304}' });
    expectEqual('POST /text/flip of 4 MiB', flipped, { status: 200, body: { size: 4194304, intact: true } });
    // The run's region directory, as the app's workers were told it.
    const regions = [...new Set(processesIn(appDir).flatMap((proc) => /--shm-in (\S+)\/[^/\s]+\.in\b/.exec(proc.cmdline)?.[1] ?? []))];
    if (existsSync('/dev/shm') && (regions.length !== 1 || !regions[0].startsWith('/dev/shm/snakepit-') || !existsSync(regions[0]))) {
      fail(`expected the workers' one shared-memory directory in /dev/shm, found ${JSON.stringify(regions)}`);
    }
    // The worker wrote the reversed 4 MiB into its own region (.out): the result did not ride in a gRPC message.
    if (existsSync('/dev/shm') && !readdirSync(regions[0]).some((file) => file.endsWith('.out') && statSync(join(regions[0], file)).size >= 4194304)) {
      fail(`no worker region in ${regions[0]} holds the 4 MiB result`);
    }
    log(`4 MiB of bytes through shared memory (${regions[0]}) and back intact`);

    const health = await request(`${url}/health`);
    expectEqual(
      'GET /health',
      [health.status, health.body.status, health.body.info?.pools?.status, health.body.info?.workers?.status],
      [200, 'ok', 'up', 'up'],
    );
    log('GET /health: 200, pools and workers up');

    const workers = processesIn(appDir).filter((proc) => proc.ppid === host.pid && proc.cmdline.includes('snakepit_bridge.worker'));
    if (workers.length !== POOL_SIZE) fail(`expected ${POOL_SIZE} Python workers of the app, found ${workers.length}`);

    host.kill('SIGTERM');
    const exit = await Promise.race([exited, new Promise((done) => setTimeout(() => done(undefined), budget(30_000)))]);
    if (!exit) fail(`the app did not exit within 30 s of SIGTERM:\n${output.slice(-20).join('\n')}`);
    // Nest re-raises the signal after its shutdown hooks, so the process ends by SIGTERM.
    if (!(exit.code === 0 || exit.signal === 'SIGTERM')) fail(`the app exited with ${exit.code ?? exit.signal}:\n${output.slice(-20).join('\n')}`);
    if (!output.includes('consumer app stopped (SIGTERM)')) fail(`the app did not stop through its shutdown hooks:\n${output.slice(-20).join('\n')}`);
    const describe = (procs) => procs.map((proc) => `${proc.pid} ${proc.cmdline}`).join('; ');
    // The workers are stopped before the host exits ...
    const python = processesIn(appDir).filter((proc) => proc.cmdline.includes('.venv'));
    if (python.length > 0) fail(`Python processes left after the app exited: ${describe(python)}`);
    // ... and the watchdog follows within moments, once it sees the host's end.
    await waitFor('the watchdog to exit', 5_000, () => (processesIn(appDir).length === 0 ? true : undefined)).catch(() =>
      fail(`processes left 5 s after the app exited: ${describe(processesIn(appDir))}`),
    );
    const leftRegions = regions.filter((dir) => existsSync(dir));
    if (leftRegions.length > 0) fail(`the shared-memory directory is left after the app exited: ${leftRegions.join(', ')}`);
    log(`SIGTERM: clean exit, ${POOL_SIZE} workers stopped, nothing left running or in /dev/shm`);
  } finally {
    if (host.exitCode === null && host.signalCode === null) host.kill('SIGKILL');
  }
}

const workDir = realpathSync(mkdtempSync(join(tmpdir(), 'snakepit-consumer-')));
if (workDir.startsWith(root + sep)) {
  console.error(`consumer-test: the temporary folder ${workDir} is inside the repository; set TMPDIR elsewhere`);
  process.exit(1);
}
let failed = false;
try {
  await main(workDir);
  log('passed');
} catch (error) {
  failed = true;
  console.error(`consumer-test: FAILED: ${error instanceof Error ? error.message : error}`);
} finally {
  // Anything of the app's still running (only after a failure) goes before its folder does.
  for (const proc of processesIn(workDir)) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // It ended on its own meanwhile.
    }
  }
  if (keep) console.log(`consumer-test: kept ${workDir}`);
  else rmSync(workDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);

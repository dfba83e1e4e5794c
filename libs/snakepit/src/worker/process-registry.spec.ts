import { expect } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@nestjs/common';
import { defaultInstanceName, defaultStateDir } from '../options/defaults';
import { SnakepitConfigError } from '../options/resolve-options';
import type { HostToolRegistry } from '../host-tools/host-tool.registry';
import { cleanUpRun, ProcessRegistry, processStartTime, readRegistry, type RegistryContents, type RegistryLogger } from './process-registry';
import { Worker } from './worker';

// The module object itself (not an import-star copy), so that a spy on it is what process-registry calls.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- only require() gives that object, not a copy
import cryptoModule = require('node:crypto');

function recordingLogger(): RegistryLogger & { warnings: Array<Record<string, unknown>>; infos: Array<Record<string, unknown>> } {
  const warnings: Array<Record<string, unknown>> = [];
  const infos: Array<Record<string, unknown>> = [];
  return { warnings, infos, warn: (message) => warnings.push(message), log: (message) => infos.push(message) };
}

/** A process in its own group, started with `env` (a worker of run `run` has SNAKEPIT_RUN_ID=run). */
function sleeper(env: Record<string, string> = {}): ChildProcess {
  return spawn('sleep', ['30'], { detached: true, stdio: 'ignore', env: { PATH: process.env.PATH, ...env } });
}

const exitOf = (child: ChildProcess) =>
  new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)));

/** The registry a dead host of run `runId` would have left. */
function leftRegistry(runId: string, workers: ChildProcess[], socketDir?: string): RegistryContents {
  return {
    runId,
    host: { pid: 999_999_999, startTime: 1 },
    workers: workers.map((child) => ({ pid: child.pid!, startTime: processStartTime(child.pid!)! })),
    socketDir,
  };
}

describe('ProcessRegistry', () => {
  let root: string;
  let stateDir: string;
  let path: string;
  const children: ChildProcess[] = [];

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'snakepit-registry-'));
    stateDir = join(root, 'state');
    path = join(stateDir, 'default.json');
  });

  afterEach(() => {
    for (const child of children.splice(0)) child.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
    jest.restoreAllMocks();
  });

  it('creates a missing state directory private (0700) and writes the file 0600', () => {
    new ProcessRegistry(path, 'run-a').claim();
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readRegistry(path)).toMatchObject({ runId: 'run-a', workers: [] });
  });

  it('refuses a second live owner, even in the same process', () => {
    new ProcessRegistry(path, 'run-a').claim();
    expect(() => new ProcessRegistry(path, 'run-b').claim()).toThrow(/Another live Snakepit host .* run run-a/);
  });

  describe('refuses a state directory others could write or redirect', () => {
    it('a pre-created 0777 directory', () => {
      mkdirSync(stateDir);
      chmodSync(stateDir, 0o777);
      const claim = () => new ProcessRegistry(path, 'run-a').claim();
      expect(claim).toThrow(SnakepitConfigError);
      expect(claim).toThrow(`stateDir ${stateDir} has mode 0777, not 0700`);
      expect(existsSync(path)).toBe(false);
    });

    it('a symlink, even to a private directory', () => {
      const target = join(root, 'elsewhere');
      mkdirSync(target, { mode: 0o700 });
      symlinkSync(target, stateDir);
      expect(() => new ProcessRegistry(path, 'run-a').claim()).toThrow(`stateDir ${stateDir} is a symbolic link`);
      expect(existsSync(join(target, 'default.json'))).toBe(false);
    });

    (process.geteuid?.() === 0 ? it : it.skip)('a directory owned by another user (needs root to chown)', () => {
      mkdirSync(stateDir, { mode: 0o700 });
      chownSync(stateDir, 65534, 65534);
      expect(() => new ProcessRegistry(path, 'run-a').claim()).toThrow(`stateDir ${stateDir} is owned by uid 65534, not by this process (uid 0)`);
    });
  });

  it('kills what a dead run left behind: only its own workers, by start time and run id', async () => {
    const leftover = sleeper({ SNAKEPIT_RUN_ID: 'run-old' });
    const recycled = sleeper({ SNAKEPIT_RUN_ID: 'run-old' });
    const unrelated = sleeper(); // the review's forged entry: right pid and start time, not a worker of that run
    const otherRun = sleeper({ SNAKEPIT_RUN_ID: 'run-other' });
    children.push(leftover, recycled, unrelated, otherRun);
    const contents = leftRegistry('run-old', [leftover, recycled, unrelated, otherRun]);
    // Pretend the second pid was reused by another process since.
    contents.workers[1].startTime += 1;
    mkdirSync(stateDir, { mode: 0o700 });
    writeFileSync(path, JSON.stringify(contents));

    const exited = exitOf(leftover);
    const { killed } = new ProcessRegistry(path, 'run-new').claim();
    expect(killed.map((entry) => entry.pid)).toEqual([leftover.pid]);
    await exited;
    for (const alive of [recycled, unrelated, otherRun]) expect(processStartTime(alive.pid!)).toBeDefined();
    expect(readRegistry(path)).toMatchObject({ runId: 'run-new', workers: [] });
  });

  it('removes a recorded socket directory only if it is a snakepit- directory directly under the socket base', () => {
    const socketBase = join(root, 'sockets');
    const own = join(socketBase, 'snakepit-abc123');
    const outside = join(root, 'victim', 'snakepit-important');
    const notOurs = join(socketBase, 'important');
    for (const dir of [own, outside, notOurs]) mkdirSync(dir, { recursive: true });
    const nested = join(own, 'snakepit-nested');
    mkdirSync(nested);

    for (const socketDir of [outside, notOurs, nested, `${socketBase}/../victim/snakepit-important`]) {
      cleanUpRun(leftRegistry('run-old', [], socketDir), { socketBase });
    }
    // No socket base (tcp transport): nothing is removed.
    cleanUpRun(leftRegistry('run-old', [], own), {});
    expect([own, outside, notOurs, nested].every((dir) => existsSync(dir))).toBe(true);

    // A forged registry naming a directory outside the base, read through claim().
    mkdirSync(stateDir, { mode: 0o700 });
    writeFileSync(path, JSON.stringify(leftRegistry('run-old', [], outside)));
    new ProcessRegistry(path, 'run-new', { socketBase }).claim();
    expect(existsSync(outside)).toBe(true);

    cleanUpRun(leftRegistry('run-old', [], own), { socketBase });
    expect(existsSync(own)).toBe(false);
  });

  it('removes a recorded shared-memory directory under the same rule, with its own base', () => {
    const sharedBase = join(root, 'shm');
    const own = join(sharedBase, 'snakepit-def456');
    const outside = join(root, 'victim', 'snakepit-data');
    for (const dir of [own, outside]) mkdirSync(dir, { recursive: true });
    writeFileSync(join(own, 'pool-1.in'), 'region');
    const left = (sharedDir: string): RegistryContents => ({ ...leftRegistry('run-old', []), sharedDir });

    cleanUpRun(left(outside), { sharedBase });
    // The socket base is not the shared-memory base: a shared directory is never judged by the other's.
    cleanUpRun(left(own), { socketBase: sharedBase });
    expect([own, outside].every((dir) => existsSync(dir))).toBe(true);

    mkdirSync(stateDir, { mode: 0o700 });
    writeFileSync(path, JSON.stringify(left(own)));
    new ProcessRegistry(path, 'run-new', { sharedBase }).claim();
    expect(existsSync(own)).toBe(false);
    expect(existsSync(outside)).toBe(true);
  });

  it('never writes through a symlink: one at the temp name fails the write, one at the registry path is replaced', () => {
    const victim = join(root, 'victim.txt');
    writeFileSync(victim, 'precious');
    const logger = recordingLogger();
    const registry = new ProcessRegistry(path, 'run-a');
    registry.claim(logger);

    // A symlink planted at the very temp name the next write picks.
    const fixed = Buffer.from('00112233aabb', 'hex');
    jest.spyOn(cryptoModule, 'randomBytes').mockReturnValue(fixed as never);
    symlinkSync(victim, `${path}.${process.pid}.00112233aabb.tmp`);
    const child = sleeper();
    children.push(child);
    expect(() => registry.add(child.pid!, 'w-1')).not.toThrow();
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(logger.warnings).toEqual([
      expect.objectContaining({ msg: expect.stringContaining('could not write the process registry'), reason: expect.stringContaining('EEXIST') }),
    ]);
    jest.restoreAllMocks();

    // A symlink at the registry path itself: rename replaces the link, the target is untouched.
    rmSync(path);
    symlinkSync(victim, path);
    expect(readRegistry(path)).toBeUndefined();
    registry.remove(child.pid!);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(lstatSync(path).isSymbolicLink()).toBe(false);
    expect(readRegistry(path)).toMatchObject({ runId: 'run-a', workers: [] });
  });

  it('re-creates a state directory deleted mid-run on the next write, warns once a minute, never throws', () => {
    const logger = recordingLogger();
    const registry = new ProcessRegistry(path, 'run-a');
    registry.claim(logger);
    const [first, second] = [sleeper(), sleeper()];
    children.push(first, second);

    rmSync(stateDir, { recursive: true });
    expect(() => registry.add(first.pid!, 'w-1')).not.toThrow();
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    expect(readRegistry(path)?.workers.map((w) => w.pid)).toEqual([first.pid]);

    rmSync(stateDir, { recursive: true });
    expect(() => registry.add(second.pid!, 'w-2')).not.toThrow();
    expect(readRegistry(path)?.workers.map((w) => w.pid)).toEqual([first.pid, second.pid]);
    // Two re-creations, one warning: the rest are rate-limited.
    expect(logger.warnings).toEqual([expect.objectContaining({ msg: expect.stringContaining('re-created'), stateDir })]);
  });

  it('a write that fails (the directory replaced by a file, as ENOSPC would) is logged, not thrown, and recovers', () => {
    const logger = recordingLogger();
    const registry = new ProcessRegistry(path, 'run-a');
    registry.claim(logger);
    const child = sleeper();
    children.push(child);

    rmSync(stateDir, { recursive: true });
    writeFileSync(stateDir, 'not a directory');
    expect(() => registry.add(child.pid!, 'w-1')).not.toThrow();
    expect(() => registry.remove(child.pid!)).not.toThrow();
    expect(() => registry.add(child.pid!, 'w-1')).not.toThrow();
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toMatchObject({ msg: expect.stringContaining('could not write the process registry'), failed_writes: 1 });

    rmSync(stateDir);
    registry.remove(child.pid!);
    expect(readRegistry(path)).toMatchObject({ runId: 'run-a', workers: [] });
    expect(logger.infos).toEqual([expect.objectContaining({ msg: 'the process registry is written again', failed_writes: 3 })]);
  });

  it('a directory made insecure mid-run (0777) gets no write: refused like at start, logged, not thrown', () => {
    const logger = recordingLogger();
    const registry = new ProcessRegistry(path, 'run-a');
    registry.claim(logger);
    const before = readFileSync(path, 'utf8');
    chmodSync(stateDir, 0o777);
    const child = sleeper();
    children.push(child);
    expect(() => registry.add(child.pid!, 'w-1')).not.toThrow();
    expect(readFileSync(path, 'utf8')).toBe(before);
    expect(logger.warnings[0]).toMatchObject({ reason: expect.stringContaining('has mode 0777') });
  });
});

describe('Worker.start with a registry that cannot track', () => {
  it('stops the spawned process instead of leaving it running unknown to the pool', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snakepit-track-'));
    // Stands in for Python: ignores the worker arguments and would run for 30 s.
    const fakePython = join(dir, 'python');
    writeFileSync(fakePython, '#!/bin/sh\nexec sleep 30\n', { mode: 0o700 });
    let trackedPid = 0;
    const exits: boolean[] = [];
    try {
      const start = Worker.start({
        workerId: 'w-1',
        pool: 'default',
        python: fakePython,
        adapter: 'pkg.mod:Adapter',
        address: '127.0.0.1:0',
        capacity: 1,
        logLevel: 'info',
        env: { PATH: process.env.PATH ?? '' },
        maxMessageBytes: 1024 * 1024,
        startTimeoutMs: 10_000,
        shutdownGraceMs: 1_000,
        memoryLimitMb: 0,
        token: 'token',
        logger: { warn: () => undefined, log: () => undefined, debug: () => undefined, error: () => undefined } as unknown as Logger,
        heartbeat: { intervalMs: 1_000, timeoutMs: 1_000, maxMissed: 3, onMissed: () => undefined },
        hostTools: {} as HostToolRegistry,
        hostCallTimeoutMs: 1_000,
        registry: {
          track: (pid) => {
            trackedPid = pid;
            throw new Error('ENOSPC: no space left on device');
          },
          untrack: () => undefined,
        },
        onExit: (_worker, _exit, expected) => exits.push(expected),
      });
      await expect(start).rejects.toMatchObject({ code: 'WORKER_UNAVAILABLE', message: expect.stringContaining('ENOSPC') });
      expect(trackedPid).toBeGreaterThan(0);
      expect(processStartTime(trackedPid)).toBeUndefined();
      expect(exits).toEqual([true]);
    } finally {
      if (trackedPid > 0 && processStartTime(trackedPid) !== undefined) process.kill(trackedPid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('default instanceName and stateDir', () => {
  it('instanceName: app-<8 hex>, the same for the same script and directory, different otherwise', () => {
    const name = defaultInstanceName('/srv/app/dist/main.js', '/srv/app');
    expect(name).toMatch(/^app-[0-9a-f]{8}$/);
    expect(defaultInstanceName('dist/main.js', '/srv/app')).toBe(name);
    expect(defaultInstanceName('/srv/app/node_modules/jest/bin/jest.js', '/srv/app')).not.toBe(name);
    expect(defaultInstanceName('/srv/other/dist/main.js', '/srv/other')).not.toBe(name);
    // A shared launcher run from two apps' directories.
    expect(defaultInstanceName('/usr/bin/ts-node', '/srv/a')).not.toBe(defaultInstanceName('/usr/bin/ts-node', '/srv/b'));
    expect(defaultInstanceName(undefined, '/srv/app')).toMatch(/^app-[0-9a-f]{8}$/);
  });

  it('instanceName follows symlinks to the real script', () => {
    const dir = mkdtempSync(join(tmpdir(), 'snakepit-name-'));
    try {
      writeFileSync(join(dir, 'main.js'), '');
      symlinkSync(join(dir, 'main.js'), join(dir, 'link.js'));
      expect(defaultInstanceName(join(dir, 'link.js'), dir)).toBe(defaultInstanceName(join(dir, 'main.js'), dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stateDir: $XDG_RUNTIME_DIR/snakepit when set (and absolute), else snakepit-<uid> in the temp dir', () => {
    const uid = process.geteuid!();
    expect(defaultStateDir({ XDG_RUNTIME_DIR: '/run/user/1000' })).toBe('/run/user/1000/snakepit');
    expect(defaultStateDir({})).toBe(join(tmpdir(), `snakepit-${uid}`));
    expect(defaultStateDir({ XDG_RUNTIME_DIR: '' })).toBe(join(tmpdir(), `snakepit-${uid}`));
    expect(defaultStateDir({ XDG_RUNTIME_DIR: 'relative/dir' })).toBe(join(tmpdir(), `snakepit-${uid}`));
  });
});

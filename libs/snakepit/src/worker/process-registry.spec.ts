import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessRegistry, processStartTime, readRegistry } from './process-registry';

describe('ProcessRegistry', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'snakepit-registry-'));
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a second live owner, even in the same process', () => {
    const path = join(dir, 'default.json');
    new ProcessRegistry(path, 'run-a').claim();
    expect(() => new ProcessRegistry(path, 'run-b').claim()).toThrow(/Another live Snakepit host .* run run-a/);
  });

  it('kills what a dead run left behind, and only pids whose start time still matches', async () => {
    const path = join(dir, 'default.json');
    const leftover = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    const recycled = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    try {
      const previous = new ProcessRegistry(path, 'run-old');
      previous.claim();
      previous.add(leftover.pid!, 'w-1');
      previous.add(recycled.pid!, 'w-2');
      // Pretend the owner died and the second pid was reused by another process since.
      const contents = readRegistry(path)!;
      contents.host = { pid: 999_999_999, startTime: 1 };
      contents.workers[1].startTime += 1;
      writeFileSync(path, JSON.stringify(contents));

      const exited = new Promise((resolve) => leftover.once('exit', resolve));
      const { killed } = new ProcessRegistry(path, 'run-new').claim();
      expect(killed.map((entry) => entry.pid)).toEqual([leftover.pid]);
      await exited;
      expect(processStartTime(recycled.pid!)).toBeDefined();
      expect(readRegistry(path)).toMatchObject({ runId: 'run-new', workers: [] });
    } finally {
      leftover.kill('SIGKILL');
      recycled.kill('SIGKILL');
    }
  });
});

import { expect } from '@jest/globals';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkSharedMemory } from './shared-memory-check';

describe('checkSharedMemory', () => {
  let base: string;

  beforeEach(() => {
    base = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'sp-cli-shm-'));
  });

  afterEach(() => {
    rmSync(base, { recursive: true, force: true });
  });

  it('passes a writable directory with room, naming the room, and leaves nothing behind', async () => {
    expect(await checkSharedMemory(base, 1)).toMatchObject({ name: 'shared-memory', status: 'PASS', message: expect.stringMatching(/MiB free$/) });
    expect(readdirSync(base)).toEqual([]);
  });

  it('warns, never fails, where regions cannot be made: gRPC messages still carry the blobs', async () => {
    writeFileSync(join(base, 'file'), '');
    for (const dir of [join(base, 'missing'), join(base, 'file')]) {
      expect(await checkSharedMemory(dir)).toMatchObject({
        status: 'WARN',
        message: expect.stringContaining('gRPC messages'),
        fix: expect.stringContaining('sharedMemoryDir'),
      });
    }
  });

  it('warns when the file system has less room than a few large calls need', async () => {
    expect(await checkSharedMemory(base, Number.MAX_SAFE_INTEGER)).toMatchObject({ status: 'WARN', fix: expect.stringContaining('--shm-size') });
  });
});

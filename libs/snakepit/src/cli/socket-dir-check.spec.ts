import { expect } from '@jest/globals';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_SOCKET_PATH } from '../worker/worker-runtime';
import { checkSocketDir } from './socket-dir-check';

describe('checkSocketDir', () => {
  let base: string;

  beforeEach(() => {
    base = mkdtempSync('/tmp/sp-cli-');
  });

  afterEach(() => {
    rmSync(base, { recursive: true, force: true });
  });

  /** A directory whose path is `length` bytes long. */
  function dirOfLength(length: number): string {
    const dir = join(base, 'd'.repeat(length - base.length - 1));
    mkdirSync(dir);
    return dir;
  }

  it('passes a short private directory and leaves nothing behind', async () => {
    expect(await checkSocketDir(base)).toMatchObject({ name: 'socket-dir', status: 'PASS' });
    expect(readdirSync(base)).toEqual([]);
  });

  it('fails a directory that does not exist or is a file', async () => {
    expect(await checkSocketDir(join(base, 'missing'))).toMatchObject({
      status: 'FAIL',
      message: expect.stringContaining('ENOENT'),
      fix: expect.stringContaining('--socket-dir'),
    });
    writeFileSync(join(base, 'file'), '');
    expect(await checkSocketDir(join(base, 'file'))).toMatchObject({ status: 'FAIL', message: `${join(base, 'file')} is not a directory` });
  });

  it('fails a world-writable directory without the sticky bit, and accepts one with it', async () => {
    chmodSync(base, 0o777);
    expect(await checkSocketDir(base)).toMatchObject({
      status: 'FAIL',
      message: expect.stringContaining('no sticky bit'),
      fix: `chmod +t ${base}, or pass --socket-dir naming a directory only you can write`,
    });
    chmodSync(base, 0o1777);
    expect((await checkSocketDir(base)).status).toBe('PASS');
  });

  it(`fails where worker socket paths would pass ${MAX_SOCKET_PATH} bytes, and warns where long pool names would`, async () => {
    // <dir>/snakepit-XXXXXX/<pool>-<n>.sock: 100 - 50 - '/snakepit-XXXXXX/'.length - '-123456.sock'.length = 21
    expect(await checkSocketDir(dirOfLength(80))).toMatchObject({ status: 'FAIL', message: expect.stringContaining(`${MAX_SOCKET_PATH} bytes`) });
    expect(await checkSocketDir(dirOfLength(50))).toMatchObject({ status: 'WARN', message: expect.stringContaining('pool names of at most 21 characters') });
  });
});

import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { MAX_SOCKET_PATH } from '../worker/worker-runtime';
import { fail, pass, warn, type Check } from './check';

/** Worker ids are `<pool>-<n>`; pool names have at most 32 characters and n grows with every restart. */
const LONGEST_POOL_NAME = 32;
const MANY_RESTARTS_SUFFIX = '-123456';
const SAMPLE_WORKER_ID = 'default-1';

const NAME = 'socket-dir';

/**
 * Does what the runtime does at start — a private mkdtemp directory under
 * `dir`, a unix socket in it — and checks that worker socket paths fit.
 */
export async function checkSocketDir(dir: string): Promise<Check> {
  const chooseAnother = `create it or pass --socket-dir (the module option \`socketDir\`) naming a short, writable directory`;
  let mode: number;
  try {
    const stats = await stat(dir);
    if (!stats.isDirectory()) return fail(NAME, `${dir} is not a directory`, chooseAnother);
    mode = stats.mode;
  } catch (error) {
    return fail(NAME, `${dir} cannot be used: ${errorMessage(error)}`, chooseAnother);
  }
  // Anyone could rename or delete Snakepit's private directory in a world-writable directory without the sticky bit.
  if ((mode & 0o002) !== 0 && (mode & 0o1000) === 0) {
    return fail(NAME, `${dir} is writable by every user and has no sticky bit`, `chmod +t ${dir}, or pass --socket-dir naming a directory only you can write`);
  }
  let privateDir: string;
  try {
    privateDir = await mkdtemp(join(dir, 'snakepit-'));
  } catch (error) {
    return fail(NAME, `cannot create a directory in ${dir}: ${errorMessage(error)}`, chooseAnother);
  }
  try {
    return await checkSocketsIn(privateDir, dir);
  } finally {
    await rm(privateDir, { recursive: true, force: true });
  }
}

async function checkSocketsIn(privateDir: string, dir: string): Promise<Check> {
  const shorter = 'pass --socket-dir (the module option `socketDir`) naming a shorter directory, e.g. /tmp';
  const room = MAX_SOCKET_PATH - Buffer.byteLength(join(privateDir, '.sock'));
  if (room < SAMPLE_WORKER_ID.length) {
    return fail(NAME, `socket paths in ${dir} would be longer than the ${MAX_SOCKET_PATH} bytes Snakepit allows`, shorter);
  }
  try {
    await listenOnce(join(privateDir, `${SAMPLE_WORKER_ID}.sock`));
  } catch (error) {
    return fail(NAME, `cannot create a unix socket in ${dir}: ${errorMessage(error)}`, `${shorter} on a local file system, or use transport: 'tcp'`);
  }
  const longestPoolName = room - MANY_RESTARTS_SUFFIX.length;
  if (longestPoolName < LONGEST_POOL_NAME) {
    return warn(NAME, `${dir} works, but socket paths fit only for pool names of at most ${longestPoolName} characters`, shorter);
  }
  return pass(NAME, `${dir}: private directories and unix sockets can be created, and socket paths fit`);
}

function listenOnce(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(path, () => server.close(() => resolve()));
  });
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

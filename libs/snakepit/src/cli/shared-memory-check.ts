import { mkdtemp, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { SHARED_MEMORY_DEFAULTS } from '../options/defaults';
import { pass, warn, type Check } from './check';

const NAME = 'shared-memory';
/** Less room than this on the file system and a few large calls in flight fill it (Docker's default /dev/shm is 64 MiB). */
const ENOUGH_BYTES = 256 * 1024 * 1024;
const MIB = 1024 * 1024;

/**
 * Does what the runtime does at start — a private mkdtemp directory under
 * `dir` — and reports the room left there. Never a FAIL: without shared
 * memory, large arrays and bytes still travel, in gRPC messages.
 */
export async function checkSharedMemory(dir: string = SHARED_MEMORY_DEFAULTS.dir, enoughBytes = ENOUGH_BYTES): Promise<Check> {
  const fallback = 'large arrays and bytes will travel in gRPC messages (slower)';
  const fix = `run on Linux with a writable tmpfs at ${dir}, or set the module option \`sharedMemoryDir\` to one`;
  try {
    if (!(await stat(dir)).isDirectory()) return warn(NAME, `${dir} is not a directory: ${fallback}`, fix);
    await rm(await mkdtemp(join(dir, 'snakepit-')), { recursive: true, force: true });
  } catch (error) {
    return warn(NAME, `${dir} cannot hold the regions (${error instanceof Error ? error.message : String(error)}): ${fallback}`, fix);
  }
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  if (free < enoughBytes) {
    return warn(
      NAME,
      `${dir} has ${Math.floor(free / MIB)} MiB free: large calls in flight may fail with RESOURCE_EXHAUSTED`,
      'give it more room (docker run --shm-size=1g, or a Kubernetes emptyDir with medium: Memory), or lower sharedMemory.regionBytes',
    );
  }
  return pass(NAME, `${dir}: private region directories can be created, ${Math.floor(free / MIB)} MiB free`);
}

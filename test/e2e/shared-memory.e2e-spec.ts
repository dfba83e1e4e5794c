import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { HostTool, NdArray, PoolService, SnakepitError, type WorkerInfo } from '@snakepit/nestjs';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embeddedSnakepit } from '../helpers/embedded-snakepit';
import { eventually } from '../helpers/sample-app';

jest.setTimeout(90_000);

const KIB = 1024;
const MIB = 1024 * KIB;

/** The failure of a call that must fail, as a SnakepitError. */
async function failure(call: Promise<unknown>): Promise<SnakepitError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof SnakepitError) return error;
    throw error;
  }
  throw new Error('the call succeeded');
}

/** Float32 values that survive x * 2 exactly, different at every index. */
function ramp(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => (i % 4096) - 2048);
}

/** A region file's mode bits and size. */
function fileInfo(path: string): { mode: number; size: number } {
  const stats = statSync(path);
  return { mode: stats.mode & 0o777, size: stats.size };
}

@Injectable()
class LargeHostTools {
  /** Called from Python through the showcase's call_host: a large array in from the worker's region, one twice its size back through the host's. */
  @HostTool('tile_on_host', { parameters: [{ name: 'x', type: 'ndarray', dtype: 'float32' }] })
  tileOnHost({ x }: { x: NdArray<'float32'> }): NdArray<'float32'> {
    const y = new Float32Array(x.size * 2);
    y.set(x.data);
    y.set(x.data, x.size);
    return NdArray.from(y);
  }
}

/**
 * The shared-memory data plane with real Python workers: blobs over the
 * threshold go through the per-worker regions, both ways and in stream chunks;
 * faults (a full region, a cancel, a killed worker) fail that call only and
 * leave nothing behind. The regions live in a base directory of this spec's
 * own on tmpfs (/dev/shm when there is one), so what is left there is exactly
 * what this spec's runs left.
 */
describe('shared memory between the host and its workers', () => {
  const base = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'snakepit-e2e-shm-'));
  let moduleRef: TestingModule;
  let pools: PoolService;
  const runDir = (): string => {
    const dirs = readdirSync(base);
    expect(dirs).toHaveLength(1);
    return join(base, dirs[0]);
  };
  const worker = (pool: string): WorkerInfo => pools.poolInfo().find((info) => info.name === pool)!.workers[0];
  const regionFiles = (workerId: string) => ({ in: join(runDir(), `${workerId}.in`), out: join(runDir(), `${workerId}.out`) });

  beforeAll(async () => {
    moduleRef = await embeddedSnakepit(
      'shm',
      [
        {
          name: 'shm',
          size: 1,
          adapter: 'snakepit_bridge.examples.showcase:ShowcaseAdapter',
          maxPayloadBytes: 2 * MIB,
          sharedMemory: { thresholdBytes: 64 * KIB, regionBytes: 16 * MIB },
        },
        {
          name: 'tight',
          size: 1,
          adapter: 'snakepit_bridge.examples.showcase:ShowcaseAdapter',
          profile: 'thread',
          threadsPerWorker: 4,
          maxPayloadBytes: 1 * MIB,
          sharedMemory: { thresholdBytes: 64 * KIB, regionBytes: 1 * MIB },
        },
        { name: 'inline', size: 1, adapter: 'snakepit_bridge.examples.showcase:ShowcaseAdapter', maxPayloadBytes: 2 * MIB, sharedMemory: false },
      ],
      [LargeHostTools],
      { sharedMemoryDir: base },
    );
    pools = moduleRef.get(PoolService);
  });

  let closed = false;
  afterAll(async () => {
    if (!closed) await moduleRef?.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('keeps each worker two private region files in a private run directory; a pool without shared memory has none', () => {
    expect(statSync(runDir()).mode & 0o777).toBe(0o700);
    const files = readdirSync(runDir()).sort();
    expect(files).toEqual([`${worker('shm').id}.in`, `${worker('shm').id}.out`, `${worker('tight').id}.in`, `${worker('tight').id}.out`].sort());
    for (const file of files) expect(fileInfo(join(runDir(), file)).mode).toBe(0o600);
  });

  it('moves an n-d array both ways through the regions: dtype, shape and values intact', async () => {
    const x = NdArray.from(ramp(256 * 1024), [512, 512]);
    const { result, pid } = await pools.execute<NdArray>('array_scale', { x, factor: 2 }, { pool: 'shm' });
    expect(result).toBeInstanceOf(NdArray);
    expect([result.dtype, result.shape]).toEqual(['float32', [512, 512]]);
    const want = x.data.map((v) => v * 2);
    expect(Buffer.from(result.bytes).equals(Buffer.from(want.buffer))).toBe(true);
    // Both regions hold the 1 MiB array's pages now: it went through them, not through the gRPC message.
    const files = regionFiles(worker('shm').id);
    expect(fileInfo(files.in).size).toBeGreaterThanOrEqual(MIB);
    expect(fileInfo(files.out).size).toBeGreaterThanOrEqual(MIB);
    expect(worker('shm')).toMatchObject({ pid, sharedMemoryBytes: 0 });
  });

  it('carries bytes over the threshold, nested and as the whole arguments', async () => {
    const data = Buffer.alloc(300 * KIB, 0xab);
    data[7] = 1;
    const nested = await pools.execute<Buffer[]>('bytes_split', { data, size: 200 * KIB }, { pool: 'shm' });
    expect(Buffer.concat(nested.result).equals(data)).toBe(true);
    const whole = await pools.execute<Buffer>('reverse_bytes', data, { pool: 'shm' });
    expect(whole.result.equals(Buffer.from(data).reverse())).toBe(true);
    expect((await pools.execute<number>('bytes_len', { data }, { pool: 'shm' })).result).toBe(data.length);
    const made = (await pools.execute<Buffer>('bytes_make', { n: 300 * KIB, fill: 5 }, { pool: 'shm' })).result;
    expect(Buffer.isBuffer(made) && made.length === 300 * KIB && made.every((byte) => byte === 5)).toBe(true);
  });

  it('brings back a result larger than one gRPC message; without shared memory the same call is PAYLOAD_TOO_LARGE', async () => {
    const n = 2 * MIB; // 8 MiB of float32, four times maxPayloadBytes
    const { result } = await pools.execute<NdArray>('array_fill', { n, value: 0.5 }, { pool: 'shm' });
    expect(result.shape).toEqual([n]);
    expect((result.data as Float32Array).every((v) => v === 0.5)).toBe(true);
    const inline = await failure(pools.execute('array_fill', { n, value: 0.5 }, { pool: 'inline' }));
    expect(inline.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('streams array chunks through the worker region, each one whole', async () => {
    const x = ramp(384 * 1024);
    const parts: Float32Array[] = [];
    for await (const chunk of pools.stream<NdArray>('array_split', { x, parts: 4 }, { pool: 'shm' })) parts.push(chunk.data.data as Float32Array);
    expect(parts.map((part) => part.length)).toEqual([98304, 98304, 98304, 98304]);
    const joined = new Float32Array(x.length);
    parts.reduce((at, part) => (joined.set(part, at), at + part.length), 0);
    expect(Buffer.from(joined.buffer).equals(Buffer.from(x.buffer))).toBe(true);
  });

  it('carries large arrays to a host tool and back: the worker region out, the host region in, the result out again', async () => {
    const x = ramp(192 * 1024); // 768 KiB to the host, 1.5 MiB back (under maxPayloadBytes, which caps what the host sends)
    const { result } = await pools.execute<NdArray>('call_host', { name: 'tile_on_host', args: { x } }, { pool: 'shm' });
    expect([result.dtype, result.shape]).toEqual(['float32', [2 * x.length]]);
    const y = result.data as Float32Array;
    expect(y.subarray(0, x.length).every((v, i) => v === x[i]) && y.subarray(x.length).every((v, i) => v === x[i])).toBe(true);
    expect(worker('shm').sharedMemoryBytes).toBe(0);
  });

  it('fails a call its full host region cannot take with RESOURCE_EXHAUSTED, and runs the call holding it', async () => {
    const pid = worker('tight').pid;
    const x = ramp(180 * 1024); // 720 KiB: one fits the 1 MiB region, two do not
    const holding = pools.execute<number>('array_hold', { x, ms: 1_500 }, { pool: 'tight' });
    await eventually(() => worker('tight').sharedMemoryBytes >= x.byteLength || undefined, 10_000, 10);
    const refused = await failure(pools.execute('array_sum', { x }, { pool: 'tight' }));
    expect(refused.code).toBe('RESOURCE_EXHAUSTED');
    expect(refused.details).toMatchObject({ option: 'sharedMemory.regionBytes', bytes: x.byteLength });
    expect((await holding).result).toBe(x.reduce((a, b) => a + b, 0));
    expect((await pools.execute<number>('array_sum', { x }, { pool: 'tight' })).result).toBe(x.reduce((a, b) => a + b, 0));
    expect(worker('tight')).toMatchObject({ pid, sharedMemoryBytes: 0 });
  });

  it('answers a result its worker region cannot take with RESOURCE_EXHAUSTED for that call only', async () => {
    const pid = worker('tight').pid;
    const refused = await failure(pools.execute('array_fill', { n: 512 * 1024, value: 1 }, { pool: 'tight' })); // 2 MiB into a 1 MiB region
    expect(refused.code).toBe('RESOURCE_EXHAUSTED');
    expect(refused.details).toMatchObject({ option: 'sharedMemory.regionBytes' });
    expect((await pools.execute<NdArray>('array_fill', { n: 128 * 1024, value: 1 }, { pool: 'tight' })).result.shape).toEqual([128 * 1024]);
    expect(worker('tight').pid).toBe(pid);
  });

  it('releases a cancelled call’s slot once the worker confirms it stopped', async () => {
    const pid = worker('shm').pid;
    const aborter = new AbortController();
    const call = pools.execute('array_hold', { x: ramp(256 * 1024), ms: 20_000 }, { pool: 'shm', signal: aborter.signal });
    await eventually(() => worker('shm').sharedMemoryBytes > 0 || undefined, 10_000, 10);
    aborter.abort();
    expect((await failure(call)).code).toBe('CANCELLED');
    await eventually(() => worker('shm').sharedMemoryBytes === 0 || undefined, 10_000, 10);
    expect(worker('shm').pid).toBe(pid);
  });

  it('fails the call of a worker killed mid-call with WORKER_CRASHED, removes its regions and gives its replacement new ones', async () => {
    const dead = worker('shm');
    const deadFiles = regionFiles(dead.id);
    const call = pools.execute('array_hold', { x: ramp(256 * 1024), ms: 20_000 }, { pool: 'shm' });
    await eventually(() => worker('shm').sharedMemoryBytes > 0 || undefined, 10_000, 10);
    process.kill(dead.pid, 'SIGKILL');
    expect((await failure(call)).code).toBe('WORKER_CRASHED');
    const replacement = await eventually(() => {
      const next = worker('shm');
      return next && next.id !== dead.id && next.state === 'ready' ? next : undefined;
    }, 30_000);
    expect(existsSync(deadFiles.in) || existsSync(deadFiles.out)).toBe(false);
    const files = regionFiles(replacement.id);
    expect(existsSync(files.in) && existsSync(files.out)).toBe(true);
    expect((await pools.execute<number>('array_sum', { x: ramp(256 * 1024) }, { pool: 'shm' })).result).toBe(ramp(256 * 1024).reduce((a, b) => a + b, 0));
  });

  it('leaks no file descriptor and no mapping over 200 large calls', async () => {
    const x = NdArray.from(ramp(256 * 1024));
    const run = async () => (await pools.execute<NdArray>('array_scale', { x, factor: 2 }, { pool: 'shm' })).result;
    await run();
    const fds = readdirSync('/proc/self/fd').length;
    const { pid } = worker('shm');
    const mappings = () =>
      readFileSync(`/proc/${pid}/maps`, 'utf8')
        .split('\n')
        .filter((line) => line.includes(runDir())).length;
    const mapped = mappings();
    for (let i = 0; i < 200; i++) await run();
    expect(readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(fds + 2);
    // One mapping per region at most, whatever the count of calls (a grown region is mapped again once).
    expect(mappings()).toBeLessThanOrEqual(Math.max(mapped, 2));
  });

  it('removes the run directory when the module stops', async () => {
    const dir = runDir();
    closed = true;
    await moduleRef.close();
    expect(existsSync(dir)).toBe(false);
    expect(readdirSync(base)).toEqual([]);
  });
});

import { closeSync, constants, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SnakepitError } from '../errors/snakepit-error';
import type { Blob } from '../bridge/generated/snakepit/bridge/v1/Blob';
import type { Payload, Payload__Output } from '../bridge/generated/snakepit/bridge/v1/Payload';
import type { SharedPayloads, SharedMemorySettings } from './shared-memory.interfaces';
import { SlotAllocator } from './slot-allocator';

/** Where the worker-region bytes a worker points at do not hold together. */
function malformedSlot(reason: string): SnakepitError {
  return new SnakepitError('SERIALIZATION_ERROR', `A worker's shared-memory slot is malformed: ${reason}`, { details: { reason } });
}

/**
 * One worker's two shared-memory regions, host side. Node cannot map memory,
 * so the host moves blobs with one pwrite into the worker's `.in` file (which
 * the worker maps and reads in place, zero-copy into numpy) and one pread out
 * of the worker's `.out` file: one copy each way, against gRPC's several
 * (encode, socket, decode) and its message-size limit. Both files are made
 * here, mode 0600 in the run's 0700 directory, and removed by close().
 */
export class WorkerRegions implements SharedPayloads {
  readonly inPath: string;
  readonly outPath: string;
  private readonly inFd: number;
  private readonly outFd: number;
  private readonly allocator: SlotAllocator;
  /** The host-region slots each call holds, by the request id that owns them. */
  private readonly owned = new Map<number, number[]>();
  private closed = false;

  constructor(
    dir: string,
    workerId: string,
    private readonly settings: SharedMemorySettings,
  ) {
    this.inPath = join(dir, `${workerId}.in`);
    this.outPath = join(dir, `${workerId}.out`);
    // O_EXCL and O_NOFOLLOW: a file someone else put there is never written to or read from.
    const flags = constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    this.inFd = openSync(this.inPath, flags | constants.O_RDWR, 0o600);
    try {
      this.outFd = openSync(this.outPath, flags | constants.O_RDWR, 0o600);
    } catch (error) {
      closeSync(this.inFd);
      rmSync(this.inPath, { force: true });
      throw error;
    }
    this.allocator = new SlotAllocator(settings.regionBytes);
  }

  /** The worker's command-line flags for these regions. */
  workerArgs(): string[] {
    return [
      '--shm-in',
      this.inPath,
      '--shm-out',
      this.outPath,
      '--shm-threshold',
      String(this.settings.thresholdBytes),
      '--shm-region-bytes',
      String(this.settings.regionBytes),
    ];
  }

  /** Bytes held in the host region by calls in flight. */
  get inUse(): number {
    return this.allocator.inUse;
  }

  place(owner: number, payload: Payload | null | undefined): Payload | null | undefined {
    if (!payload || this.closed) return payload;
    const threshold = this.settings.thresholdBytes;
    if (payload.binary && payload.binary.length >= threshold) {
      // The whole value as bytes: as a blob with an empty path, which both sides read as the whole value.
      return { json: Buffer.from('null'), blobs: [this.placeBlob(owner, { path: [], dtype: 'bytes', shape: [], data: payload.binary })] };
    }
    const blobs = payload.blobs ?? [];
    if (!blobs.some((blob) => byteLength(blob.data) >= threshold)) return payload;
    const placed: Blob[] = [];
    try {
      for (const blob of blobs) placed.push(byteLength(blob.data) >= threshold ? this.placeBlob(owner, blob) : blob);
    } catch (error) {
      // All of the payload's slots or none: a call that fails here holds nothing.
      for (const blob of placed) if (blob.shared) this.releaseSlot(owner, Number(blob.shared.offset));
      throw error;
    }
    // A new payload: the caller's may be sent again, to another worker, after this one's stream broke.
    return { ...payload, blobs: placed };
  }

  private placeBlob(owner: number, blob: Blob): Blob {
    const data = blob.data as Uint8Array;
    const offset = this.allocator.allocate(data.byteLength);
    if (offset === undefined) {
      const free = this.allocator.largestFree;
      throw new SnakepitError(
        'RESOURCE_EXHAUSTED',
        `The worker's shared-memory region cannot take a ${data.byteLength}-byte blob now (largest free slot ${free} of sharedMemory.regionBytes ${this.settings.regionBytes})`,
        { details: { option: 'sharedMemory.regionBytes', bytes: data.byteLength, free, regionBytes: this.settings.regionBytes } },
      );
    }
    try {
      let written = 0;
      while (written < data.byteLength) written += writeSync(this.inFd, data, written, data.byteLength - written, offset + written);
    } catch (error) {
      this.allocator.release(offset);
      const code = (error as NodeJS.ErrnoException).code;
      throw new SnakepitError(
        'RESOURCE_EXHAUSTED',
        code === 'ENOSPC'
          ? `The shared-memory file system is full (ENOSPC) writing a ${data.byteLength}-byte blob: give ${this.settings.dir} more room or lower sharedMemory.regionBytes`
          : `Could not write a ${data.byteLength}-byte blob to shared memory: ${(error as Error).message}`,
        { details: { option: 'sharedMemory.regionBytes', bytes: data.byteLength, reason: code ?? (error as Error).message }, cause: error },
      );
    }
    let slots = this.owned.get(owner);
    if (!slots) this.owned.set(owner, (slots = []));
    slots.push(offset);
    return { path: blob.path, dtype: blob.dtype, shape: blob.shape, shared: { offset, length: data.byteLength } };
  }

  private releaseSlot(owner: number, offset: number): void {
    this.allocator.release(offset);
    const slots = this.owned.get(owner);
    const index = slots?.indexOf(offset) ?? -1;
    if (slots && index >= 0) slots.splice(index, 1);
  }

  releaseCall(owner: number): void {
    const slots = this.owned.get(owner);
    if (!slots) return;
    this.owned.delete(owner);
    for (const offset of slots) this.allocator.release(offset);
  }

  receive(payload: Payload__Output | null | undefined, released: number[]): void {
    for (const blob of payload?.blobs ?? []) {
      if (!blob.shared) continue;
      const offset = Number(blob.shared.offset);
      const length = Number(blob.shared.length);
      // The slot goes back to the worker even when it is refused here: the worker holds it until told.
      released.push(offset);
      if (blob.data.length > 0) throw malformedSlot('a blob has both inline data and a shared slot');
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset + length > this.settings.regionBytes) {
        throw malformedSlot(`the slot [${offset}, +${length}) lies outside the ${this.settings.regionBytes}-byte region`);
      }
      blob.data = this.read(offset, length);
      blob.shared = null;
    }
  }

  private read(offset: number, length: number): Buffer {
    // Large enough to get its own ArrayBuffer (never the shared pool), so array views over it are aligned.
    const data = Buffer.allocUnsafeSlow(length);
    let read = 0;
    while (read < length) {
      const n = readSync(this.outFd, data, read, length - read, offset + read);
      if (n === 0) throw malformedSlot(`the slot [${offset}, +${length}) ends past the end of the worker's region file`);
      read += n;
    }
    return data;
  }

  /** Closes both files and removes them (the worker has exited or is about to). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.owned.clear();
    for (const fd of [this.inFd, this.outFd]) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
    rmSync(this.inPath, { force: true });
    rmSync(this.outPath, { force: true });
  }
}

function byteLength(data: Blob['data']): number {
  if (data === undefined) return 0;
  return typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
}

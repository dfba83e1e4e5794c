/** Every slot starts on a multiple of this: any dtype's elements are aligned in the slot, and slots never share a cache line. */
export const SLOT_ALIGNMENT = 64;

interface FreeRange {
  offset: number;
  length: number;
}

/**
 * First-fit allocation of byte ranges in a region of `capacity` bytes, with
 * free neighbours merged back together. Regions hold a few large slots (one
 * per blob of the calls in flight on one worker), so a sorted array of free
 * ranges is both the simplest and a fast enough structure here; a general
 * allocator library (buddy or slab) would buy nothing at this scale.
 */
export class SlotAllocator {
  /** Free ranges, sorted by offset, never adjacent (merged on free). */
  private readonly free: FreeRange[];
  private readonly used = new Map<number, number>();
  private usedBytes = 0;

  constructor(readonly capacity: number) {
    this.free = capacity > 0 ? [{ offset: 0, length: capacity }] : [];
  }

  /** Bytes held by live slots (their aligned lengths). */
  get inUse(): number {
    return this.usedBytes;
  }

  /** Live slots. */
  get slots(): number {
    return this.used.size;
  }

  /** The largest slot that could be allocated now. */
  get largestFree(): number {
    return this.free.reduce((largest, range) => Math.max(largest, range.length), 0);
  }

  /** The end of the highest live slot: how much of the region is in use at most. */
  get highWater(): number {
    let end = 0;
    for (const [offset, length] of this.used) end = Math.max(end, offset + length);
    return end;
  }

  /** A slot of at least `length` bytes (at least 1); its offset, or undefined when no free range is large enough. */
  allocate(length: number): number | undefined {
    const size = alignUp(Math.max(1, length));
    const index = this.free.findIndex((range) => range.length >= size);
    if (index < 0) return undefined;
    const range = this.free[index];
    const offset = range.offset;
    if (range.length === size) this.free.splice(index, 1);
    else {
      range.offset += size;
      range.length -= size;
    }
    this.used.set(offset, size);
    this.usedBytes += size;
    return offset;
  }

  /** Frees the slot at `offset`; false (and nothing changes) when no live slot starts there. */
  release(offset: number): boolean {
    const size = this.used.get(offset);
    if (size === undefined) return false;
    this.used.delete(offset);
    this.usedBytes -= size;
    let index = this.free.findIndex((range) => range.offset > offset);
    if (index < 0) index = this.free.length;
    this.free.splice(index, 0, { offset, length: size });
    // Merge with the next range, then with the previous one.
    const next = this.free[index + 1];
    if (offset + size === next?.offset) {
      this.free[index].length += next.length;
      this.free.splice(index + 1, 1);
    }
    const previous = this.free[index - 1];
    if (previous && previous.offset + previous.length === offset) {
      previous.length += this.free[index].length;
      this.free.splice(index, 1);
    }
    return true;
  }

  /** The free ranges, for invariant checks. */
  freeRanges(): ReadonlyArray<Readonly<FreeRange>> {
    return this.free;
  }

  /** The live slots as [offset, aligned length], for invariant checks. */
  liveSlots(): Array<[number, number]> {
    return [...this.used];
  }
}

function alignUp(length: number): number {
  return Math.ceil(length / SLOT_ALIGNMENT) * SLOT_ALIGNMENT;
}

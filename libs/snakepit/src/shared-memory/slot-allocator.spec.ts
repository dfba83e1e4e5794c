import { Prng } from '../pool/simulation/prng';
import { SLOT_ALIGNMENT, SlotAllocator } from './slot-allocator';

/** Every invariant of the allocator, checked after each step of the random runs below. */
function checkInvariants(allocator: SlotAllocator): void {
  const free = allocator.freeRanges();
  const live = allocator.liveSlots();
  const all = [...free.map((range): [number, number] => [range.offset, range.length]), ...live].sort((a, b) => a[0] - b[0]);
  // Free and live ranges tile the region exactly: no overlap, no hole, nothing past the end.
  let cursor = 0;
  for (const [offset, length] of all) {
    expect(offset).toBe(cursor);
    expect(length).toBeGreaterThan(0);
    cursor += length;
  }
  expect(cursor).toBe(allocator.capacity);
  for (const [offset] of live) expect(offset % SLOT_ALIGNMENT).toBe(0);
  // Free ranges are sorted and never touch (a free next to a free would have been merged).
  for (let i = 1; i < free.length; i++) expect(free[i - 1].offset + free[i - 1].length).toBeLessThan(free[i].offset);
  expect(allocator.inUse).toBe(live.reduce((sum, [, length]) => sum + length, 0));
}

describe('SlotAllocator', () => {
  it('hands out aligned, disjoint slots and refuses what does not fit', () => {
    const allocator = new SlotAllocator(1024);
    const a = allocator.allocate(1);
    const b = allocator.allocate(100);
    expect([a, b]).toEqual([0, 64]);
    expect(allocator.allocate(1024)).toBeUndefined();
    expect(allocator.inUse).toBe(64 + 128);
    checkInvariants(allocator);
  });

  it('merges freed neighbours back into one range', () => {
    const allocator = new SlotAllocator(4096);
    const slots = [allocator.allocate(1000), allocator.allocate(1000), allocator.allocate(1000)] as number[];
    allocator.release(slots[0]);
    allocator.release(slots[2]);
    expect(allocator.freeRanges()).toHaveLength(2);
    allocator.release(slots[1]);
    expect(allocator.freeRanges()).toEqual([{ offset: 0, length: 4096 }]);
    expect(allocator.allocate(4096)).toBe(0);
  });

  it('ignores a release of an offset that is not a live slot', () => {
    const allocator = new SlotAllocator(4096);
    const slot = allocator.allocate(10)!;
    expect(allocator.release(slot + 64)).toBe(false);
    expect(allocator.release(slot)).toBe(true);
    expect(allocator.release(slot)).toBe(false);
    checkInvariants(allocator);
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('keeps its invariants through a random run (seed %i)', (seed) => {
    const prng = new Prng(seed);
    const capacity = prng.int(1, 64) * 1024 + prng.int(0, 63);
    const allocator = new SlotAllocator(capacity);
    const live: number[] = [];
    for (let step = 0; step < 400; step++) {
      if (live.length > 0 && prng.chance(0.45)) {
        const [offset] = live.splice(prng.int(0, live.length - 1), 1);
        expect(allocator.release(offset)).toBe(true);
      } else {
        const wanted = prng.int(1, capacity / 4);
        const fits = allocator.largestFree >= Math.ceil(wanted / SLOT_ALIGNMENT) * SLOT_ALIGNMENT;
        const offset = allocator.allocate(wanted);
        // First fit finds a slot exactly when some free range is large enough.
        expect(offset !== undefined).toBe(fits);
        if (offset !== undefined) live.push(offset);
      }
      checkInvariants(allocator);
    }
    for (const offset of live) allocator.release(offset);
    expect(allocator.freeRanges()).toEqual([{ offset: 0, length: capacity }]);
  });
});

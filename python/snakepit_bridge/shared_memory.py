"""The shared-memory data plane: blob data in two region files beside the gRPC stream.

The host makes two files per worker (mode 0600, in a private run directory,
normally under ``/dev/shm``) and passes them with ``--shm-in`` / ``--shm-out``:

* the *in* region (host -> worker: call arguments, host-call replies). The host
  allocates and writes its slots; the worker maps the whole file read-only
  (:class:`InRegion`) and hands out views over it, remapping when a slot lies
  past the current mapping because the host's file grew. A slot stays valid
  until the worker's terminal message for the call, so a received array is
  valid during the call only.
* the *out* region (worker -> host: results, stream chunks, host-call args).
  The worker allocates slots (:class:`SlotAllocator`: 64-byte aligned,
  first-fit, coalescing, capped at ``--shm-region-bytes``), grows the file
  with ``ftruncate`` in doubling steps, reserves each slot's pages with
  ``posix_fallocate`` (on tmpfs a write to an unreserved page past the space
  left is SIGBUS; fallocate turns it into ENOSPC) and copies the data straight
  from the value's buffer into a writable mapping (:class:`OutRegion`). A slot
  is reused once the host lists its offset in a ``SharedRelease``.

A blob goes through the out region when its data has at least
``--shm-threshold`` bytes (empty data always stays inline: it costs nothing
and would need a slot of its own to have an offset).

Why not a library: ``multiprocessing.shared_memory`` names POSIX segments
(the host gives file paths and owns their lifetime), ``multiprocessing.heap``
is private API over anonymous arenas, and the PyPI allocators either keep
their own metadata inside the segment or are unmaintained toy packages; the
free list below is about forty lines with its invariants tested.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import logging
import mmap
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from .arrays import loaded_numpy
from .errors import RESOURCE_EXHAUSTED, ToolError
from .wire import pb

ALIGNMENT: Final = 64
# The host pool option that sets --shm-region-bytes.
REGION_OPTION: Final = "sharedMemory.regionBytes"
# Errors of growing or reserving the out file that mean "no room", not a bug.
_NO_ROOM: Final = frozenset({errno.ENOSPC, errno.EFBIG, errno.ENOMEM, errno.EDQUOT})
# From this size on, copies into the region go through numpy when it is loaded (see _copy).
_NUMPY_COPY_BYTES: Final = 1 << 20

log = logging.getLogger("snakepit.shm")


@dataclass(frozen=True)
class SharedMemoryOptions:
    """The four worker flags, given all together or not at all."""

    in_path: str
    out_path: str
    threshold: int
    region_bytes: int


def aligned(size: int) -> int:
    """``size`` rounded up to the slot alignment."""
    return -(-size // ALIGNMENT) * ALIGNMENT


class RegionFull(Exception):
    """The out region cannot take a slot of ``size`` bytes now (``free`` bytes are free)."""

    def __init__(self, size: int, free: int, reason: str) -> None:
        super().__init__(reason)
        self.size = size
        self.free = free
        self.reason = reason


class SlotAllocator:
    """Offsets in ``[0, cap)``: 64-byte aligned slots, first fit, free neighbours merged.

    Not thread-safe: :class:`OutRegion` holds its lock around every use. The cap
    counts slots by their aligned size, so live slots never add up to more than it.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        # Free blocks as parallel sorted lists (offsets ascending), for bisect on free().
        self._free_offsets: list[int] = [0]
        self._free_sizes: list[int] = [cap]
        self.live: dict[int, int] = {}  # offset -> aligned size
        self.free_bytes = cap

    def free_blocks(self) -> list[tuple[int, int]]:
        """(offset, size) of every free block, in address order."""
        return list(zip(self._free_offsets, self._free_sizes, strict=True))

    def alloc(self, length: int) -> int | None:
        """The offset of a new slot of at least ``length`` bytes, or None when no free block fits."""
        size = aligned(max(length, 1))
        for index, block in enumerate(self._free_sizes):
            if block >= size:
                offset = self._free_offsets[index]
                if block == size:
                    del self._free_offsets[index], self._free_sizes[index]
                else:
                    self._free_offsets[index] = offset + size
                    self._free_sizes[index] = block - size
                self.live[offset] = size
                self.free_bytes -= size
                return offset
        return None

    def free(self, offset: int) -> bool:
        """Return a live slot to the free list (merged with free neighbours); False if not live."""
        size = self.live.pop(offset, None)
        if size is None:
            return False
        self.free_bytes += size
        index = bisect.bisect_left(self._free_offsets, offset)
        if index < len(self._free_offsets) and offset + size == self._free_offsets[index]:
            size += self._free_sizes[index]  # merge with the block after
            del self._free_offsets[index], self._free_sizes[index]
        if index > 0 and self._free_offsets[index - 1] + self._free_sizes[index - 1] == offset:
            self._free_sizes[index - 1] += size  # merge into the block before
        else:
            self._free_offsets.insert(index, offset)
            self._free_sizes.insert(index, size)
        return True


class InRegion:
    """The host's region, mapped read-only; views over it for received blobs."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._map: mmap.mmap | None = None
        self._lock = threading.Lock()

    def view(self, offset: int, length: int) -> memoryview:
        """The ``length`` bytes at ``offset``, read-only; ValueError when they lie outside the file."""
        end = offset + length
        with self._lock:
            current = self._map
            if current is None or end > len(current):
                size = os.fstat(self._fd).st_size
                if end > size:
                    raise ValueError(
                        f"its shared slot [{offset}, {end}) lies beyond the end of the region file ({size} bytes)"
                    )
                if length == 0:
                    return memoryview(b"")
                # The host's file grew. Views of the old mapping (arrays of calls still running)
                # keep it alive; it is unmapped when the last of them goes.
                current = self._map = mmap.mmap(self._fd, size, access=mmap.ACCESS_READ)
        return memoryview(current)[offset:end]

    def close(self) -> None:
        with self._lock:
            # Arrays still referenced keep the mapping until they go.
            _unmap(self._map, self._fd)
            self._map, self._fd = None, -1


class OutRegion:
    """The worker's region: allocation (under a lock: tools run in threads), growth and writes."""

    def __init__(self, path: str, cap: int) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self._size = os.fstat(self._fd).st_size
        self._map: mmap.mmap | None = mmap.mmap(self._fd, self._size) if self._size else None
        self._allocator = SlotAllocator(cap)
        self._lock = threading.Lock()
        # Every page below this offset is reserved: tmpfs keeps reserved pages (nothing punches
        # holes), so only a slot reaching past it pays for posix_fallocate, once.
        self._reserved_end = 0

    @property
    def cap(self) -> int:
        return self._allocator.cap

    @property
    def free_bytes(self) -> int:
        with self._lock:
            return self._allocator.free_bytes

    def place(self, data: bytes | memoryview) -> pb.SharedSlot:
        """Copy ``data`` into a new slot and describe it; RegionFull when there is no room."""
        length = len(data) if isinstance(data, bytes) else data.nbytes
        with self._lock:
            offset = self._allocator.alloc(length)
            if offset is None:
                raise RegionFull(length, self._allocator.free_bytes, "no free block is large enough")
            try:
                target = self._mapping_to(offset + length)
                self._reserve_to(offset + length)
            except OSError as exc:
                self._allocator.free(offset)
                raise self._full(length, exc) from None
        # Outside the lock: other tools' threads place and copy at the same time. The mapping
        # object is this thread's reference, so a remap by another thread cannot unmap it.
        _copy(target, offset, data, length)
        return pb.SharedSlot(offset=offset, length=length)

    def _mapping_to(self, end: int) -> mmap.mmap:
        # Caller holds the lock. Doubling keeps the number of remaps logarithmic in the region's size.
        if self._map is not None and end <= self._size:
            return self._map
        size = min(max(end, 2 * self._size), self._allocator.cap)
        os.ftruncate(self._fd, size)
        # The old mapping is not closed: a thread may still be copying into it (it goes with
        # that thread's reference).
        self._map = mmap.mmap(self._fd, size)
        self._size = size
        return self._map

    def _reserve_to(self, end: int) -> None:
        # Caller holds the lock. On tmpfs a write to an unreserved page past the space left is
        # SIGBUS; posix_fallocate turns it into ENOSPC. Another file system is not tmpfs.
        if end <= self._reserved_end:
            return
        try:
            os.posix_fallocate(self._fd, self._reserved_end, end - self._reserved_end)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS):
                raise
        self._reserved_end = end

    def _full(self, length: int, exc: OSError) -> Exception:
        if exc.errno in _NO_ROOM:
            return RegionFull(length, self._allocator.free_bytes, f"growing the region file failed: {exc.strerror}")
        return exc

    def free(self, offsets: Iterable[int]) -> None:
        with self._lock:
            for offset in offsets:
                self._allocator.free(offset)

    def close(self) -> None:
        with self._lock:
            # A tool thread still copying (abandoned at shutdown) keeps the mapping until it is done.
            _unmap(self._map, self._fd)
            self._map, self._fd = None, -1


def _unmap(mapping: mmap.mmap | None, fd: int) -> None:
    """Closes a region's mapping and file; a mapping a buffer still uses stays until that buffer goes."""
    if mapping is not None:
        # mmap refuses to close under an exported buffer; the last reference unmaps it instead.
        with contextlib.suppress(BufferError):
            mapping.close()
    if fd >= 0:
        os.close(fd)


def _copy(target: mmap.mmap, offset: int, data: bytes | memoryview, length: int) -> None:
    """One copy of ``data`` into the mapping, by numpy (which lets go of the GIL) for large data."""
    numpy = loaded_numpy()
    if numpy is None or length < _NUMPY_COPY_BYTES:
        target[offset : offset + length] = data
        return
    # mmap's slice assignment holds the GIL through the memcpy, stalling the event loop and every
    # other tool for the whole copy; numpy's copy of plain bytes runs without it.
    numpy.frombuffer(target, numpy.uint8, length, offset)[...] = numpy.frombuffer(data, numpy.uint8)


class SharedOut:
    """One Connect stream's use of the out region: which slots it placed and the host still reads.

    Slots are released by the host on the stream that carried them; when that
    stream ends, nobody is left to release them, so they are freed then.
    """

    def __init__(self, region: OutRegion, threshold: int) -> None:
        self.region = region
        self.threshold = threshold
        self._owned: set[int] = set()
        self._closed = False
        self._lock = threading.Lock()

    def wants(self, length: int) -> bool:
        """Whether a blob of ``length`` bytes goes through the region."""
        return length >= self.threshold and length > 0

    def place(self, data: bytes | memoryview, where: str) -> pb.SharedSlot:
        """Copy ``data`` into the region; RESOURCE_EXHAUSTED (a ToolError) when it cannot take it."""
        try:
            slot = self.region.place(data)
        except RegionFull as full:
            raise exhausted(where, full, self.region.cap) from None
        with self._lock:
            closed = self._closed
            if not closed:
                self._owned.add(slot.offset)
        if closed:  # a tool finishing after its stream ended: the message goes nowhere
            self.region.free([slot.offset])
        return slot

    def release(self, offsets: Iterable[int]) -> None:
        """The host's SharedRelease: it has read these slots; unknown offsets are ignored."""
        known = []
        with self._lock:
            for offset in offsets:
                if offset in self._owned:
                    self._owned.discard(offset)
                    known.append(offset)
                else:
                    log.debug("ignoring the release of an unknown shared slot", extra={"offset": offset})
        self.region.free(known)

    def free_payload(self, payload: pb.Payload) -> None:
        """Free the slots ``payload`` placed: it will not be sent (refused or failed half-way)."""
        self.release(blob.shared.offset for blob in payload.blobs if blob.HasField("shared"))

    def close(self) -> None:
        """The stream ended: free every slot it still holds."""
        with self._lock:
            owned, self._owned = self._owned, set()
            self._closed = True
        self.region.free(owned)


def exhausted(where: str, full: RegionFull, cap: int) -> ToolError:
    """RESOURCE_EXHAUSTED for a blob the out region cannot take (that call only)."""
    return ToolError(
        RESOURCE_EXHAUSTED,
        f"{where}: the worker's shared-memory region cannot take {full.size} bytes "
        f"({full.free} of {cap} bytes free; {full.reason}); the host pool option {REGION_OPTION} raises the cap",
        {"option": REGION_OPTION, "bytes": full.size, "free": full.free},
    )


class SharedRegions:
    """Both regions of a worker, opened at startup and closed at exit."""

    def __init__(self, options: SharedMemoryOptions) -> None:
        self.options = options
        self.incoming = InRegion(options.in_path)
        try:
            self.outgoing = OutRegion(options.out_path, options.region_bytes)
        except BaseException:
            self.incoming.close()
            raise

    def connection(self) -> SharedOut:
        """The out side for one Connect stream."""
        return SharedOut(self.outgoing, self.options.threshold)

    def close(self) -> None:
        self.incoming.close()
        self.outgoing.close()

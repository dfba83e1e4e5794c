"""The shared-memory data plane: the slot allocator, both regions over real files, and a real worker.

Region files live in a temp dir on disk and, where the machine has it, in
/dev/shm (tmpfs, where the host puts them). The host is played by HostFiles:
it creates both files as the host does, writes its slots with pwrite and
reads the worker's with pread.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import resource
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from helpers import BridgeClient, WorkerProcess, blob, call_request, value_of

from snakepit_bridge.errors import RESOURCE_EXHAUSTED, SERIALIZATION_ERROR, ToolError
from snakepit_bridge.host_tools import HostLink
from snakepit_bridge.serialization import decode_args, decode_payload, encode_payload, fill_payload
from snakepit_bridge.server import RESULT_OVERHEAD, frame_share
from snakepit_bridge.shared_memory import (
    ALIGNMENT,
    REGION_OPTION,
    OutRegion,
    SharedMemoryOptions,
    SharedRegions,
    SlotAllocator,
)
from snakepit_bridge.wire import pb

MiB = 1 << 20
DIRS = ["disk", "shm"] if os.path.isdir("/dev/shm") else ["disk"]


class HostFiles:
    """What the host does with a worker's two region files (bump allocation is enough for a test)."""

    def __init__(self, directory: Path) -> None:
        self.in_path = directory / "w1.in"
        self.out_path = directory / "w1.out"
        for path in (self.in_path, self.out_path):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
        self._end = 0

    def options(self, threshold: int = 64, region_bytes: int = 4 * MiB) -> SharedMemoryOptions:
        return SharedMemoryOptions(str(self.in_path), str(self.out_path), threshold, region_bytes)

    def flags(self, threshold: int = 64, region_bytes: int = 4 * MiB) -> tuple[str, ...]:
        return (
            *("--shm-in", str(self.in_path), "--shm-out", str(self.out_path)),
            *("--shm-threshold", str(threshold), "--shm-region-bytes", str(region_bytes)),
        )

    def put(self, data: bytes, at: int | None = None) -> pb.SharedSlot:
        """Write ``data`` into the in file (after what is there, or ``at``) and describe its slot."""
        offset = self._end if at is None else at
        with open(self.in_path, "r+b") as file:
            os.pwrite(file.fileno(), data, offset)
        self._end = max(self._end, -(-(offset + len(data)) // ALIGNMENT) * ALIGNMENT)
        return pb.SharedSlot(offset=offset, length=len(data))

    def read(self, slot: pb.SharedSlot) -> bytes:
        with open(self.out_path, "rb") as file:
            return os.pread(file.fileno(), slot.length, slot.offset)


@pytest.fixture(params=DIRS)
def region_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    if request.param == "disk":
        yield tmp_path
        return
    directory = Path(tempfile.mkdtemp(prefix="sp-test-", dir="/dev/shm"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def host(region_dir: Path) -> HostFiles:
    return HostFiles(region_dir)


@pytest.fixture
def regions(host: HostFiles) -> Iterator[SharedRegions]:
    opened = SharedRegions(host.options())
    yield opened
    opened.close()


def shared_blob(path: list[str | int], dtype: str, shape: list[int], slot: pb.SharedSlot) -> pb.Blob:
    sent = blob(path, dtype, shape, b"")
    sent.shared.CopyFrom(slot)
    return sent


def array_of(host: HostFiles, sent: pb.Blob) -> np.ndarray:
    """A worker blob as the host reads it: from the out file when it has a slot."""
    assert sent.HasField("shared") and not sent.data
    data = host.read(sent.shared)
    return np.frombuffer(data, dtype=np.dtype(sent.dtype).newbyteorder("<")).reshape(tuple(sent.shape))


def error_code(call: Callable[[], Any]) -> ToolError:
    with pytest.raises(ToolError) as caught:
        call()
    return caught.value


# ---------------------------------------------------------------- the allocator


def check_allocator(allocator: SlotAllocator) -> None:
    """Live slots and free blocks tile [0, cap) exactly, aligned; free blocks are never adjacent."""
    spans = sorted([*allocator.live.items(), *allocator.free_blocks()])
    position = 0
    for offset, size in spans:
        assert offset == position, f"gap or overlap at {offset} (expected {position}): {spans}"
        assert offset % ALIGNMENT == 0 and size > 0
        position = offset + size
    assert position == allocator.cap
    free = allocator.free_blocks()
    assert all(a + sa < b for (a, sa), (b, _) in itertools.pairwise(free)), f"uncoalesced: {free}"
    assert sum(allocator.live.values()) <= allocator.cap
    assert allocator.free_bytes == allocator.cap - sum(allocator.live.values())


@pytest.mark.parametrize("seed", range(5))
def test_allocator_invariants_hold_over_a_random_sequence(seed: int) -> None:
    rng = random.Random(seed)
    cap = 64 * 1000 + rng.choice([0, 17])  # a cap that is not a multiple of the alignment too
    allocator = SlotAllocator(cap)
    live: list[int] = []
    refused = 0
    for _ in range(2000):
        if live and rng.random() < 0.45:
            assert allocator.free(live.pop(rng.randrange(len(live))))
        else:
            length = rng.choice([1, 63, 64, 65, rng.randrange(1, 20_000)])
            offset = allocator.alloc(length)
            if offset is None:
                refused += 1
                assert all(size < -(-length // ALIGNMENT) * ALIGNMENT for _, size in allocator.free_blocks())
            else:
                assert allocator.live[offset] >= length
                live.append(offset)
        check_allocator(allocator)
    assert refused > 0 and len(live) > 0  # the sequence did fill the region and did hold slots
    for offset in live:
        assert allocator.free(offset)
        check_allocator(allocator)
    assert allocator.free_blocks() == [(0, cap)]


def test_allocator_is_first_fit_and_refuses_what_does_not_fit() -> None:
    allocator = SlotAllocator(64 * 4)
    a, b, c = (allocator.alloc(64) for _ in range(3))
    assert (a, b, c) == (0, 64, 128)
    assert allocator.alloc(129) is None  # 64 bytes are left
    assert allocator.free(64) and not allocator.free(64) and not allocator.free(5)
    assert allocator.alloc(1) == 64  # the lowest hole that fits
    assert allocator.alloc(65) is None
    assert allocator.free_bytes == 64


# ---------------------------------------------------------------- encode and decode over real files


def test_large_blobs_go_through_the_out_region_and_small_ones_stay_inline(
    host: HostFiles, regions: SharedRegions
) -> None:
    shared = regions.connection()
    big = np.arange(1000, dtype=np.float32).reshape(10, 100)
    payload = encode_payload({"x": big, "b": b"y" * 200, "small": b"z", "empty": b""}, shared=shared)
    assert json.loads(payload.json) == {"x": None, "b": None, "small": None, "empty": None}
    x, b, small, empty = payload.blobs
    np.testing.assert_array_equal(array_of(host, x), big)
    assert host.read(b.shared) == b"y" * 200
    assert (small.data, small.HasField("shared"), empty.HasField("shared")) == (b"z", False, False)
    assert x.shared.offset % ALIGNMENT == 0 and b.shared.offset % ALIGNMENT == 0


def test_a_non_contiguous_array_is_written_in_c_order(host: HostFiles, regions: SharedRegions) -> None:
    base = np.arange(600, dtype=np.int64).reshape(20, 30)
    for view in (base.T, base[:, ::2]):
        (sent,) = encode_payload(view, shared=regions.connection()).blobs
        np.testing.assert_array_equal(array_of(host, sent), view)


def test_whole_bytes_at_the_threshold_travel_as_null_and_a_root_blob(host: HostFiles, regions: SharedRegions) -> None:
    shared = regions.connection()
    payload = encode_payload(bytearray(b"q" * 64), shared=shared)
    assert payload.json == b"null" and payload.WhichOneof("body") == "json"
    (sent,) = payload.blobs
    assert (list(sent.path), sent.dtype, host.read(sent.shared)) == ([], "bytes", b"q" * 64)
    assert encode_payload(b"q" * 63, shared=shared).binary == b"q" * 63  # below it: the binary body as before


def test_received_arrays_are_read_only_views_of_the_in_region(host: HostFiles, regions: SharedRegions) -> None:
    sent = np.arange(12, dtype="<f8").reshape(3, 4)
    slot = host.put(sent.tobytes())
    raw = host.put(b"abc" * 30)
    args = pb.Payload(
        json=b'{"x":null,"raw":null}',
        blobs=[shared_blob(["x"], "float64", [3, 4], slot), shared_blob(["raw"], "bytes", [], raw)],
    )
    received = decode_args(args, regions.incoming)
    assert isinstance(received, dict)
    x = received["x"]
    np.testing.assert_array_equal(x, sent)
    assert not x.flags.writeable and received["raw"] == b"abc" * 30 and type(received["raw"]) is bytes
    host.put(np.full(12, 7.0, dtype="<f8").tobytes(), at=slot.offset)  # the host rewrites the slot...
    assert (x == 7.0).all()  # ...and the array sees it: a view over the mapping, not a copy
    del x, received


def test_whole_args_as_a_root_bytes_blob_are_the_binary_args(host: HostFiles, regions: SharedRegions) -> None:
    slot = host.put(b"\x00\x01" * 100)
    assert decode_args(pb.Payload(json=b"null", blobs=[shared_blob([], "bytes", [], slot)]), regions.incoming) == (
        b"\x00\x01" * 100
    )
    assert decode_args(pb.Payload(json=b"null", blobs=[blob([], "bytes", [], b"inline")])) == b"inline"


def test_a_slot_past_the_mapping_is_read_after_a_remap(host: HostFiles, regions: SharedRegions) -> None:
    first = np.arange(16, dtype="<i4")
    early = decode_payload(
        pb.Payload(json=b"null", blobs=[shared_blob([], "int32", [16], host.put(first.tobytes()))]),
        "result",
        regions.incoming,
    )
    late = np.arange(256, dtype="<u2")
    slot = host.put(late.tobytes(), at=8 * MiB)  # the host's file grew far past the first mapping
    value = decode_payload(
        pb.Payload(json=b"null", blobs=[shared_blob([], "uint16", [256], slot)]), "result", regions.incoming
    )
    np.testing.assert_array_equal(value, late)
    np.testing.assert_array_equal(early, first)  # the old mapping stays valid under the early array
    del early, value


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda s: shared_blob(["x"], "float32", [4], pb.SharedSlot(offset=s.offset, length=12)), "takes 16 bytes"),
        (lambda s: shared_blob(["x"], "float32", [4], pb.SharedSlot(offset=1 << 40, length=16)), "beyond the end"),
        (lambda s: shared_blob(["x"], "float32", [4], pb.SharedSlot(offset=s.offset, length=1 << 40)), "beyond"),
        (
            lambda s: pb.Blob(path=[pb.PathSegment(key="x")], dtype="float32", shape=[4], data=b"\0" * 16, shared=s),
            "both inline data and a shared-memory slot",
        ),
    ],
)
def test_malformed_slots_name_the_path(
    host: HostFiles, regions: SharedRegions, make: Callable[[pb.SharedSlot], pb.Blob], reason: str
) -> None:
    slot = host.put(b"\0" * 16)
    args = pb.Payload(json=b'{"x":null}', blobs=[make(slot)])
    for decode in (
        lambda: decode_args(args, regions.incoming),
        lambda: decode_payload(args, "host tool result", regions.incoming),
    ):
        error = error_code(decode)
        assert error.code == SERIALIZATION_ERROR and error.details["path"] == "$.x", error.message
        assert reason in error.message


def test_a_slot_without_shared_memory_is_refused() -> None:
    args = pb.Payload(json=b'{"x":null}', blobs=[shared_blob(["x"], "bytes", [], pb.SharedSlot(offset=0, length=1))])
    error = error_code(lambda: decode_args(args))
    assert error.code == SERIALIZATION_ERROR and "no --shm-in" in error.message


# ---------------------------------------------------------------- out region: growth, release, exhaustion


def test_the_out_file_grows_by_doubling_within_the_cap(host: HostFiles) -> None:
    region = OutRegion(str(host.out_path), 10 * 4096)
    try:
        sizes = []
        for _ in range(9):
            region.place(b"\1" * 4096)
            sizes.append(host.out_path.stat().st_size)
        assert sizes == [4096, 8192, 16384, 16384, 32768, 32768, 32768, 32768, 40960]
    finally:
        region.close()


def test_released_slots_are_reused_and_unknown_offsets_ignored(
    regions: SharedRegions, caplog: pytest.LogCaptureFixture
) -> None:
    shared = regions.connection()
    (first,) = encode_payload({"a": b"a" * 100}, shared=shared).blobs
    (second,) = encode_payload({"a": b"b" * 100}, shared=shared).blobs
    assert second.shared.offset != first.shared.offset
    with caplog.at_level("DEBUG", logger="snakepit.shm"):
        shared.release([first.shared.offset, 12345, first.shared.offset])
    assert sum("unknown shared slot" in record.message for record in caplog.records) == 2
    (third,) = encode_payload({"a": b"c" * 100}, shared=shared).blobs
    assert third.shared.offset == first.shared.offset
    other = regions.connection()  # another stream cannot release this one's slots
    other.release([third.shared.offset])
    assert regions.outgoing.free_bytes == regions.outgoing.cap - 2 * 128
    shared.close()  # the stream ended: nobody will release the rest
    assert regions.outgoing.free_bytes == regions.outgoing.cap


def test_a_full_region_fails_that_payload_only_and_frees_what_it_took(host: HostFiles) -> None:
    regions = SharedRegions(host.options(region_bytes=64 * 1024))
    try:
        shared = regions.connection()
        value = {"fits": np.zeros(8 * 1024, dtype=np.float32), "too_much": np.zeros(16 * 1024, dtype=np.float32)}
        error = error_code(lambda: encode_payload(value, shared=shared))
        assert error.code == RESOURCE_EXHAUSTED and "result at $.too_much" in error.message
        assert error.details == {"option": REGION_OPTION, "bytes": 64 * 1024, "free": 32 * 1024}
        assert regions.outgoing.free_bytes == 64 * 1024  # the first blob's slot went back
        (sent,) = encode_payload(np.ones(1024, dtype=np.float32), shared=shared).blobs
        np.testing.assert_array_equal(array_of(host, sent), np.ones(1024, dtype=np.float32))
    finally:
        regions.close()


def test_a_file_that_cannot_grow_is_resource_exhausted_too(host: HostFiles) -> None:
    # RLIMIT_FSIZE makes ftruncate fail with EFBIG (SIGXFSZ ignored), as a full tmpfs fails with ENOSPC.
    regions = SharedRegions(host.options())
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (MiB, hard))
        try:
            error = error_code(lambda: encode_payload({"x": b"x" * (2 * MiB)}, shared=regions.connection()))
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert error.code == RESOURCE_EXHAUSTED and "growing the region file failed" in error.message
        assert error.details == {"option": REGION_OPTION, "bytes": 2 * MiB, "free": 4 * MiB}
        assert regions.outgoing.free_bytes == regions.outgoing.cap
    finally:
        signal.signal(signal.SIGXFSZ, previous_handler)
        regions.close()


def test_a_refused_host_call_gives_its_slots_back(regions: SharedRegions) -> None:
    from snakepit_bridge.context import Cancellation

    shared = regions.connection()
    cancelled = Cancellation()
    cancelled.set()
    link = HostLink(
        lambda _m: None, lambda: 1, parent_id=1, depth=0, session_id="", cancelled=cancelled, tools={}, shared=shared
    )
    with pytest.raises(Exception, match="cancelled"):
        link.start("embed", {"image": np.zeros(1024, dtype=np.uint8)}, None)
    assert regions.outgoing.free_bytes == regions.outgoing.cap


def test_size_bounds_count_a_shared_blob_by_its_descriptor(regions: SharedRegions) -> None:
    message = pb.WorkerMessage(id=2**40)
    bound = fill_payload(message.result.value, {"x": np.zeros(MiB, dtype=np.uint8)}, shared=regions.connection())
    assert bound < 200  # a megabyte of data, a few dozen bytes on the wire
    assert frame_share(message) <= RESULT_OVERHEAD + bound


# ---------------------------------------------------------------- no leaks


def region_fds(*paths: Path) -> int:
    """Open fds of this process on the region files (mmap holds a dup of its own)."""
    names = {str(path) for path in paths}
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the fd listdir itself used is gone already
            count += os.readlink(f"/proc/self/fd/{fd}") in names
    return count


def region_mappings(*paths: Path) -> int:
    names = {str(path) for path in paths}
    with open("/proc/self/maps") as maps:
        return sum(line.split(maxsplit=5)[-1].strip() in names for line in maps if len(line.split()) == 6)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_closing_leaves_no_fds_and_no_mappings(host: HostFiles) -> None:
    fds_before = len(os.listdir("/proc/self/fd"))
    regions = SharedRegions(host.options(threshold=1))
    shared = regions.connection()
    slot = host.put(np.arange(64, dtype="<f4").tobytes())
    kept = decode_payload(
        pb.Payload(json=b"null", blobs=[shared_blob([], "float32", [64], slot)]), "r", regions.incoming
    )
    host.put(b"x" * MiB, at=4 * MiB)
    decode_payload(
        pb.Payload(json=b"null", blobs=[shared_blob([], "bytes", [], host.put(b"y", at=5 * MiB))]),
        "r",
        regions.incoming,
    )  # a remap
    for _ in range(20):  # growth, so several out mappings
        encode_payload(np.ones(64 * 1024, dtype=np.uint8), shared=shared)
    assert region_mappings(host.in_path, host.out_path) >= 2 and region_fds(host.in_path, host.out_path) >= 2
    regions.close()
    assert region_mappings(host.out_path) == 0
    assert region_mappings(host.in_path) >= 1  # an array still alive keeps its mapping...
    np.testing.assert_array_equal(kept, np.arange(64, dtype="<f4"))
    del kept
    assert region_mappings(host.in_path, host.out_path) == 0  # ...until it goes
    assert region_fds(host.in_path, host.out_path) == 0
    assert len(os.listdir("/proc/self/fd")) == fds_before


# ---------------------------------------------------------------- a real worker over gRPC


@pytest.fixture
def shm_worker(spawn: Callable[..., WorkerProcess], host: HostFiles) -> WorkerProcess:
    # A small message limit: the large results below could never travel inline.
    worker = spawn(*host.flags(threshold=1024, region_bytes=2 * MiB), "--max-message-bytes", "65536", "--capacity", "2")
    assert worker.ready_line.startswith("READY "), worker.stderr()
    return worker


@pytest.fixture
async def shm_client(shm_worker: WorkerProcess) -> AsyncIterator[BridgeClient]:
    async with grpc.aio.insecure_channel(shm_worker.address) as channel, BridgeClient(channel) as bridge:
        yield bridge


def result_of(message: pb.WorkerMessage) -> pb.Payload:
    assert message.WhichOneof("kind") == "result", message
    return message.result.value


async def test_a_real_worker_takes_and_gives_arrays_through_the_regions(
    shm_client: BridgeClient, shm_worker: WorkerProcess, host: HostFiles
) -> None:
    x = np.arange(64 * 1024, dtype="<f4")  # 256 KiB: four times the message limit
    slot = host.put(x.tobytes())
    reply = await shm_client.call(
        call_request("array_scale", {"x": None, "factor": 2}, blobs=[shared_blob(["x"], "float32", [x.size], slot)])
    )
    (sent,) = result_of(reply).blobs
    np.testing.assert_array_equal(array_of(host, sent), x * 2)
    shm_client.release(sent.shared.offset)
    # Released: the next result reuses the slot; not released: it would lie after it.
    again = await shm_client.call(
        call_request("array_scale", {"x": None, "factor": 3}, blobs=[shared_blob(["x"], "float32", [x.size], slot)])
    )
    (resent,) = result_of(again).blobs
    assert resent.shared.offset == sent.shared.offset
    np.testing.assert_array_equal(array_of(host, resent), x * 3)
    total = await shm_client.call(
        call_request("array_sum", {"x": None}, blobs=[shared_blob(["x"], "float32", [x.size], slot)])
    )
    assert value_of(result_of(total)) == float(x.sum())
    shm_client.release(resent.shared.offset)


async def test_a_real_worker_streams_chunks_and_bytes_through_the_region(
    shm_client: BridgeClient, host: HostFiles
) -> None:
    x = np.arange(3 * 4096, dtype="<i8").reshape(3, 4096)
    slot = host.put(x.tobytes())
    (request_id,) = shm_client.send(
        call_request(
            "array_split", {"x": None, "parts": 3}, stream=True, blobs=[shared_blob(["x"], "int64", [3, 4096], slot)]
        )
    )
    messages = await shm_client.collect(request_id)
    chunks = [m.chunk.value.blobs[0] for m in messages if m.WhichOneof("kind") == "chunk"]
    assert len(chunks) == 3 and messages[-1].WhichOneof("kind") == "result"
    for row, chunk in enumerate(chunks):
        np.testing.assert_array_equal(array_of(host, chunk), x[row : row + 1])
    shm_client.release(*(chunk.shared.offset for chunk in chunks))
    data = bytes(range(256)) * 512  # 128 KiB
    reversed_ = await shm_client.call(
        call_request("reverse_bytes", None, raw_json=b"null", blobs=[shared_blob([], "bytes", [], host.put(data))])
    )
    value = result_of(reversed_)
    assert value.json == b"null" and host.read(value.blobs[0].shared) == data[::-1]


async def test_host_calls_carry_shared_blobs_both_ways(shm_client: BridgeClient, host: HostFiles) -> None:
    shm_client.send_host_tools("embed")
    image = np.arange(4096, dtype=np.uint8).reshape(64, 64)
    (request_id,) = shm_client.send(
        call_request(
            "call_host",
            {"name": "embed", "args": {"image": None}},
            blobs=[shared_blob(["args", "image"], "uint8", [64, 64], host.put(image.tobytes()))],
        )
    )
    host_call = (await shm_client.next_message(request_id)).host_call
    (arg,) = host_call.args.blobs
    np.testing.assert_array_equal(array_of(host, arg), image)
    vector = np.linspace(0, 1, 2048, dtype="<f4")
    reply = pb.Payload(json=b"null", blobs=[shared_blob([], "float32", [2048], host.put(vector.tobytes()))])
    shm_client.reply_host(request_id, host_call.call_id, reply)
    (back,) = result_of(await shm_client.next_message(request_id)).blobs
    np.testing.assert_array_equal(array_of(host, back), vector)


async def test_exhaustion_and_bad_slots_fail_one_call_and_the_worker_stays(
    shm_client: BridgeClient, shm_worker: WorkerProcess, host: HostFiles
) -> None:
    too_big = await shm_client.call(call_request("array_fill", {"n": MiB, "value": 1.0}))  # 4 MiB > the 2 MiB cap
    assert too_big.WhichOneof("kind") == "error", too_big
    error = too_big.error.error
    assert error.code == RESOURCE_EXHAUSTED, error
    assert json.loads(error.details_json) == {"option": REGION_OPTION, "bytes": 4 * MiB, "free": 2 * MiB}
    beyond = await shm_client.call(
        call_request(
            "array_sum",
            {"x": None},
            blobs=[shared_blob(["x"], "float32", [4], pb.SharedSlot(offset=1 << 40, length=16))],
        )
    )
    assert beyond.error.error.code == SERIALIZATION_ERROR and "$.x" in beyond.error.error.message
    fits = await shm_client.call(call_request("array_fill", {"n": 1024, "value": 2.0}))
    (sent,) = result_of(fits).blobs
    np.testing.assert_array_equal(array_of(host, sent), np.full(1024, 2.0, dtype=np.float32))
    assert shm_worker.proc is not None and shm_worker.proc.poll() is None


def test_sigterm_exits_cleanly_and_leaves_the_files_to_the_host(shm_worker: WorkerProcess, host: HostFiles) -> None:
    os.kill(shm_worker.pid, signal.SIGTERM)
    assert shm_worker.wait() == 0
    assert host.in_path.exists() and host.out_path.exists()


def test_the_four_flags_come_together(spawn: Callable[..., WorkerProcess], host: HostFiles) -> None:
    partial = spawn("--shm-in", str(host.in_path), "--shm-threshold", "1024")
    assert partial.ready_line.startswith("ERROR "), partial.ready_line
    report = json.loads(partial.ready_line.removeprefix("ERROR "))
    assert report["type"] == "snakepit_bridge.worker.StartupError"
    assert "given without --shm-out, --shm-region-bytes" in report["message"]
    assert partial.wait() == 3
    missing = spawn(*host.flags(), "--shm-out", str(host.out_path.with_name("nope.out")))
    report = json.loads(missing.ready_line.removeprefix("ERROR "))
    assert "cannot open the shared-memory region" in report["message"] and "nope.out" in report["message"]

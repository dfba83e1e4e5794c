"""Byte-bounded frames: the worker never sends a WorkerFrame above its message limit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from helpers import BridgeClient, WorkerProcess, call_request, serving

from snakepit_bridge.server import CHUNK_OVERHEAD, RESULT_OVERHEAD, frame_share
from snakepit_bridge.wire import pb

ADAPTERS = str(Path(__file__).parent / "adapters")
LIMIT = 65536


@pytest.fixture(scope="module")
def sized() -> Iterator[WorkerProcess]:
    yield from serving(
        WorkerProcess("--max-message-bytes", str(LIMIT), adapter="sample_adapters:SizesAdapter", extra_path=ADAPTERS)
    )


@pytest.fixture
async def client(sized: WorkerProcess) -> AsyncIterator[BridgeClient]:
    async with grpc.aio.insecure_channel(sized.address) as channel, BridgeClient(channel) as bridge:
        yield bridge


def binary_result(request_id: int, n: int) -> pb.WorkerMessage:
    return pb.WorkerMessage(id=request_id, result=pb.CallResult(value=pb.Payload(binary=b"x" * n)))


def test_share_bounds_cover_the_real_encoding() -> None:
    # The largest id, seq and every length-varint width up to 4 bytes.
    for n in (0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152):
        result = pb.WorkerMessage(id=2**64 - 1, result=pb.CallResult(value=pb.Payload(json=b"x" * n)))
        assert frame_share(result) == pb.WorkerFrame(messages=[result]).ByteSize()
        assert frame_share(result) <= RESULT_OVERHEAD + n
        chunk = pb.WorkerMessage(id=2**64 - 1, chunk=pb.StreamChunk(seq=2**64 - 1, value=pb.Payload(binary=b"x" * n)))
        assert frame_share(chunk) <= CHUNK_OVERHEAD + n


async def test_replies_that_fit_still_share_one_frame(client: BridgeClient) -> None:
    ids = client.send(*[call_request("blob_inline", {"n": 100}) for _ in range(20)])
    replies = [await client.next_message(request_id) for request_id in ids]
    assert [reply.result.value.binary for reply in replies] == [b"x" * 100] * 20
    assert client.frames_received == 1


async def test_a_batch_above_the_limit_is_split_in_order(client: BridgeClient) -> None:
    # Ten 20 000-byte replies queued together: three fit in a frame, four do not.
    ids = client.send(*[call_request("blob_inline", {"n": 20_000}) for _ in range(10)])
    replies = [await client.next_message(request_id) for request_id in ids]
    assert all(len(reply.result.value.binary) == 20_000 for reply in replies)
    assert client.frames_received == 4
    assert max(client.frame_sizes) <= LIMIT
    assert client.stream_error is None


async def test_a_reply_of_exactly_the_limit_is_delivered(client: BridgeClient) -> None:
    request_id = client.next_id
    n = next(n for n in range(LIMIT, 0, -1) if frame_share(binary_result(request_id, n)) == LIMIT)
    reply = await client.call(call_request("blob", {"n": n}))
    assert len(reply.result.value.binary) == n
    assert client.frame_sizes == [LIMIT]


@pytest.mark.parametrize("tool", ["chunks", "achunks"])
async def test_a_fast_stream_never_exceeds_the_limit(client: BridgeClient, tool: str) -> None:
    # Up to 64 chunks of 20 000 bytes may wait together: 1.2 MB in one frame before.
    (request_id,) = client.send(call_request(tool, {"n": 200, "size": 20_000}, stream=True))
    messages = await client.collect(request_id)
    assert [m.chunk.seq for m in messages[:-1]] == list(range(200))
    assert all(len(m.chunk.value.binary) == 20_000 for m in messages[:-1])
    assert messages[-1].WhichOneof("kind") == "result"
    assert max(client.frame_sizes) <= LIMIT

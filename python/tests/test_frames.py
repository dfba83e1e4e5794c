"""Byte-bounded frames: the worker never sends a WorkerFrame above its message limit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from helpers import BridgeClient, WorkerProcess, call_request, serving, value_of

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


def too_large(message: pb.WorkerMessage, what: str) -> dict[str, Any]:
    """The PAYLOAD_TOO_LARGE details of ``message``, after checking what its text says."""
    assert message.WhichOneof("kind") == "error", message
    error = message.error.error
    assert error.code == "PAYLOAD_TOO_LARGE"
    details: dict[str, Any] = json.loads(error.details_json)
    assert details["what"] == what and details["option"] == "maxPayloadBytes"
    assert details["limitBytes"] == LIMIT and details["bytes"] > LIMIT
    assert f"is {details['bytes']} bytes" in error.message
    assert f"{LIMIT}-byte limit" in error.message and "maxPayloadBytes" in error.message
    return details


async def closes(client: BridgeClient) -> dict[str, int]:
    counts: dict[str, int] = value_of((await client.call(call_request("closes"))).result.value)
    return counts


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
    over = await client.call(call_request("blob", {"n": n + 1}))
    assert too_large(over, "result")["bytes"] == LIMIT + 1


@pytest.mark.parametrize("tool", ["chunks", "achunks"])
async def test_a_fast_stream_never_exceeds_the_limit(client: BridgeClient, tool: str) -> None:
    # Up to 64 chunks of 20 000 bytes may wait together: 1.2 MB in one frame before.
    (request_id,) = client.send(call_request(tool, {"n": 200, "size": 20_000}, stream=True))
    messages = await client.collect(request_id)
    assert [m.chunk.seq for m in messages[:-1]] == list(range(200))
    assert all(len(m.chunk.value.binary) == 20_000 for m in messages[:-1])
    assert messages[-1].WhichOneof("kind") == "result"
    assert max(client.frame_sizes) <= LIMIT


@pytest.mark.parametrize("tool", ["blob", "ablob", "blob_inline"])
async def test_an_oversized_result_fails_only_its_own_call(
    client: BridgeClient, sized: WorkerProcess, tool: str
) -> None:
    big, *small = client.send(
        call_request(tool, {"n": 200_000}),
        *[call_request("blob_inline", {"n": 10}) for _ in range(3)],
        call_request("ablob", {"n": 10}),
    )
    details = too_large(await client.next_message(big), "result")
    assert details["bytes"] >= 200_000
    assert [(await client.next_message(request_id)).result.value.binary for request_id in small] == [b"x" * 10] * 4
    assert (await client.call(call_request("blob", {"n": 5}))).result.value.binary == b"xxxxx"
    assert client.stream_error is None and not client.ended.is_set()
    assert sized.proc is not None and sized.proc.poll() is None
    assert "answering PAYLOAD_TOO_LARGE instead" in sized.stderr()


@pytest.mark.parametrize(
    ("tool", "flavour", "other"), [("growing", "sync", "achunks"), ("agrowing", "async", "chunks")]
)
async def test_an_oversized_chunk_ends_its_stream_and_closes_the_generator(
    client: BridgeClient, tool: str, flavour: str, other: str
) -> None:
    before = await closes(client)
    (doomed,) = client.send(call_request(tool, {"sizes": [10, 10, 100_000, 10]}, stream=True))
    (bystander,) = client.send(call_request(other, {"n": 50, "size": 1000}, stream=True))
    messages = await client.collect(doomed)
    assert [m.chunk.seq for m in messages[:-1]] == [0, 1]
    too_large(messages[-1], "stream chunk")
    assert "stream chunk 2 of tool" in messages[-1].error.error.message
    others = await client.collect(bystander)
    assert len(others) == 51 and others[-1].WhichOneof("kind") == "result"
    after = await closes(client)
    assert after[flavour] == before[flavour] + 1


async def test_an_oversized_session_delta_is_refused(client: BridgeClient) -> None:
    reply = await client.call(call_request("session_blob", {"n": 100_000}, session_id="s1", session={}))
    too_large(reply, "session delta")
    assert "with its" in reply.error.error.message and "session delta" in reply.error.error.message
    small = await client.call(call_request("session_blob", {"n": 10}, session_id="s1", session={}))
    assert small.result.session.set == {"big": b'"xxxxxxxxxx"'}


async def test_an_oversized_error_is_refused(client: BridgeClient) -> None:
    reply = await client.call(call_request("big_error", {"n": 100_000}))
    too_large(reply, "error")
    # The host's own tool name can make the error too big: 8 KiB of it in the message, all of it in the details.
    unknown = await client.call(call_request("n" * 60_000))
    too_large(unknown, "error")
    assert "an unknown tool" in unknown.error.error.message


async def test_an_oversized_host_call_fails_in_the_tool(client: BridgeClient) -> None:
    client.send_host_tools("echo")
    (request_id,) = client.send(call_request("big_host_call", {"n": 100_000}))
    messages = await client.collect(request_id)
    assert [m.WhichOneof("kind") for m in messages] == ["result"]  # no host_call reached the host
    refused = value_of(messages[0].result.value)
    assert refused["code"] == "PAYLOAD_TOO_LARGE"
    assert refused["details"]["what"] == "host call" and refused["details"]["limitBytes"] == LIMIT
    assert "host tool 'echo'" in refused["message"]


def array_result(request_id: int, n: int) -> pb.WorkerMessage:
    payload = pb.Payload(json=b"null", blobs=[pb.Blob(dtype="uint8", shape=[n], data=b"\x00" * n)])
    return pb.WorkerMessage(id=request_id, result=pb.CallResult(value=payload))


async def test_blobs_count_toward_the_limit(client: BridgeClient) -> None:
    request_id = client.next_id
    n = next(n for n in range(LIMIT, 0, -1) if frame_share(array_result(request_id, n)) == LIMIT)
    reply = await client.call(call_request("array", {"n": n}))
    assert len(reply.result.value.blobs[0].data) == n
    assert client.frame_sizes == [LIMIT]
    over = await client.call(call_request("array", {"n": n + 1}))
    assert too_large(over, "result")["bytes"] == LIMIT + 1


async def test_streamed_blobs_never_exceed_the_limit(client: BridgeClient) -> None:
    (request_id,) = client.send(call_request("array_chunks", {"n": 100, "size": 20_000}, stream=True))
    messages = await client.collect(request_id)
    assert [m.chunk.seq for m in messages[:-1]] == list(range(100))
    assert all(m.chunk.value.blobs[0].data == bytes([m.chunk.seq]) * 20_000 for m in messages[:-1])
    assert max(client.frame_sizes) <= LIMIT
    (doomed,) = client.send(call_request("array_chunks", {"n": 2, "size": 100_000}, stream=True))
    too_large((await client.collect(doomed))[-1], "stream chunk")
    assert client.stream_error is None

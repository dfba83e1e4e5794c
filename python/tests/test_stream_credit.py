"""End-to-end stream credit: a generator runs only as far ahead as the host's consumer lets it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from helpers import REPLY_TIMEOUT, BridgeClient, WorkerProcess, call_request, serving, value_of

from snakepit_bridge.server import STREAM_WINDOW
from snakepit_bridge.wire import pb

ADAPTERS = str(Path(__file__).parent / "adapters")
# How long a blocked generator gets to (wrongly) send more: it makes thousands of chunks in that time.
QUIET = 0.5
TOOLS = pytest.mark.parametrize(("tool", "flavour"), [("chunks", "sync"), ("achunks", "async")])


@pytest.fixture(scope="module")
def sized() -> Iterator[WorkerProcess]:
    yield from serving(WorkerProcess(adapter="sample_adapters:SizesAdapter", extra_path=ADAPTERS))


@pytest.fixture
async def client(sized: WorkerProcess) -> AsyncIterator[BridgeClient]:
    async with grpc.aio.insecure_channel(sized.address) as channel, BridgeClient(channel, auto_credit=False) as bridge:
        yield bridge


async def chunk_seqs(client: BridgeClient, request_id: int, count: int) -> list[int]:
    seqs = []
    for _ in range(count):
        message = await client.next_message(request_id)
        assert message.WhichOneof("kind") == "chunk", message
        seqs.append(message.chunk.seq)
    return seqs


async def assert_blocked(client: BridgeClient, request_id: int) -> None:
    try:
        message = await client.next_message(request_id, timeout=QUIET)
    except TimeoutError:
        return
    pytest.fail(f"the generator ran past its credit: {message}")


async def consume(client: BridgeClient, request_id: int) -> list[pb.WorkerMessage]:
    """Take every message up to the terminal, crediting each chunk (two at a time, then the odd one)."""
    messages: list[pb.WorkerMessage] = []
    async with asyncio.timeout(REPLY_TIMEOUT):
        while True:
            client.credit(request_id, 2)  # the two chunks taken before and not credited yet
            for _ in range(2):
                message = await client.next_message(request_id)
                messages.append(message)
                if message.WhichOneof("kind") != "chunk":
                    return messages


async def closes(client: BridgeClient) -> dict[str, int]:
    counts: dict[str, int] = value_of((await client.call(call_request("closes"))).result.value)
    return counts


@TOOLS
async def test_a_generator_blocks_without_credit_and_resumes_with_it(
    client: BridgeClient, tool: str, flavour: str
) -> None:
    (request_id,) = client.send(call_request(tool, {"n": 1000, "size": 10}, stream=True))
    assert await chunk_seqs(client, request_id, STREAM_WINDOW) == list(range(STREAM_WINDOW))
    await assert_blocked(client, request_id)

    client.credit(request_id, 10)
    assert await chunk_seqs(client, request_id, 10) == list(range(STREAM_WINDOW, STREAM_WINDOW + 10))
    await assert_blocked(client, request_id)

    # A consumer that returns credit as it takes chunks (in several messages) gets the whole stream.
    messages = await consume(client, request_id)
    assert [m.chunk.seq for m in messages[:-1]] == list(range(STREAM_WINDOW + 10, 1000))
    assert messages[-1].WhichOneof("kind") == "result"


async def test_credit_is_for_chunks_taken_not_a_budget_in_advance(client: BridgeClient) -> None:
    (request_id,) = client.send(call_request("chunks", {"n": 1000, "size": 10}, stream=True))
    await chunk_seqs(client, request_id, STREAM_WINDOW)
    client.credit(request_id, 500)  # more than was sent: the window refills, it does not grow
    assert await chunk_seqs(client, request_id, STREAM_WINDOW) == list(range(STREAM_WINDOW, 2 * STREAM_WINDOW))
    await assert_blocked(client, request_id)
    client.cancel(request_id)
    assert (await client.next_message(request_id)).WhichOneof("kind") == "cancelled"


@TOOLS
async def test_a_cancel_while_blocked_ends_the_stream_with_cancelled(
    client: BridgeClient, tool: str, flavour: str
) -> None:
    before = (await closes(client))[flavour]
    (request_id,) = client.send(call_request(tool, {"n": 1000, "size": 10}, stream=True))
    await chunk_seqs(client, request_id, STREAM_WINDOW)
    await assert_blocked(client, request_id)

    client.cancel(request_id, "consumer went away")
    message = await client.next_message(request_id)
    assert message.WhichOneof("kind") == "cancelled"
    assert message.cancelled.reason == "consumer went away"
    assert (await closes(client))[flavour] == before + 1  # the generator was closed, not left suspended


async def test_credit_for_one_stream_does_not_release_another(client: BridgeClient) -> None:
    first, second = client.send(
        call_request("chunks", {"n": 200, "size": 10}, stream=True),
        call_request("achunks", {"n": 200, "size": 10}, stream=True),
    )
    await chunk_seqs(client, first, STREAM_WINDOW)
    await chunk_seqs(client, second, STREAM_WINDOW)
    assert (await consume(client, first))[-1].WhichOneof("kind") == "result"
    await assert_blocked(client, second)
    client.cancel(second)
    assert (await client.next_message(second)).WhichOneof("kind") == "cancelled"


async def test_credit_for_unknown_or_finished_calls_is_ignored(client: BridgeClient) -> None:
    client.credit(999_999, 5)
    (request_id,) = client.send(call_request("chunks", {"n": 3, "size": 10}, stream=True))
    assert len(await client.collect(request_id)) == 4
    client.credit(request_id, 3)
    # The stream still serves calls afterwards.
    reply = await client.call(call_request("blob", {"n": 4}))
    assert reply.result.value == pb.Payload(binary=b"xxxx")
    assert client.stream_error is None

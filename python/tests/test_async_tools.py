"""Async tools, iterables, generator cleanup and queued-call cancellation, end to end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from helpers import BridgeClient, WorkerProcess, call_request, serving, value_of

ADAPTERS = str(Path(__file__).parent / "adapters")


@pytest.fixture(scope="module")
def mixed() -> Iterator[WorkerProcess]:
    # capacity 1: a second sync call waits in the pool queue.
    yield from serving(WorkerProcess(adapter="sample_adapters:MixedAdapter", extra_path=ADAPTERS))


@pytest.fixture
async def client(mixed: WorkerProcess) -> AsyncIterator[BridgeClient]:
    async with grpc.aio.insecure_channel(mixed.address) as channel, BridgeClient(channel) as bridge:
        yield bridge


async def closes(client: BridgeClient) -> dict[str, int]:
    counts: dict[str, int] = value_of((await client.call(call_request("closes"))).result.value)
    return counts


async def test_async_tools_run_concurrently(client: BridgeClient) -> None:
    # Each call returns only once all 20 are running at the same time: run one after another, they would fail.
    ids = client.send(*[call_request("rendezvous", {"n": 20}) for _ in range(20)])
    replies = await asyncio.gather(*(client.next_message(request_id) for request_id in ids))
    assert sorted(value_of(reply.result.value) for reply in replies) == list(range(1, 21))


async def test_async_exception(client: BridgeClient) -> None:
    reply = await client.call(call_request("explode", {"message": "gone"}))
    assert reply.error.error.code == "PYTHON_EXCEPTION"
    assert reply.error.error.python.type == "LookupError"


async def test_inline_tools_that_ask_for_it_get_their_own_context(client: BridgeClient) -> None:
    requests = [
        call_request("whoami_inline", session_id=f"s{i}", session={"n": i}, timeout_ms=1000 + i) for i in range(3)
    ]
    ids = client.send(*requests)
    replies = [value_of((await client.next_message(request_id)).result.value) for request_id in ids]
    assert replies == [
        {"request_id": request_id, "session": {"n": i}, "timeout_ms": 1000 + i} for i, request_id in enumerate(ids)
    ]


async def test_inline_tool_cannot_wait_for_the_host(client: BridgeClient) -> None:
    # It would block the event loop that reads the host's answer: refused at once instead.
    reply = await client.call(call_request("ask_host_inline"), timeout=2)
    assert reply.error.error.python.type == "snakepit_bridge.host_tools.HostToolError"
    assert "no host connection" in reply.error.error.message


async def test_async_cancel(client: BridgeClient) -> None:
    (request_id,) = client.send(call_request("wait", {"ms": 5000}))
    await asyncio.sleep(0.05)
    client.cancel(request_id)
    assert (await client.next_message(request_id, timeout=2)).WhichOneof("kind") == "cancelled"


async def test_cancel_in_the_same_frame_as_the_call(client: BridgeClient) -> None:
    # The async task is cancelled before its first step: still exactly one Cancelled.
    (request_id,) = client.send(call_request("wait", {"ms": 5000}))
    client.cancel(request_id)
    messages = await client.collect(request_id, timeout=2)
    assert [m.WhichOneof("kind") for m in messages] == ["cancelled"]


async def test_async_stream_and_its_cancellation_closes_it(client: BridgeClient) -> None:
    before = await closes(client)
    (request_id,) = client.send(call_request("ticks", {"n": 3}, stream=True))
    messages = await client.collect(request_id)
    assert [value_of(m.chunk.value) for m in messages[:-1]] == [0, 1, 2]
    (request_id,) = client.send(call_request("ticks", {"n": 1000, "delay_ms": 10}, stream=True))
    await client.next_message(request_id)
    client.cancel(request_id)
    assert (await client.collect(request_id))[-1].WhichOneof("kind") == "cancelled"
    assert (await closes(client))["async"] == before["async"] + 2


async def test_sync_stream_cancellation_closes_the_generator(client: BridgeClient) -> None:
    before = await closes(client)
    (request_id,) = client.send(call_request("sync_ticks", {"n": 1000, "delay_ms": 10}, stream=True))
    await client.next_message(request_id)
    client.cancel(request_id)
    assert (await client.collect(request_id))[-1].WhichOneof("kind") == "cancelled"
    assert (await closes(client))["sync"] == before["sync"] + 1


async def test_returned_iterable_is_streamed(client: BridgeClient) -> None:
    (request_id,) = client.send(call_request("letters", {"word": "abc"}, stream=True))
    messages = await client.collect(request_id)
    assert [value_of(m.chunk.value) for m in messages[:-1]] == ["a", "b", "c"]


async def test_queued_sync_call_is_cancelled_at_once(client: BridgeClient) -> None:
    busy, queued = client.send(call_request("nap", {"ms": 1000}), call_request("nap", {"ms": 1000}))
    await asyncio.sleep(0.05)
    client.cancel(queued)
    assert (await client.next_message(queued)).WhichOneof("kind") == "cancelled"
    assert client._queue(busy).empty()  # order, not time: it did not wait for the busy call
    assert value_of((await client.next_message(busy)).result.value) == 1000


async def test_unsafe_integer_result(client: BridgeClient) -> None:
    reply = await client.call(call_request("huge"))
    assert reply.error.error.code == "SERIALIZATION_ERROR"
    assert "return it as a str" in reply.error.error.message
    assert json.loads(reply.error.error.details_json)["path"] == "$"


async def test_host_closing_its_side_cancels_calls(client: BridgeClient) -> None:
    (request_id,) = client.send(call_request("wait", {"ms": 5000}))
    await asyncio.sleep(0.05)
    client.close_requests()
    assert (await client.next_message(request_id, timeout=2)).WhichOneof("kind") == "cancelled"
    await asyncio.wait_for(client.ended.wait(), 2)
    assert client.stream_error is None


async def test_broken_stream_cancels_calls(mixed: WorkerProcess) -> None:
    async with grpc.aio.insecure_channel(mixed.address) as channel, BridgeClient(channel) as observer:
        before = await closes(observer)
        async with BridgeClient(channel) as doomed:
            (request_id,) = doomed.send(call_request("sync_ticks", {"n": 1000, "delay_ms": 10}, stream=True))
            await doomed.next_message(request_id)
        # The doomed stream was cancelled mid-call: its generator must be closed.
        for _ in range(100):
            if (await closes(observer))["sync"] == before["sync"] + 1:
                break
            await asyncio.sleep(0.02)
        assert (await closes(observer))["sync"] == before["sync"] + 1

"""End to end: a real worker process driven over its unix socket by a grpc.aio client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import BridgeClient, WorkerProcess, auth, call_request, value_of

from snakepit_bridge import __version__
from snakepit_bridge.wire import SERVICE_NAME, pb, pb_grpc


def error_details(message: pb.WorkerMessage) -> dict[str, Any]:
    details: dict[str, Any] = json.loads(message.error.error.details_json)
    return details


async def test_describe(channel: grpc.aio.Channel, showcase: WorkerProcess) -> None:
    described = await pb_grpc.WorkerBridgeStub(channel).Describe(pb.DescribeRequest(), metadata=auth())
    assert described.worker_id == "showcase-1"
    assert described.pid == showcase.pid
    assert described.adapter == "snakepit_bridge.examples.showcase:ShowcaseAdapter"
    assert described.capacity == 4
    assert described.bridge_version == __version__
    assert described.python_version.count(".") == 2
    tools = {spec.name: spec for spec in described.tools}
    assert {"ping", "echo", "add", "sleep", "count", "spin", "nan", "reverse_bytes"} <= tools.keys()
    add = tools["add"]
    assert add.description == "Add two numbers; integers stay integers."
    assert [(p.name, p.type, p.required) for p in add.parameters] == [("a", "number", True), ("b", "number", True)]
    assert add.idempotent and not add.streaming
    count = tools["count"]
    assert count.streaming
    assert [(p.name, p.required, p.default_json) for p in count.parameters] == [
        ("n", True, b""),
        ("delay_ms", False, b"0"),
    ]
    assert [p.name for p in tools["sleep"].parameters] == ["ms"]  # ctx is injected, not a parameter
    assert tools["reverse_bytes"].parameters[0].type == "binary"


async def test_add_keeps_ints_and_accepts_floats(client: BridgeClient) -> None:
    ints = await client.call(call_request("add", {"a": 2, "b": 3}))
    assert ints.result.value.json == b"5"
    floats = await client.call(call_request("add", {"a": 1.5, "b": 2}))
    assert value_of(floats.result.value) == 3.5


async def test_echo_round_trip(client: BridgeClient) -> None:
    value = {"text": "héllo ☃", "n": [1, -2, 2**53 - 1], "f": 0.25, "ok": True, "none": None, "nested": {"a": [[]]}}
    reply = await client.call(call_request("echo", {"value": value}))
    assert value_of(reply.result.value) == value


async def test_binary_round_trip(client: BridgeClient) -> None:
    reply = await client.call(call_request("reverse_bytes", binary=b"\x00\x01\xffabc"))
    assert reply.result.value.binary == b"cba\xff\x01\x00"


async def test_replies_out_of_order(client: BridgeClient) -> None:
    slow, fast = client.send(call_request("sleep", {"ms": 1000}), call_request("add", {"a": 1, "b": 1}))
    fast_reply = await client.next_message(fast)
    assert fast_reply.result.value.json == b"2"
    # Order, not time: when the fast reply is in, the slow call has not answered yet.
    assert client._queue(slow).empty(), "add waited for sleep"
    assert (await client.next_message(slow)).result.value.json == b"1000"


async def test_200_concurrent_calls(client: BridgeClient) -> None:
    ids = client.send(*[call_request("add", {"a": i, "b": 1000}) for i in range(200)])
    replies = await asyncio.gather(*(client.next_message(request_id) for request_id in ids))
    assert [value_of(reply.result.value) for reply in replies] == [i + 1000 for i in range(200)]
    assert client.frames_received < client.messages_received, "replies ready together should share frames"


async def test_stream_chunks_have_seq(client: BridgeClient) -> None:
    (request_id,) = client.send(call_request("count", {"n": 5}, stream=True))
    messages = await client.collect(request_id)
    chunks = [m.chunk for m in messages if m.WhichOneof("kind") == "chunk"]
    assert [(c.seq, value_of(c.value)) for c in chunks] == [(i, {"i": i}) for i in range(5)]
    assert messages[-1].WhichOneof("kind") == "result"
    assert len(messages) == 6


async def test_long_stream_respects_window(client: BridgeClient) -> None:
    (request_id,) = client.send(call_request("count", {"n": 1000}, stream=True))
    messages = await client.collect(request_id)
    assert [m.chunk.seq for m in messages[:-1]] == list(range(1000))
    assert messages[-1].WhichOneof("kind") == "result"


async def test_cancel_sleep(client: BridgeClient) -> None:
    (request_id,) = client.send(call_request("sleep", {"ms": 5000}))
    await asyncio.sleep(0.1)
    client.cancel(request_id, "caller gave up")
    # Well before the 5 s sleep would end; the bound only keeps a broken cancel from hanging the suite.
    reply = await client.next_message(request_id, timeout=4.0)
    assert reply.WhichOneof("kind") == "cancelled"
    assert reply.cancelled.reason == "caller gave up"


async def test_cancel_mid_stream_then_serve_next(client: BridgeClient) -> None:
    (request_id,) = client.send(call_request("count", {"n": 1000, "delay_ms": 20}, stream=True))
    first = await client.next_message(request_id)
    assert first.chunk.seq == 0
    client.cancel(request_id)
    rest = await client.collect(request_id)
    assert rest[-1].WhichOneof("kind") == "cancelled"
    assert all(m.WhichOneof("kind") == "chunk" for m in rest[:-1])
    assert len(rest) < 100
    reply = await client.call(call_request("ping"))
    assert value_of(reply.result.value) == "pong"


async def test_cancel_of_unknown_id_is_ignored(client: BridgeClient) -> None:
    client.cancel(987654)
    reply = await client.call(call_request("ping"))
    assert value_of(reply.result.value) == "pong"
    assert client._replies.get(987654) is None or client._replies[987654].empty()


async def test_unknown_tool(client: BridgeClient) -> None:
    reply = await client.call(call_request("nope"))
    assert reply.error.error.code == "TOOL_NOT_FOUND"
    details = error_details(reply)
    assert details["tool"] == "nope"
    assert "ping" in details["available"]


async def test_invalid_arguments(client: BridgeClient) -> None:
    reply = await client.call(call_request("add", {"a": "x", "c": 1}))
    assert reply.error.error.code == "INVALID_ARGUMENTS"
    errors = {e["path"]: e for e in error_details(reply)["errors"]}
    assert errors["$.a"] == {"path": "$.a", "problem": "wrong_type", "expected": "number", "got": "string"}
    assert errors["$.b"]["problem"] == "missing"
    assert errors["$.c"]["problem"] == "unknown"
    boolean = await client.call(call_request("sleep", {"ms": True}))
    assert error_details(boolean)["errors"] == [
        {"path": "$.ms", "problem": "wrong_type", "expected": "integer", "got": "boolean"}
    ]


async def test_malformed_and_non_object_arguments(client: BridgeClient) -> None:
    malformed = await client.call(call_request("ping", raw_json=b"{nope"))
    assert malformed.error.error.code == "SERIALIZATION_ERROR"
    array = await client.call(call_request("ping", raw_json=b"[1]"))
    assert array.error.error.code == "INVALID_ARGUMENTS"


async def test_stream_flag_mismatch(client: BridgeClient) -> None:
    not_streamed = await client.call(call_request("count", {"n": 2}))
    assert not_streamed.error.error.code == "INVALID_ARGUMENTS"
    assert "executeStream" in not_streamed.error.error.message
    streamed = await client.call(call_request("add", {"a": 1, "b": 2}, stream=True))
    assert streamed.result.value.json == b"3"


async def test_python_exception_with_chain(client: BridgeClient) -> None:
    reply = await client.call(call_request("fail", {"type": "ValueError", "message": "bad value", "chained": True}))
    error = reply.error.error
    assert error.code == "PYTHON_EXCEPTION"
    assert error.message == "ValueError: bad value"
    assert error.python.type == "ValueError"
    assert error.python.message == "bad value"
    assert [(link.type, link.message, link.relation) for link in error.python.chain] == [
        ("KeyError", "'inner cause'", "cause")
    ]
    assert "The above exception was the direct cause" in error.python.traceback
    assert error.python.traceback.rstrip().endswith("ValueError: bad value")


async def test_memory_error_is_resource_exhausted(client: BridgeClient) -> None:
    reply = await client.call(call_request("fail", {"type": "MemoryError", "message": "no room"}))
    assert reply.error.error.code == "RESOURCE_EXHAUSTED"
    assert reply.error.error.python.type == "MemoryError"


async def test_nan_is_a_serialization_error(client: BridgeClient) -> None:
    reply = await client.call(call_request("nan"))
    assert reply.error.error.code == "SERIALIZATION_ERROR"
    assert error_details(reply)["path"] == "$"


async def test_session_delta_and_snapshot(client: BridgeClient) -> None:
    put = await client.call(call_request("session_put", {"key": "k", "value": [1, 2]}, session_id="s1", session={}))
    assert put.result.session.set == {"k": b"[1,2]"}
    got = await client.call(call_request("session_get", {"key": "k"}, session_id="s1", session={"k": {"x": 1}}))
    assert value_of(got.result.value) == {"x": 1}
    assert not got.result.HasField("session")
    incr = await client.call(call_request("session_incr", {"key": "n", "by": 2}, session_id="s1", session={"n": 40}))
    assert value_of(incr.result.value) == 42
    assert incr.result.session.set == {"n": b"42"}


async def test_session_write_without_session_fails(client: BridgeClient) -> None:
    reply = await client.call(call_request("session_put", {"key": "k", "value": 1}))
    assert reply.error.error.code == "PYTHON_EXCEPTION"
    assert reply.error.error.python.type == "RuntimeError"


async def test_print_goes_to_stdout_and_breaks_nothing(client: BridgeClient, showcase: WorkerProcess) -> None:
    reply = await client.call(call_request("noisy", {"text": "hello from print()"}))
    assert value_of(reply.result.value) == "hello from print()"
    assert value_of((await client.call(call_request("ping"))).result.value) == "pong"
    for _ in range(50):  # line-buffered, so it shows up promptly
        if "hello from print()" in showcase.stdout():
            break
        await asyncio.sleep(0.05)
    assert "hello from print()" in showcase.stdout()


async def test_loop_answers_while_sync_tool_runs(client: BridgeClient, channel: grpc.aio.Channel) -> None:
    (busy,) = client.send(call_request("cpu", {"ms": 600}))
    await asyncio.sleep(0.05)
    check = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), metadata=auth())
    assert check.status == health_pb2.HealthCheckResponse.SERVING
    # Order, not time: health answered while the 600 ms tool still runs.
    assert client._queue(busy).empty(), "health waited for the sync tool"
    assert (await client.next_message(busy)).WhichOneof("kind") == "result"


async def test_health_serving(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE_NAME):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), metadata=auth())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("metadata", [(), auth("wrong-token")], ids=["missing", "wrong"])
async def test_unauthenticated(channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...]) -> None:
    stub = pb_grpc.WorkerBridgeStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as describe:
        await stub.Describe(pb.DescribeRequest(), metadata=metadata)
    assert describe.value.code() == grpc.StatusCode.UNAUTHENTICATED

    health = health_pb2_grpc.HealthStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as check:
        await health.Check(health_pb2.HealthCheckRequest(service=""), metadata=metadata)
    assert check.value.code() == grpc.StatusCode.UNAUTHENTICATED

    async def silent_host() -> AsyncIterator[pb.HostFrame]:
        # Sending nothing avoids a client-side race (a write after the server's
        # abort is reported as INTERNAL by grpc.aio); the abort must come anyway.
        await asyncio.Event().wait()
        yield pb.HostFrame()

    async def drain(connect: AsyncIterator[pb.WorkerFrame]) -> None:
        async with asyncio.timeout(5):
            async for _ in connect:
                pass

    with pytest.raises(grpc.aio.AioRpcError) as stream:
        await drain(stub.Connect(silent_host(), metadata=metadata))
    assert stream.value.code() == grpc.StatusCode.UNAUTHENTICATED

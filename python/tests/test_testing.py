"""snakepit_bridge.testing: tools called as the worker calls them, without gRPC (and the same answers as a worker)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import pytest
from helpers import BridgeClient, call_request, value_of

from snakepit_bridge import Adapter, CallContext, HostToolError, HostToolTimeout, ToolError, tool
from snakepit_bridge.errors import qualified_type_name
from snakepit_bridge.examples.showcase import ShowcaseAdapter
from snakepit_bridge.testing import SessionDelta, ToolHarness, ToolResult
from snakepit_bridge.wire import pb


class Tools(Adapter):
    """One tool per path of the harness; ``events`` records what ran, in order."""

    def setup(self) -> None:
        self.events: list[str] = ["setup"]

    def teardown(self) -> None:
        self.events.append("teardown")

    @tool
    def scale(self, values: list[float], factor: float = 2.0) -> list[float]:
        return [value * factor for value in values]

    @tool
    def shape(self) -> tuple[int, int]:
        return (2, 3)  # a tuple reaches the host as a JSON array

    @tool
    def context(self, ctx: CallContext) -> dict[str, Any]:
        return {
            "metadata": ctx.metadata,
            "session_id": ctx.session_id,
            "budget": ctx.remaining() is not None,
            "worker_id": ctx.worker_id,
            "tool": ctx.tool,
        }

    @tool
    def remember(self, key: str, value: Any, ctx: CallContext, forget: str = "") -> int:
        ctx.session[key] = value
        if forget:
            del ctx.session[forget]
        return len(ctx.session)

    @tool
    def remember_then_fail(self, ctx: CallContext) -> None:
        ctx.session["lost"] = True
        raise ToolError("CONFLICT", "refused", {"why": "test"})

    @tool
    def crash(self) -> None:
        raise LookupError("not here")

    @tool
    def stash_set(self, ctx: CallContext) -> None:
        ctx.session["s"] = {1, 2}  # checked when assigned: a set is not JSON

    @tool
    def wait(self, ctx: CallContext) -> str:
        return "cancelled" if not ctx.sleep(30) else "slept"

    @tool
    def count(self, n: int) -> Iterator[int]:
        try:
            yield from range(n)
        finally:
            self.events.append("count closed")

    @tool
    def count_then_report(self, n: int) -> Generator[int, None, int]:
        yield from range(n)
        return n  # a generator's return value is the call's result

    @tool(streaming=True)
    def letters(self) -> list[str]:
        return ["a", "b"]  # streaming=True streams the items of a returned iterable

    @tool
    def bad_chunk(self) -> Iterator[object]:
        yield 1
        yield object()

    @tool
    def lookup(self, user_id: int, ctx: CallContext) -> str:
        user = ctx.call_host("lookup_user", {"id": user_id})
        return f"{user['name']} ({ctx.host_tools})"

    @tool
    def lookup_failure(self, ctx: CallContext) -> dict[str, Any]:
        try:
            ctx.call_host("lookup_user", {"id": 1})
        except HostToolError as error:
            return {
                "type": type(error).__name__,
                "code": error.code,
                "message": error.message,
                "host_type": error.host_type,
                "status": error.status,
            }
        return {}

    @tool(inline=True)
    def inline_host(self, ctx: CallContext) -> Any:
        return ctx.call_host("lookup_user", {})

    @tool
    def invert(self, data: bytes) -> bytes:
        return bytes(255 - byte for byte in data)

    @tool
    async def double_async(self, x: int, ctx: CallContext) -> int:
        await asyncio.sleep(0)
        user = await ctx.call_host_async("lookup_user", {"id": x}) if ctx.host_tools else None
        return x * 2 if user is None else user["id"]

    @tool
    async def wait_async(self) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.events.append("wait_async cancelled")
            raise
        return "slept"

    @tool
    async def ticks(self, n: int) -> AsyncIterator[int]:
        try:
            for i in range(n):
                await asyncio.sleep(0)
                yield i
        finally:
            self.events.append("ticks closed")


@pytest.fixture
def harness() -> Iterator[ToolHarness]:
    with ToolHarness.serving(Tools) as serving:
        yield serving


def events(harness: ToolHarness) -> list[str]:
    assert isinstance(harness.adapter, Tools)
    return harness.adapter.events


def test_serving_runs_setup_before_and_teardown_after() -> None:
    with ToolHarness.serving(Tools) as harness:
        assert events(harness) == ["setup"]
        assert harness.call("scale", {"values": [1, 2.5]}).value == [2, 5.0]
    assert events(harness) == ["setup", "teardown"]


def test_tools_are_described_as_the_worker_discovers_them(harness: ToolHarness) -> None:
    scale = harness.tools["scale"]
    assert {name: (spec.type.name, spec.required) for name, spec in scale.params.items()} == {
        "values": ("array", True),
        "factor": ("number", False),
    }
    assert harness.tools["count"].streaming and not scale.streaming
    assert "ctx" not in harness.tools["context"].params


def test_an_adapter_the_worker_would_refuse() -> None:
    class Empty(Adapter):
        pass

    class Clash(Adapter):
        @tool(name="same")
        def one(self) -> None: ...

        @tool(name="same")
        def two(self) -> None: ...

    with pytest.raises(TypeError, match="no @tool methods"):
        ToolHarness(Empty())
    with pytest.raises(TypeError, match="tool name 'same' is used by both"):
        ToolHarness(Clash())


def test_a_result_is_what_the_host_receives(harness: ToolHarness) -> None:
    result = harness.call("shape")
    assert result == ToolResult(value=[2, 3], chunks=[], session={}, delta=None, cancelled=False)


def test_arguments_are_validated_like_the_worker_does(harness: ToolHarness) -> None:
    with pytest.raises(ToolError) as raised:
        harness.call("scale", {"values": [1, "two"], "extra": 1})
    assert raised.value.code == "INVALID_ARGUMENTS"
    assert raised.value.message == (
        "invalid arguments for scale: $.values[1] must be number, got string; $.extra is not a parameter"
    )
    assert raised.value.details["parameters"] == ["values", "factor"]
    with pytest.raises(ToolError, match=r"\$\.values is required"):
        harness.call("scale")
    with pytest.raises(ToolError, match="scale has no bytes parameter"):
        harness.call("scale", b"\x00")


def test_arguments_json_cannot_carry_are_refused(harness: ToolHarness) -> None:
    with pytest.raises(ToolError) as raised:
        harness.call("scale", {"values": [float("nan")]})
    assert raised.value.code == "SERIALIZATION_ERROR" and raised.value.details["path"] == "$.values[0]"


def test_unknown_tools_and_the_wrong_call_kind(harness: ToolHarness) -> None:
    with pytest.raises(ToolError) as raised:
        harness.call("scael")
    assert raised.value.code == "TOOL_NOT_FOUND" and "scale" in raised.value.details["available"]
    with pytest.raises(ToolError, match="count is a streaming tool: call it with executeStream"):
        harness.call("count", {"n": 1})


def test_binary_arguments_and_results(harness: ToolHarness) -> None:
    assert harness.call("invert", b"\x00\xff\x10").value == b"\xff\x00\xef"


def test_context_carries_metadata_session_id_and_budget(harness: ToolHarness) -> None:
    outside = harness.call("context", metadata={"traceparent": "00-abc"})
    assert outside.value == {
        "metadata": {"traceparent": "00-abc"},
        "session_id": "",
        "budget": False,
        "worker_id": "test-worker",
        "tool": "context",
    }
    inside = harness.call("context", session={}, session_id="s-9", timeout_ms=5000)
    assert inside.value["session_id"] == "s-9" and inside.value["budget"] is True


def test_the_session_after_the_call_and_its_delta(harness: ToolHarness) -> None:
    before = {"keep": [1, 2], "drop": "x"}
    result = harness.call("remember", {"key": "new", "value": {"a": (1, 2)}, "forget": "drop"}, session=before)
    assert result.value == 2
    assert result.session == {"keep": [1, 2], "new": {"a": [1, 2]}}
    assert result.delta == SessionDelta(set={"new": {"a": [1, 2]}}, deleted=["drop"])
    assert before == {"keep": [1, 2], "drop": "x"}  # the caller's dict is left alone


def test_a_tool_error_is_raised_as_the_worker_answers_it(harness: ToolHarness) -> None:
    with pytest.raises(ToolError) as raised:
        harness.call("remember_then_fail", session={"a": 1})
    assert (raised.value.code, raised.value.message, raised.value.details) == ("CONFLICT", "refused", {"why": "test"})


def test_session_rules_of_the_worker(harness: ToolHarness) -> None:
    with pytest.raises(RuntimeError, match="this call has no session"):
        harness.call("remember", {"key": "a", "value": 1})  # no session given: writes would be lost
    with pytest.raises(ToolError, match="session value 's' cannot be serialized: \\$: a set is not JSON"):
        harness.call("stash_set", session={})
    with pytest.raises(ToolError, match="session value 'bad' cannot be serialized"):
        harness.call("remember", {"key": "a", "value": 1}, session={"bad": float("inf")})


def test_the_tools_own_exception_is_raised(harness: ToolHarness) -> None:
    # The worker answers it as PYTHON_EXCEPTION with this type, message and traceback.
    with pytest.raises(LookupError, match="not here"):
        harness.call("crash")


def test_streams_and_a_generators_return_value(harness: ToolHarness) -> None:
    assert harness.stream("count", {"n": 3}) == ToolResult(None, [0, 1, 2], {}, None, False)
    assert events(harness)[-1] == "count closed"
    reported = harness.stream("count_then_report", {"n": 2})
    assert (reported.chunks, reported.value) == ([0, 1], 2)
    assert harness.stream("letters").chunks == ["a", "b"]


def test_stream_of_a_plain_tool_gives_its_result_as_the_only_chunk(harness: ToolHarness) -> None:
    assert harness.stream("shape").chunks == [[2, 3]]


def test_a_chunk_json_cannot_carry_fails_the_stream(harness: ToolHarness) -> None:
    with pytest.raises(ToolError) as raised:
        harness.stream("bad_chunk")
    assert raised.value.code == "SERIALIZATION_ERROR"
    assert raised.value.message.startswith("chunk 1 cannot be serialized: $: object is not JSON-serializable")


def test_cancelling_a_stream_closes_its_generator(harness: ToolHarness) -> None:
    stopped = harness.stream("count", {"n": 100}, cancel_after=2, session={"a": 1})
    assert stopped == ToolResult(None, [0, 1], {"a": 1}, None, True)
    assert events(harness)[-1] == "count closed"
    assert harness.stream("count", {"n": 100}, cancel_after=0).chunks == []


def test_a_cancelled_sync_tool_sees_the_flag(harness: ToolHarness) -> None:
    # ctx.sleep(30) returns at once; whatever it returns, a cancelled call's answer is Cancelled.
    assert harness.call("wait", cancelled=True) == ToolResult(None, [], {}, None, True)


def test_host_tools_are_faked(harness: ToolHarness) -> None:
    seen: list[dict[str, Any]] = []

    def lookup_user(args: dict[str, Any]) -> dict[str, Any]:
        seen.append(args)
        return {"name": "Ada"}

    result = harness.call("lookup", {"user_id": 7}, host_tools={"lookup_user": lookup_user})
    assert result.value == "Ada (['lookup_user'])"
    assert seen == [{"id": 7}]


def test_host_tool_failures_reach_the_tool_typed(harness: ToolHarness) -> None:
    def typed(args: dict[str, Any]) -> None:
        raise HostToolError("NOT_FOUND", "no user 1", {"hostType": "NotFoundException", "status": 404})

    def timed_out(args: dict[str, Any]) -> None:
        raise HostToolTimeout("TIMEOUT", "too slow")

    def throwing(args: dict[str, Any]) -> None:
        raise KeyError("id")

    assert harness.call("lookup_failure", host_tools={"lookup_user": typed}).value == {
        "type": "HostToolError",
        "code": "NOT_FOUND",
        "message": "no user 1",
        "host_type": "NotFoundException",
        "status": 404,
    }
    assert harness.call("lookup_failure", host_tools={"lookup_user": timed_out}).value["type"] == "HostToolTimeout"
    assert harness.call("lookup_failure", host_tools={"lookup_user": throwing}).value == {
        "type": "HostToolError",
        "code": "HOST_EXCEPTION",
        "message": "'id'",
        "host_type": "KeyError",
        "status": None,
    }
    missing = harness.call("lookup_failure")
    assert (missing.value["code"], missing.value["message"]) == ("TOOL_NOT_FOUND", "the host has no tool 'lookup_user'")


def test_an_inline_tool_has_no_host(harness: ToolHarness) -> None:
    with pytest.raises(HostToolError, match="no host connection"):
        harness.call("inline_host", host_tools={"lookup_user": lambda args: 1})


def test_async_tools_from_a_sync_test(harness: ToolHarness) -> None:
    assert harness.call("double_async", {"x": 4}).value == 8
    next_user = {"lookup_user": lambda args: {"id": args["id"] + 1}}
    assert harness.call("double_async", {"x": 4}, host_tools=next_user).value == 5
    assert harness.stream("ticks", {"n": 3}).chunks == [0, 1, 2]


def test_cancelling_async_tools(harness: ToolHarness) -> None:
    assert harness.call("wait_async", cancelled=True).cancelled
    assert events(harness)[-1] == "wait_async cancelled"  # CancelledError at its first await
    stopped = harness.stream("ticks", {"n": 100}, cancel_after=1)
    assert (stopped.chunks, stopped.cancelled) == ([0], True)
    assert events(harness)[-1] == "ticks closed"


async def test_the_async_forms_inside_a_running_loop(harness: ToolHarness) -> None:
    assert (await harness.call_async("double_async", {"x": 3})).value == 6
    assert (await harness.call_async("scale", {"values": [1]})).value == [2]  # a sync tool, in a thread
    assert (await harness.stream_async("ticks", {"n": 2})).chunks == [0, 1]
    assert (await harness.stream_async("count", {"n": 2}, cancel_after=1)).chunks == [0]
    with pytest.raises(RuntimeError, match="await call_async"):
        harness.call("double_async", {"x": 3})  # asyncio.run cannot nest
    assert harness.call("scale", {"values": [1]}).value == [2]  # sync tools need no loop


# ------------------------------------------------------------ the same answers as a real worker

PARITY = [
    pytest.param("add", {"a": 2, "b": 3}, None, id="result"),
    pytest.param("echo", {"value": [1, "é", None, {"b": True, "f": 1.5}]}, None, id="json round trip"),
    pytest.param("add", {"a": "2", "c": 1}, None, id="invalid arguments"),
    pytest.param("nan", {}, None, id="unserializable result"),
    pytest.param("no_such_tool", {}, None, id="unknown tool"),
    pytest.param("count", {"n": 2}, None, id="streaming tool called without a stream"),
    pytest.param("fail", {"type": "KeyError", "message": "k"}, None, id="python exception"),
    pytest.param("session_incr", {"key": "n", "by": 2}, {"n": 40, "other": "x"}, id="session delta"),
    pytest.param("session_put", {"key": "n", "value": 1}, None, id="session write without a session"),
]


def worker_outcome(reply: pb.WorkerMessage) -> tuple[Any, ...]:
    kind = reply.WhichOneof("kind")
    if kind == "result":
        delta = reply.result.session
        return (
            "result",
            value_of(reply.result.value),
            {key: json.loads(data) for key, data in delta.set.items()},
            list(delta.deleted),
        )
    error = reply.error.error
    if error.code == "PYTHON_EXCEPTION":
        return ("exception", error.python.type, error.python.message)
    return ("error", error.code, error.message, json.loads(error.details_json) if error.details_json else {})


async def harness_outcome(
    harness: ToolHarness, tool_name: str, args: dict[str, Any], session: dict[str, Any] | None
) -> tuple[Any, ...]:
    try:
        result = await harness.call_async(tool_name, args, session=session, session_id="s1")
    except ToolError as error:
        return ("error", error.code, error.message, error.details)
    except Exception as exc:  # the worker's PYTHON_EXCEPTION
        return ("exception", qualified_type_name(exc), str(exc))
    delta = result.delta or SessionDelta({}, [])
    return ("result", result.value, delta.set, delta.deleted)


@pytest.mark.parametrize(("tool_name", "args", "session"), PARITY)
async def test_answers_match_a_real_worker(
    client: BridgeClient, tool_name: str, args: dict[str, Any], session: dict[str, Any] | None
) -> None:
    reply = await client.call(
        call_request(tool_name, args, session_id="s1" if session is not None else "", session=session)
    )
    adapter = ShowcaseAdapter()
    adapter.setup()
    assert await harness_outcome(ToolHarness(adapter), tool_name, args, session) == worker_outcome(reply)


async def test_chunks_match_a_real_worker(client: BridgeClient) -> None:
    messages = await client.collect(client.send(call_request("count", {"n": 4}, stream=True))[0])
    adapter = ShowcaseAdapter()
    adapter.setup()
    result = await ToolHarness(adapter).stream_async("count", {"n": 4})
    assert result.chunks == [value_of(message.chunk.value) for message in messages[:-1]]
    assert messages[-1].WhichOneof("kind") == "result" and not result.cancelled


def test_arrays_and_bytes_through_the_harness() -> None:
    numpy = pytest.importorskip("numpy")
    with ToolHarness.serving(ShowcaseAdapter) as showcase:
        x = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
        scaled = showcase.call(
            "array_scale", {"x": x.T, "factor": 2.0}
        ).value  # non-contiguous in, as the host sends it
        assert scaled.dtype == numpy.float32 and not scaled.flags.writeable
        numpy.testing.assert_array_equal(scaled, x.T * 2)
        assert showcase.call("array_sum", {"x": x}).value == 15.0
        pieces = showcase.stream("array_split", {"x": x, "parts": 2}).chunks
        assert [piece.shape for piece in pieces] == [(1, 3), (1, 3)]
        assert showcase.call("bytes_split", {"data": b"abcde", "size": 3}).value == [b"abc", b"de"]
        with pytest.raises(ToolError) as listed:
            showcase.call("array_sum", {"x": [1.0, 2.0]})
        assert listed.value.code == "INVALID_ARGUMENTS" and "send an NdArray" in listed.value.message
        with pytest.raises(ToolError) as stored:
            showcase.call("session_put", {"key": "w", "value": x}, session={})
        assert stored.value.code == "SERIALIZATION_ERROR" and "session value 'w'" in stored.value.message


def test_fake_host_tools_exchange_arrays() -> None:
    numpy = pytest.importorskip("numpy")
    seen: list[Any] = []

    def embed(args: dict[str, Any]) -> Any:
        seen.append(args["image"])
        return {"vector": numpy.ones(2, dtype=numpy.float32), "tag": b"t"}

    with ToolHarness.serving(ShowcaseAdapter) as showcase:
        image = numpy.zeros((2, 2), dtype=numpy.uint8)
        result = showcase.call("call_host", {"name": "embed", "args": {"image": image}}, host_tools={"embed": embed})
    assert seen[0].dtype == numpy.uint8 and seen[0].shape == (2, 2) and not seen[0].flags.writeable
    assert result.value["tag"] == b"t"
    numpy.testing.assert_array_equal(result.value["vector"], [1.0, 1.0])

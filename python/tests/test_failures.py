"""Every failure gets a terminal reply, however badly the exception is made."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from helpers import BridgeClient, WorkerProcess, call_request, serving, value_of

from snakepit_bridge import ToolError
from snakepit_bridge.errors import error_info

ADAPTERS = str(Path(__file__).parent / "adapters")
TOOLS = ["fail_sync", "fail_async", "fail_inline"]


@pytest.fixture(scope="module")
def failing() -> Iterator[WorkerProcess]:
    yield from serving(WorkerProcess(adapter="sample_adapters:FailingAdapter", extra_path=ADAPTERS))


@pytest.fixture
async def client(failing: WorkerProcess) -> AsyncIterator[BridgeClient]:
    async with grpc.aio.insecure_channel(failing.address) as channel, BridgeClient(channel) as bridge:
        yield bridge


async def fail(client: BridgeClient, tool: str, kind: str) -> tuple[str, str, bytes]:
    """Code, message and details of the failure; the stream must still serve afterwards."""
    reply = await client.call(call_request(tool, {"kind": kind}))
    assert reply.WhichOneof("kind") == "error", reply
    assert value_of((await client.call(call_request("ping"))).result.value) == "pong"
    assert client.stream_error is None and not client.ended.is_set()
    error = reply.error.error
    return error.code, error.message, error.details_json


@pytest.mark.parametrize("tool", TOOLS)
async def test_non_string_message_and_code_are_coerced(client: BridgeClient, tool: str) -> None:
    assert (await fail(client, tool, "int_message"))[:2] == ("INVALID_ARGUMENTS", "42")
    assert (await fail(client, tool, "int_code"))[:2] == ("42", "the code is a number")


@pytest.mark.parametrize("tool", TOOLS)
async def test_an_exception_whose_str_raises(client: BridgeClient, tool: str) -> None:
    code, message, _ = await fail(client, tool, "unprintable")
    assert code == "PYTHON_EXCEPTION"
    assert message == "sample_adapters.Unprintable: <unprintable Unprintable>"


@pytest.mark.parametrize("tool", TOOLS)
async def test_an_undescribable_failure_is_internal_and_logged(
    client: BridgeClient, failing: WorkerProcess, tool: str
) -> None:
    code, message, _ = await fail(client, tool, "unprintable_message")
    assert code == "INTERNAL"
    assert f"tool '{tool}' failed with snakepit_bridge.errors.ToolError" in message
    log = [json.loads(line) for line in failing.stderr().splitlines() if "describing that failure failed" in line]
    assert any(entry["level"] == "error" and "ToolError" in entry["exc"] and tool in entry["msg"] for entry in log)


@pytest.mark.parametrize("tool", TOOLS)
async def test_details_that_are_not_json(client: BridgeClient, tool: str) -> None:
    code, message, details = await fail(client, tool, "bad_details")
    assert (code, message) == ("INVALID_ARGUMENTS", "odd details")
    decoded = json.loads(details)
    assert decoded["unencodable_details"] == "<unprintable dict>"
    assert decoded["reason"] == "RuntimeError: no str"


@pytest.mark.parametrize("tool", TOOLS)
async def test_non_ascii_text_stays_intact(client: BridgeClient, tool: str) -> None:
    assert (await fail(client, tool, "unicode"))[:2] == ("INVALID_ARGUMENTS", "café introuvable: 数据 ☃")
    # A lone surrogate (an undecodable file name) is escaped, not fatal.
    assert (await fail(client, tool, "surrogate"))[:2] == ("PYTHON_EXCEPTION", "ValueError: caf\\udcff.txt")


async def test_a_stream_that_fails_badly_still_ends(client: BridgeClient) -> None:
    (request_id,) = client.send(call_request("fail_stream", {"kind": "unprintable_message"}, stream=True))
    messages = await client.collect(request_id)
    assert [m.WhichOneof("kind") for m in messages] == ["chunk", "error"]
    assert messages[-1].error.error.code == "INTERNAL"


def test_error_info_coerces_a_malformed_tool_error() -> None:
    info = error_info(ToolError("INVALID_ARGUMENTS", 42))  # type: ignore[arg-type]
    assert (info.code, info.message) == ("INVALID_ARGUMENTS", "42")
    surrogate = error_info(ToolError("X", "m", {"name": "caf\udcff"}))
    assert json.loads(surrogate.details_json) == {"name": "caf\udcff"}

"""Arrays and bytes as values through a real worker over gRPC: the wire as the host sees it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from helpers import BridgeClient, WorkerProcess, auth, blob, blob_paths, call_request, serving, value_of

from snakepit_bridge.wire import pb, pb_grpc

ADAPTERS = str(Path(__file__).parent / "adapters")


def result_of(message: pb.WorkerMessage) -> pb.Payload:
    assert message.WhichOneof("kind") == "result", message
    return message.result.value


def error_of(message: pb.WorkerMessage, code: str) -> tuple[str, dict[str, Any]]:
    assert message.WhichOneof("kind") == "error", message
    assert message.error.error.code == code, message.error.error
    details: dict[str, Any] = json.loads(message.error.error.details_json or b"{}")
    return message.error.error.message, details


def array(blob_: pb.Blob, dtype: str) -> np.ndarray:
    """A blob as the host reads it: little-endian elements in C order."""
    assert blob_.dtype == dtype
    return np.frombuffer(blob_.data, dtype=np.dtype(dtype).newbyteorder("<")).reshape(tuple(blob_.shape))


async def describe(address: str) -> dict[str, pb.ToolSpec]:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await pb_grpc.WorkerBridgeStub(channel).Describe(pb.DescribeRequest(), metadata=auth())
    return {spec.name: spec for spec in reply.tools}


@pytest.fixture(scope="module")
def typed() -> Iterator[WorkerProcess]:
    yield from serving(WorkerProcess(adapter="sample_adapters:ArrayAdapter", extra_path=ADAPTERS))


@pytest.fixture
async def typed_client(typed: WorkerProcess) -> AsyncIterator[BridgeClient]:
    async with grpc.aio.insecure_channel(typed.address) as channel, BridgeClient(channel) as bridge:
        yield bridge


async def test_describe_shows_array_and_bytes_parameters(showcase: WorkerProcess, typed: WorkerProcess) -> None:
    tools = await describe(showcase.address)
    (x,) = tools["array_sum"].parameters
    assert (x.name, x.type, x.dtype, x.ndim, x.required) == ("x", "ndarray", "", 0, True)
    assert [(p.name, p.type) for p in tools["array_scale"].parameters] == [("x", "ndarray"), ("factor", "number")]
    assert tools["array_split"].streaming
    assert [(p.name, p.type) for p in tools["bytes_split"].parameters] == [("data", "binary"), ("size", "integer")]
    fit = {p.name: p for p in (await describe(typed.address))["fit"].parameters}
    assert (fit["x"].type, fit["x"].dtype, fit["x"].ndim) == ("ndarray", "float32", 2)
    assert (fit["labels"].type, fit["labels"].dtype, fit["labels"].ndim) == ("ndarray", "int64", 0)
    assert (fit["rate"].type, fit["rate"].dtype) == ("number", "")


async def test_an_array_in_and_a_number_out(client: BridgeClient) -> None:
    x = np.arange(1, 7, dtype="<f4")
    reply = await client.call(
        call_request("array_sum", {"x": None}, blobs=[blob(["x"], "float32", [2, 3], x.tobytes())])
    )
    assert value_of(result_of(reply)) == 21.0


async def test_an_array_in_and_an_array_out(client: BridgeClient) -> None:
    x = np.arange(6, dtype="<i2").reshape(2, 3)
    request = call_request("array_scale", {"x": None, "factor": 2.5}, blobs=[blob(["x"], "int16", [2, 3], x.tobytes())])
    value = result_of(await client.call(request))
    assert value.json == b"null" and blob_paths(value) == [[]]
    np.testing.assert_array_equal(array(value.blobs[0], "float64"), x * 2.5)


async def test_arrays_and_bytes_keep_their_places_deep_inside_values(client: BridgeClient) -> None:
    matrix = np.arange(4, dtype="<u8").reshape(2, 2)
    args = {"value": {"a": [None, {"b": None}], "n": 1}}
    blobs = [
        blob(["value", "a", 0], "uint64", [2, 2], matrix.tobytes()),
        blob(["value", "a", 1, "b"], "bytes", [], b"\x00\xff"),
    ]
    value = result_of(await client.call(call_request("echo", args, blobs=blobs)))
    assert json.loads(value.json) == {"a": [None, {"b": None}], "n": 1}
    assert blob_paths(value) == [["a", 0], ["a", 1, "b"]]
    np.testing.assert_array_equal(array(value.blobs[0], "uint64"), matrix)
    assert (value.blobs[1].dtype, list(value.blobs[1].shape), value.blobs[1].data) == ("bytes", [], b"\x00\xff")


async def test_stream_chunks_carry_arrays(client: BridgeClient) -> None:
    x = np.arange(10, dtype="<f4").reshape(5, 2)
    request = call_request(
        "array_split", {"x": None, "parts": 2}, blobs=[blob(["x"], "float32", [5, 2], x.tobytes())], stream=True
    )
    (request_id,) = client.send(request)
    messages = await client.collect(request_id)
    assert [m.WhichOneof("kind") for m in messages] == ["chunk", "chunk", "result"]
    pieces = [array(m.chunk.value.blobs[0], "float32") for m in messages[:2]]
    np.testing.assert_array_equal(np.concatenate(pieces), x)
    assert [p.shape for p in pieces] == [(3, 2), (2, 2)]


async def test_bytes_by_name_and_bytes_inside_a_result(client: BridgeClient) -> None:
    split = await client.call(
        call_request("bytes_split", {"data": None, "size": 2}, blobs=[blob(["data"], "bytes", [], b"abcde")])
    )
    value = result_of(split)
    assert json.loads(value.json) == [None, None, None] and blob_paths(value) == [[0], [1], [2]]
    assert [b.data for b in value.blobs] == [b"ab", b"cd", b"e"]
    # The whole-payload binary path is unchanged, and a bytes blob reaches the same parameter by name.
    assert result_of(await client.call(call_request("reverse_bytes", binary=b"abc"))).binary == b"cba"
    named = await client.call(
        call_request("reverse_bytes", {"data": None}, blobs=[blob(["data"], "bytes", [], b"abc")])
    )
    assert result_of(named).binary == b"cba"


async def test_an_array_where_a_scalar_is_declared_and_a_list_where_an_array_is(client: BridgeClient) -> None:
    scalar = await client.call(
        call_request("add", {"a": None, "b": 1}, blobs=[blob(["a"], "float64", [1], b"\x00" * 8)])
    )
    message, details = error_of(scalar, "INVALID_ARGUMENTS")
    assert details["errors"] == [{"path": "$.a", "problem": "wrong_type", "expected": "number", "got": "ndarray"}]
    listed = await client.call(call_request("array_sum", {"x": [1, 2, 3]}))
    message, details = error_of(listed, "INVALID_ARGUMENTS")
    assert "$.x must be ndarray, got array (send an NdArray" in message
    assert details["errors"][0]["path"] == "$.x"
    assert value_of(result_of(await client.call(call_request("ping")))) == "pong"


async def test_a_wrong_dtype_or_dimension_count_names_path_and_expectation(typed_client: BridgeClient) -> None:
    blobs = [blob(["x"], "float64", [4], b"\x00" * 32), blob(["labels"], "int64", [1], b"\x00" * 8)]
    reply = await typed_client.call(call_request("fit", {"x": None, "labels": None}, blobs=blobs))
    message, details = error_of(reply, "INVALID_ARGUMENTS")
    assert [(e["path"], e["problem"], e["expected"], e["got"]) for e in details["errors"]] == [
        ("$.x", "wrong_dtype", "float32", "float64"),
        ("$.x", "wrong_ndim", "2-d", "1-d"),
    ]
    assert "$.x must be an array of dtype float32, got float64" in message
    x = np.eye(2, dtype="<f4")
    blobs = [blob(["x"], "float32", [2, 2], x.tobytes()), blob(["labels"], "int64", [1], b"\x07" + b"\x00" * 7)]
    fitted = result_of(await typed_client.call(call_request("fit", {"x": None, "labels": None}, blobs=blobs)))
    assert json.loads(fitted.json) == {"x": None, "labels": None, "rate": 0.1, "writeable": False}
    np.testing.assert_array_equal(array(fitted.blobs[0], "float32"), x)
    assert array(fitted.blobs[1], "int64").tolist() == [7]
    mask = result_of(
        await typed_client.call(
            call_request("mask", {"x": None}, blobs=[blob(["x"], "float64", [2], np.array([-1.0, 2.0]).tobytes())])
        )
    )
    assert (mask.blobs[0].dtype, mask.blobs[0].data) == ("bool", b"\x00\x01")


async def test_a_malformed_blob_fails_only_its_call(client: BridgeClient, showcase: WorkerProcess) -> None:
    short = await client.call(call_request("array_sum", {"x": None}, blobs=[blob(["x"], "float32", [3], b"\x00" * 8)]))
    message, details = error_of(short, "SERIALIZATION_ERROR")
    assert details["path"] == "$.x" and "takes 12 bytes, got 8" in message
    misplaced = await client.call(call_request("array_sum", {"x": 1}, blobs=[blob(["y"], "bytes", [], b"")]))
    assert error_of(misplaced, "SERIALIZATION_ERROR")[1]["path"] == "$.y"
    assert value_of(result_of(await client.call(call_request("ping")))) == "pong"
    assert showcase.proc is not None and showcase.proc.poll() is None


async def test_an_array_written_to_the_session_is_refused_naming_the_key(client: BridgeClient) -> None:
    request = call_request(
        "session_put",
        {"key": "weights", "value": None},
        blobs=[blob(["value"], "float32", [1], b"\x00" * 4)],
        session_id="s1",
        session={},
    )
    message, details = error_of(await client.call(request), "SERIALIZATION_ERROR")
    assert "session value 'weights'" in message and ".tolist()" in details["reason"]


async def test_host_calls_carry_arrays_both_ways(client: BridgeClient) -> None:
    client.send_host_tools("embed")
    image = np.arange(4, dtype=np.uint8).reshape(2, 2)
    (request_id,) = client.send(
        call_request(
            "call_host",
            {"name": "embed", "args": {"image": None}},
            blobs=[blob(["args", "image"], "uint8", [2, 2], image.tobytes())],
        )
    )
    host_call = (await client.next_message(request_id)).host_call
    assert host_call.tool == "embed" and json.loads(host_call.args.json) == {"image": None}
    assert blob_paths(host_call.args) == [["image"]]
    np.testing.assert_array_equal(array(host_call.args.blobs[0], "uint8"), image)
    vector = np.array([0.25, 0.5], dtype="<f4")
    client.reply_host(
        request_id, host_call.call_id, pb.Payload(json=b"null", blobs=[blob([], "float32", [2], vector.tobytes())])
    )
    value = result_of(await client.next_message(request_id))
    assert value.json == b"null"
    np.testing.assert_array_equal(array(value.blobs[0], "float32"), vector)


@pytest.fixture
def no_numpy(spawn: Callable[..., WorkerProcess], tmp_path: Path) -> WorkerProcess:
    """A showcase worker where ``import numpy`` fails, as if it were not installed."""
    (tmp_path / "numpy").mkdir()
    (tmp_path / "numpy" / "__init__.py").write_text('raise ImportError("numpy is hidden for this test")\n')
    worker = spawn(extra_path=str(tmp_path))
    assert worker.ready_line.startswith("READY "), worker.stderr()
    return worker


async def test_without_numpy_bytes_work_and_arrays_are_refused_clearly(no_numpy: WorkerProcess) -> None:
    tools = await describe(no_numpy.address)
    assert "reverse_bytes" in tools and "array_sum" not in tools  # the array tools are simply not served
    async with grpc.aio.insecure_channel(no_numpy.address) as channel, BridgeClient(channel) as bridge:
        split = await bridge.call(
            call_request("bytes_split", {"data": None, "size": 3}, blobs=[blob(["data"], "bytes", [], b"abcdef")])
        )
        assert [b.data for b in result_of(split).blobs] == [b"abc", b"def"]
        refused = await bridge.call(
            call_request("echo", {"value": [None]}, blobs=[blob(["value", 0], "float32", [1], b"\x00" * 4)])
        )
        message, details = error_of(refused, "INVALID_ARGUMENTS")
        assert "$.value[0] is a float32 array" in message and "install numpy" in message
        assert details["errors"][0]["path"] == "$.value[0]"
        assert value_of(result_of(await bridge.call(call_request("ping")))) == "pong"

"""Arrays and byte strings as blobs: the codec both ways, its refusals, sizes and schemas (in-process)."""

from __future__ import annotations

import json
import sys
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pytest
from helpers import blob, blob_paths

from snakepit_bridge import Adapter, CallContext, ToolError, arrays, tool
from snakepit_bridge.adapter import discover_tools
from snakepit_bridge.arrays import ITEMSIZES
from snakepit_bridge.host_tools import HostLink, HostToolError
from snakepit_bridge.schema import JsonType, json_type, validate_arguments
from snakepit_bridge.serialization import decode_args, decode_payload, encode_payload, fill_payload
from snakepit_bridge.server import CHUNK_OVERHEAD, RESULT_OVERHEAD, frame_share
from snakepit_bridge.wire import pb

DTYPES = list(ITEMSIZES)


def args_of(value: str, *blobs: pb.Blob) -> pb.Payload:
    return pb.Payload(json=value.encode(), blobs=blobs)


def refused(value: Any) -> ToolError:
    with pytest.raises(ToolError) as caught:
        encode_payload(value)
    assert caught.value.code == "SERIALIZATION_ERROR"
    assert caught.value.details["path"] in caught.value.message
    return caught.value


def sample(dtype: str) -> np.ndarray:
    values = np.arange(6).reshape(2, 3) % 2 if dtype == "bool" else np.arange(6).reshape(2, 3) - 1
    return (values * (1 + 1j) if dtype.startswith("complex") else values).astype(dtype)


# ------------------------------------------------------------------ encoding


def test_arrays_and_bytes_at_any_depth_leave_null_and_a_blob_with_their_path() -> None:
    matrix = np.arange(6, dtype=np.float32).reshape(2, 3)
    payload = encode_payload(
        {"m": matrix, "items": [1, b"\x00\xff", {"raw": bytearray(b"ab"), "view": memoryview(b"cd")}], "n": 2}
    )
    assert json.loads(payload.json) == {"m": None, "items": [1, None, {"raw": None, "view": None}], "n": 2}
    assert blob_paths(payload) == [["m"], ["items", 1], ["items", 2, "raw"], ["items", 2, "view"]]
    m, first, raw, view = payload.blobs
    assert (m.dtype, list(m.shape)) == ("float32", [2, 3])
    assert m.data == matrix.astype("<f4").tobytes()
    assert [(b.dtype, list(b.shape), b.data) for b in (first, raw, view)] == [
        ("bytes", [], b"\x00\xff"),
        ("bytes", [], b"ab"),
        ("bytes", [], b"cd"),
    ]


def test_a_whole_array_is_null_with_one_blob_at_the_root_and_whole_bytes_stay_binary() -> None:
    payload = encode_payload(np.array([1, 2], dtype=np.int16))
    assert payload.json == b"null" and blob_paths(payload) == [[]]
    assert payload.blobs[0].data == b"\x01\x00\x02\x00"
    assert encode_payload(b"raw") == pb.Payload(binary=b"raw")  # as before: no blob, no JSON


def test_non_contiguous_and_zero_d_arrays_travel_in_c_order() -> None:
    base = np.arange(12, dtype=np.int32).reshape(3, 4)
    for view in (base.T, base[:, ::2], base[::-1]):
        assert not view.flags.c_contiguous
        (sent,) = encode_payload({"v": view}).blobs
        assert list(sent.shape) == list(view.shape)
        assert sent.data == np.ascontiguousarray(view).tobytes()
    (scalar,) = encode_payload({"s": np.array(2.5)}).blobs
    assert (list(scalar.shape), scalar.data) == ([], np.float64(2.5).tobytes())


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_supported_dtype_round_trips_read_only(dtype: str) -> None:
    original = sample(dtype)
    payload = encode_payload({"x": original})
    assert len(payload.blobs[0].data) == original.size * ITEMSIZES[dtype]
    received = decode_args(payload)
    assert isinstance(received, dict)
    x = received["x"]
    assert x.dtype.name == dtype and x.shape == (2, 3)
    np.testing.assert_array_equal(x, original)
    assert not x.flags.writeable


@pytest.mark.parametrize(
    ("value", "advice"),
    [
        (np.array([1, "a"], dtype=object), ".astype(np.float64)"),
        (np.array(["a", "b"]), ".tolist()"),
        (np.array(["2026-01-02"], dtype="datetime64[D]"), ".astype(np.int64)"),
        (np.array([1.0], dtype=">f8"), "newbyteorder('<')"),
        (np.array([1.0], dtype=np.longdouble), ".astype(np.float64)"),
        (np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")]), "x['field']"),
        (np.ma.masked_array([1.0, 2.0], mask=[False, True]), ".filled("),
    ],
)
def test_arrays_that_cannot_travel_are_refused_with_the_path_and_what_to_do(value: Any, advice: str) -> None:
    error = refused({"out": [0, value]})
    assert error.details["path"] == "$.out[1]"
    assert advice in error.details["reason"]


def test_numpy_scalars_stay_json() -> None:
    payload = encode_payload({"f": np.float32(0.5), "i": np.int64(7), "b": np.bool_(True)})
    assert json.loads(payload.json) == {"f": 0.5, "i": 7, "b": True} and not payload.blobs


def test_the_json_rules_still_hold_beside_blobs() -> None:
    error = refused({"a": np.zeros(2), "b": [float("nan")]})
    assert error.details["path"] == "$.b[0]" and "not valid JSON" in error.details["reason"]


def test_a_key_that_is_not_utf8_cannot_be_on_a_blob_path() -> None:
    error = refused({"bad \udcff": {"x": b"1"}})
    assert "not valid UTF-8" in error.details["reason"]


@pytest.mark.parametrize(
    "value",
    [
        {"x": np.zeros(1000, dtype=np.float64)},
        {"k" * 300: [[np.zeros((2,) * 20, dtype=np.uint8)]]},
        {"snow ☃": {"é": b"x" * 200_000}},
        [b""] * 200 + [np.zeros(0)],
        np.zeros((3, 0, 2), dtype=np.complex128),
    ],
)
def test_the_size_bound_covers_the_real_encoding(value: Any) -> None:
    result = pb.WorkerMessage(id=2**64 - 1)
    bound = fill_payload(result.result.value, value)
    assert frame_share(result) <= RESULT_OVERHEAD + bound
    chunk = pb.WorkerMessage(id=2**64 - 1)
    chunk.chunk.seq = 2**64 - 1
    assert frame_share(chunk) <= CHUNK_OVERHEAD + fill_payload(chunk.chunk.value, value)
    assert bound >= sum(len(b.data) for b in result.result.value.blobs)


def test_json_only_values_refuse_arrays_naming_the_session_key() -> None:
    ctx = CallContext(request_id=1, tool="t", worker_id="w", session_id="s", session={})
    with pytest.raises(ToolError) as caught:
        ctx.session["weights"] = {"w": np.ones(3)}
    assert caught.value.code == "SERIALIZATION_ERROR"
    assert "session value 'weights'" in caught.value.message and ".tolist()" in caught.value.message
    assert ctx.session_delta is None  # nothing recorded


# ------------------------------------------------------------------ decoding


def test_arrays_are_zero_copy_views_of_the_received_bytes() -> None:
    data = np.arange(4, dtype="<f8").tobytes()
    received = decode_args(args_of('{"a":{"b":[null, 1]}}', blob(["a", "b", 0], "float64", [2, 2], data)))
    assert isinstance(received, dict)
    x = received["a"]["b"][0]
    assert x.shape == (2, 2) and received["a"]["b"][1] == 1
    base = x
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, bytes) and base == data  # no copy between the message's bytes and the array
    with pytest.raises(ValueError, match="read-only"):
        x[0, 0] = 1


def test_bytes_blobs_and_a_root_blob() -> None:
    assert decode_payload(args_of('{"k":null}', blob(["k"], "bytes", [], b"\x00")), "result") == {"k": b"\x00"}
    root = decode_payload(args_of("null", blob([], "uint8", [3], b"\x01\x02\x03")), "result")
    np.testing.assert_array_equal(root, [1, 2, 3])


@pytest.mark.parametrize(
    ("payload", "path", "reason"),
    [
        (args_of('{"x":null}', blob(["x"], "float32", [3], b"\x00" * 8)), "$.x", "takes 12 bytes, got 8"),
        (args_of('{"x":null}', blob(["x"], "float128", [1], b"\x00" * 16)), "$.x", "unknown dtype"),
        (args_of('{"x":null}', blob(["x"], "bytes", [2], b"ab")), "$.x", "has no shape"),
        (args_of('{"x":1}', blob(["x"], "bytes", [], b"a")), "$.x", "not null"),
        (args_of('{"x":null}', blob(["y"], "bytes", [], b"a")), "$.y", "does not exist"),
        (args_of('{"x":[null]}', blob(["x", 1], "bytes", [], b"a")), "$.x[1]", "does not exist"),
        (args_of('{"x":[null]}', blob(["x", "0"], "bytes", [], b"a")), '$.x["0"]', "does not exist"),
        (args_of('{"x":null}', *[blob(["x"], "bytes", [], b"a")] * 2), "$.x", "not null"),
        (args_of('{"x":null}', pb.Blob(path=[pb.PathSegment()], dtype="bytes")), "$", "neither a key nor an index"),
        (args_of('{"x":null}', blob(["x"], "uint8", [1] * 70, b"\x00")), "$.x", "cannot be made into an array"),
    ],
)
def test_malformed_blobs_are_serialization_errors_naming_the_path(payload: pb.Payload, path: str, reason: str) -> None:
    with pytest.raises(ToolError) as caught:
        decode_args(payload)
    assert caught.value.code == "SERIALIZATION_ERROR"
    assert caught.value.details["path"] == path and reason in caught.value.message


def test_blobs_come_only_with_a_json_body() -> None:
    for payload in (
        pb.Payload(binary=b"x", blobs=[blob([], "bytes", [], b"")]),
        pb.Payload(blobs=[blob([], "bytes", [], b"")]),
    ):
        with pytest.raises(ToolError, match="blobs come only with a JSON body") as caught:
            decode_args(payload)
        assert caught.value.code == "SERIALIZATION_ERROR"


def test_without_numpy_bytes_still_arrive_and_arrays_are_invalid_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrays, "_numpy", None)
    monkeypatch.setitem(sys.modules, "numpy", None)  # import numpy now fails, as if not installed
    assert decode_args(args_of('{"b":null}', blob(["b"], "bytes", [], b"ok"))) == {"b": b"ok"}
    with pytest.raises(ToolError) as caught:
        decode_args(args_of('{"x":[null]}', blob(["x", 0], "float32", [1], b"\x00" * 4)))
    assert caught.value.code == "INVALID_ARGUMENTS"
    assert "$.x[0] is a float32 array" in caught.value.message and "install numpy" in caught.value.message
    assert caught.value.details["errors"][0]["path"] == "$.x[0]"
    with pytest.raises(ToolError) as in_a_reply:  # a host tool's result: not the caller's arguments
        decode_payload(args_of("null", blob([], "int8", [1], b"\x00")), "host tool result")
    assert in_a_reply.value.code == "SERIALIZATION_ERROR"


# ------------------------------------------------------------------ host calls (the codec's side of them)


def test_host_calls_carry_arrays_out_and_back() -> None:
    sent: list[pb.WorkerMessage] = []
    ids = iter(range(1, 10))
    link = HostLink(
        sent.append,
        lambda: next(ids),
        parent_id=4,
        depth=0,
        session_id="",
        cancelled=CallContext(request_id=4, tool="t", worker_id="w").cancelled,
        tools={"embed": pb.ToolSpec(name="embed")},
    )
    call_id, future = link.start("embed", {"image": np.ones((2, 2), dtype=np.uint8), "tag": b"t"}, None)
    args = sent[0].host_call.args
    assert json.loads(args.json) == {"image": None, "tag": None}
    assert blob_paths(args) == [["image"], ["tag"]] and args.blobs[0].data == b"\x01" * 4
    vector = np.array([0.5, 1.5], dtype=np.float32)
    value = pb.Payload(json=b'{"v":null}', blobs=[blob(["v"], "float32", [2], vector.tobytes())])
    link.resolve(pb.HostCallReply(call_id=call_id, value=value))
    np.testing.assert_array_equal(future.result(timeout=1)["v"], vector)


def test_an_undecodable_host_result_fails_that_host_call_not_the_reader() -> None:
    sent: list[pb.WorkerMessage] = []
    link = HostLink(
        sent.append,
        lambda: 1,
        parent_id=4,
        depth=0,
        session_id="",
        cancelled=CallContext(request_id=4, tool="t", worker_id="w").cancelled,
        tools={"embed": pb.ToolSpec(name="embed")},
    )
    call_id, future = link.start("embed", {}, None)
    bad = pb.Payload(json=b'{"v":null}', blobs=[blob(["v"], "float32", [2], b"\x00")])
    link.resolve(pb.HostCallReply(call_id=call_id, value=bad))  # must not raise
    with pytest.raises(HostToolError) as caught:
        future.result(timeout=1)
    assert caught.value.code == "SERIALIZATION_ERROR" and "$.v" in caught.value.message


# ------------------------------------------------------------------ schemas and validation


def test_ndarray_annotations() -> None:
    assert json_type(np.ndarray) == JsonType("ndarray")
    assert json_type(npt.NDArray[np.float32]) == JsonType("ndarray", dtype="float32")
    assert json_type(npt.NDArray[np.bool_]) == JsonType("ndarray", dtype="bool")
    assert json_type(np.ndarray[tuple[int, int], np.dtype[np.float64]]) == JsonType("ndarray", dtype="float64", ndim=2)
    assert json_type(np.ndarray[tuple[Literal[3]], np.dtype[Any]]) == JsonType("ndarray", ndim=1)
    assert json_type(npt.NDArray[np.floating[Any]]) == JsonType("ndarray")  # abstract: any float is not one dtype
    assert json_type(npt.NDArray[Any] | None) == JsonType("ndarray", nullable=True)
    assert json_type(list[npt.NDArray[np.int8]]) == JsonType("array", items=JsonType("ndarray", dtype="int8"))
    assert json_type(memoryview) == JsonType("binary")


def test_an_array_dtype_that_cannot_travel_stops_the_worker_at_discovery() -> None:
    class Strings(Adapter):
        @tool
        def t(self, names: npt.NDArray[np.str_]) -> None:
            pass

    with pytest.raises(TypeError, match=r"Strings.t: parameter 'names': arrays of dtype <U0 cannot travel"):
        discover_tools(Strings)


class Typed(Adapter):
    @tool
    def fit(self, x: np.ndarray[tuple[int, int], np.dtype[np.float32]], y: npt.NDArray[Any], rate: float = 0.1) -> None:
        pass


def invalid(args: dict[str, Any]) -> ToolError:
    params = discover_tools(Typed)["fit"].params
    with pytest.raises(ToolError) as caught:
        validate_arguments("fit", args, params, accepts_extra=False)
    assert caught.value.code == "INVALID_ARGUMENTS"
    return caught.value


def test_arrays_must_be_sent_as_arrays_of_the_declared_dtype_and_dimensions() -> None:
    good = np.zeros((2, 2), dtype=np.float32)
    validate_arguments("fit", {"x": good, "y": np.zeros(3, dtype=np.int8)}, discover_tools(Typed)["fit"].params, False)

    as_list = invalid({"x": [[1.0]], "y": good})
    assert as_list.details["errors"] == [
        {
            "path": "$.x",
            "problem": "wrong_type",
            "expected": "ndarray[float32, 2-d]",
            "got": "array",
            "hint": "send an NdArray or a TypedArray; JSON lists and numbers are not arrays",
        }
    ]
    assert "send an NdArray" in as_list.message

    wrong = invalid({"x": np.zeros(3, dtype=np.float64), "y": 5, "rate": np.ones(1)})
    assert [(e["path"], e["problem"], e["expected"], e["got"]) for e in wrong.details["errors"]] == [
        ("$.x", "wrong_dtype", "float32", "float64"),
        ("$.x", "wrong_ndim", "2-d", "1-d"),
        ("$.y", "wrong_type", "ndarray", "integer"),
        ("$.rate", "wrong_type", "number", "ndarray"),
    ]
    assert "$.x must be an array of dtype float32, got float64" in wrong.message
    assert "$.x must be a 2-d array, got 1-d" in wrong.message

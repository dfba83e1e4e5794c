"""The encoding rule: what is carried, what is rejected, and where."""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pytest

from snakepit_bridge import ToolError
from snakepit_bridge.serialization import MAX_DEPTH, decode_args, decode_json, encode_json, encode_payload
from snakepit_bridge.wire import pb


class Color(enum.IntEnum):
    RED = 1


# The (str, Enum) mix-in on purpose: its str() is "Mode.FAST" (StrEnum's is "fast"), the case to get right.
class Mode(str, enum.Enum):  # noqa: UP042
    FAST = "fast"


@dataclass
class Box:
    size: int


def rejected(value: Any) -> dict[str, str]:
    with pytest.raises(ToolError) as caught:
        encode_json(value, "result")
    assert caught.value.code == "SERIALIZATION_ERROR"
    assert caught.value.details["path"] in caught.value.message
    return caught.value.details


def test_compact_json_keeps_ints() -> None:
    assert encode_json({"a": 5, "b": [1.5, True, None, "x"]}) == b'{"a":5,"b":[1.5,true,null,"x"]}'
    assert encode_json(2**53 - 1) == b"9007199254740991"
    assert encode_json(-(2**53 - 1)) == b"-9007199254740991"
    assert encode_json("snow ☃") == '"snow ☃"'.encode()


def test_conversions() -> None:
    value = {
        "tuple": (1, (2, 3)),
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "day": dt.date(2026, 1, 2),
        "time": dt.time(3, 4),
        "enum": Color.RED,
        "str_enum": Mode.FAST,
        "ordered": OrderedDict(b=1),
    }
    assert json.loads(encode_json(value)) == {
        "tuple": [1, [2, 3]],
        "when": "2026-01-02T03:04:05+00:00",
        "day": "2026-01-02",
        "time": "03:04:00",
        "enum": 1,
        "str_enum": "fast",
        "ordered": {"b": 1},
    }


def test_lone_surrogates_stay_valid_json() -> None:
    assert json.loads(encode_json("bad \udcff name")) == "bad \udcff name"


def test_top_level_binary() -> None:
    assert encode_payload(b"\x00\x01").binary == b"\x00\x01"
    assert encode_payload(bytearray(b"ab")).binary == b"ab"
    assert encode_payload(memoryview(b"cd")).binary == b"cd"
    assert encode_payload({"a": 1}).json == b'{"a":1}'


@pytest.mark.parametrize(
    ("value", "path", "hint"),
    [
        (float("nan"), "$", "not valid JSON"),
        ({"a": [1, 2, {"b": float("inf")}]}, "$.a[2].b", "not valid JSON"),
        ({"x": -float("inf")}, "$.x", "not valid JSON"),
        ({"n": 2**53}, "$.n", "return it as a str"),
        ([-(2**53)], "$[0]", "return it as a str"),
        ({"s": {1, 2}}, "$.s", "return a list"),
        ({"blob": b"x"}, "$.blob", "JSON-only values hold JSON, not bytes"),
        ([Box(1)], "$[0]", "test_serialization.Box is not JSON-serializable"),
        ({"ok": {1: "one"}}, "$.ok", "keys must be strings"),
        ({"odd key": [object()]}, '$["odd key"][0]', "object is not JSON-serializable"),
    ],
)
def test_rejections_name_the_path(value: Any, path: str, hint: str) -> None:
    details = rejected(value)
    assert details["path"] == path
    assert hint in details["reason"]


def test_cycles_are_rejected_not_recursed() -> None:
    loop: list[Any] = []
    loop.append(loop)
    details = rejected(loop)
    assert "circular" in details["reason"]
    assert details["path"].count("[0]") == MAX_DEPTH


def test_numpy_scalars_are_json_and_arrays_are_not() -> None:
    numpy = pytest.importorskip("numpy")
    assert json.loads(encode_json({"s": numpy.float32(0.5), "b": numpy.bool_(True), "i": numpy.int64(3)})) == {
        "s": 0.5,
        "b": True,
        "i": 3,
    }
    assert rejected({"s": numpy.float64("nan")})["path"] == "$.s"
    # JSON-only values (sessions, defaults) cannot hold arrays; payloads carry them as blobs (test_arrays.py).
    details = rejected({"a": [numpy.arange(3)]})
    assert details["path"] == "$.a[0]" and ".tolist()" in details["reason"]


def test_decode_args() -> None:
    assert decode_args(pb.Payload()) == {}
    assert decode_args(pb.Payload(json=b'{"a": 1}')) == {"a": 1}
    assert decode_args(pb.Payload(binary=b"\x00")) == b"\x00"
    with pytest.raises(ToolError) as not_object:
        decode_args(pb.Payload(json=b"[1]"))
    assert not_object.value.code == "INVALID_ARGUMENTS"
    assert not_object.value.details["errors"][0]["got"] == "array"
    for malformed in (b"{", b'{"a": NaN}', b"\xff"):
        with pytest.raises(ToolError) as bad:
            decode_args(pb.Payload(json=malformed))
        assert bad.value.code == "SERIALIZATION_ERROR"


def test_decode_json_names_what() -> None:
    with pytest.raises(ToolError, match="session value 'k' is not valid JSON"):
        decode_json(b"nope", "session value 'k'")

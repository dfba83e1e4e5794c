"""The encoding rule for every value that crosses the wire.

Results, stream chunks, session values and parameter defaults travel as
compact UTF-8 JSON (``Payload.json``), because the host is JavaScript and JSON
is what it can read without a schema. The rule is strict on purpose: a value
is either carried *faithfully* or rejected with ``SERIALIZATION_ERROR`` naming
where it is (``$.a[2].b``), never silently mangled.

Carried:
  * ``None``, ``bool``, ``str``, ``int`` within ±(2**53-1) (ints stay ints),
    finite ``float``, ``list``, ``tuple`` (as an array), ``dict`` and other
    mappings with ``str`` keys; subclasses of these (``IntEnum``, ``StrEnum``,
    ``OrderedDict``...) are carried as their base value.
  * ``datetime``, ``date`` and ``time`` as ISO-8601 strings.
  * numpy arrays and scalars, through ``.tolist()`` / ``.item()`` (numpy is
    only looked at when the tool already imported it; it is never required).
  * ``bytes``, ``bytearray`` and ``memoryview`` only as the *whole* result or
    chunk: they are sent untouched as ``Payload.binary``.

Rejected (the message says what to return instead):
  * NaN and ±Infinity (not JSON);
  * ints outside ±(2**53-1): a JavaScript number would silently round them,
    so return them as ``str``;
  * sets, bytes nested inside a structure, dict keys that are not ``str``,
    and any other object (dataclasses, models, Enums with non-primitive
    values...): convert them to the types above first;
  * structures nested deeper than :data:`MAX_DEPTH` (usually a cycle).

Incoming arguments are a JSON object (``Payload.json``) or raw bytes
(``Payload.binary``, handed to the tool's single ``bytes`` parameter).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import sys
from collections.abc import Mapping
from typing import Any, Final

from .errors import INVALID_ARGUMENTS, SERIALIZATION_ERROR, ToolError
from .wire import pb

MAX_SAFE_INTEGER: Final = 2**53 - 1
MAX_DEPTH: Final = 200

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BINARY_TYPES: Final = (bytes, bytearray, memoryview)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# Built once: json.dumps/loads with options construct a new coder per call,
# a measurable share of a trivial call.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_ASCII_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


class _Reject(Exception):
    """Internal: carries the reason up while each level adds its path segment.

    Building the path on the way *out* keeps the success path free of string
    formatting, which matters for large arrays.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.segments: list[str | int] = []


def encode_payload(value: Any, what: str = "result", into: pb.Payload | None = None) -> pb.Payload:
    """Encode a tool result or stream chunk; top-level binary goes out untouched.

    ``into`` fills a payload already inside a reply: a message handed to a
    protobuf constructor is copied, which costs more than the encoding of a
    small result.
    """
    payload = pb.Payload() if into is None else into
    fill_payload(payload, value, what)
    return payload


def fill_payload(payload: pb.Payload, value: Any, what: str = "result") -> int:
    """Encode ``value`` into ``payload``; returns the bytes it carries.

    The count is free here, while asking the filled message for its size
    serializes it again: the bridge uses it to size its frames.
    """
    if isinstance(value, _BINARY_TYPES):
        data = bytes(value)
        payload.binary = data
    else:
        data = encode_json(value, what)
        payload.json = data
    return len(data)


def encode_json(value: Any, what: str = "value") -> bytes:
    """Compact JSON for ``value`` or a SERIALIZATION_ERROR naming the offending path."""
    try:
        plain = _plain(value, 0)
    except _Reject as exc:
        path = format_path(reversed(exc.segments))
        raise ToolError(
            SERIALIZATION_ERROR,
            f"{what} cannot be serialized: {path}: {exc.reason}",
            {"path": path, "reason": exc.reason},
        ) from None
    try:
        return _ENCODER.encode(plain).encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (e.g. undecodable file names) are not UTF-8; escaped
        # as \udcxx they are still valid JSON and JavaScript strings.
        return _ASCII_ENCODER.encode(plain).encode("ascii")


def decode_json(data: bytes, what: str) -> Any:
    """Parse UTF-8 JSON from the host; malformed input is a SERIALIZATION_ERROR."""
    try:
        return _DECODER.decode(data.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ToolError(SERIALIZATION_ERROR, f"{what} is not valid JSON: {exc}") from None


def decode_args(payload: pb.Payload) -> dict[str, Any] | bytes:
    """The call's arguments: a JSON object by name, or raw bytes for a binary payload."""
    body = payload.WhichOneof("body")
    if body is None:
        return {}
    if body == "binary":
        return payload.binary
    args = decode_json(payload.json, "arguments")
    if not isinstance(args, dict):
        raise ToolError(
            INVALID_ARGUMENTS,
            f"arguments must be a JSON object of parameter names, got {json_type_name(args)}",
            {"errors": [{"path": "$", "problem": "wrong_type", "expected": "object", "got": json_type_name(args)}]},
        )
    return args


def format_path(segments: Any) -> str:
    """``$.a[2].b`` from ("a", 2, "b"); keys that are not identifiers are quoted."""
    parts = ["$"]
    for segment in segments:
        if isinstance(segment, int):
            parts.append(f"[{segment}]")
        elif _IDENTIFIER.match(segment):
            parts.append(f".{segment}")
        else:
            parts.append(f"[{json.dumps(segment)}]")
    return "".join(parts)


def json_type_name(value: Any) -> str:
    """The JSON-schema type of a decoded JSON value (bool is not an integer)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, _BINARY_TYPES):
        return "binary"
    return type(value).__name__


def _plain(value: Any, depth: int) -> Any:
    """``value`` as plain JSON types, or _Reject. Exact-type checks first: they are the hot path."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        return _check_int(value)
    if kind is float:
        return _check_float(value)
    if kind is list or kind is tuple:
        return _plain_sequence(value, depth)
    if kind is dict:
        return _plain_mapping(value, depth)
    return _plain_other(value, depth)


def _plain_other(value: Any, depth: int) -> Any:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _check_int(int(value))
    if isinstance(value, float):
        return _check_float(float(value))
    if isinstance(value, str):
        return str.__str__(value)  # the characters, not a subclass's __str__ (Enum's "Mode.FAST")
    if isinstance(value, (list, tuple)):
        return _plain_sequence(value, depth)
    if isinstance(value, Mapping):
        return _plain_mapping(value, depth)
    if isinstance(value, (_dt.date, _dt.time)):  # datetime is a date
        return value.isoformat()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.ndarray):
            return _plain(value.tolist(), depth)
        if isinstance(value, numpy.generic):
            return _plain(value.item(), depth)
    if isinstance(value, _BINARY_TYPES):
        raise _Reject(
            "bytes are only sent as a whole result or chunk (as binary); "
            "inside a structure encode them first (e.g. base64)"
        )
    if isinstance(value, (set, frozenset)):
        raise _Reject(f"a {type(value).__name__} is not JSON; return a list (e.g. sorted(...))")
    cls = type(value)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    raise _Reject(f"{name} is not JSON-serializable; convert it to dict/list/str/number first")


def _plain_sequence(items: list[Any] | tuple[Any, ...], depth: int) -> list[Any]:
    if depth >= MAX_DEPTH:
        raise _Reject(f"nested deeper than {MAX_DEPTH} levels (a circular reference?)")
    out = []
    for index, item in enumerate(items):
        try:
            out.append(_plain(item, depth + 1))
        except _Reject as exc:
            exc.segments.append(index)
            raise
    return out


def _plain_mapping(mapping: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    if depth >= MAX_DEPTH:
        raise _Reject(f"nested deeper than {MAX_DEPTH} levels (a circular reference?)")
    out = {}
    for key, item in mapping.items():
        if not isinstance(key, str):
            raise _Reject(f"key {key!r} is a {type(key).__name__}; JSON object keys must be strings")
        try:
            out[str(key)] = _plain(item, depth + 1)
        except _Reject as exc:
            exc.segments.append(key)
            raise
    return out


def _check_int(value: int) -> int:
    if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return value
    raise _Reject(f"integer {value} is outside ±(2**53-1), so JavaScript would round it; return it as a str")


def _check_float(value: float) -> float:
    if math.isfinite(value):
        return value
    raise _Reject(f"{value!r} is not valid JSON; return None or a string instead")

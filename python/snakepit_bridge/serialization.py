"""The encoding rule for every value that crosses the wire.

Results, stream chunks, session values and parameter defaults travel as
compact UTF-8 JSON (``Payload.json``), because the host is JavaScript and JSON
is what it can read without a schema. Arrays and byte strings inside
arguments, results, stream chunks and host calls travel beside that JSON as
``Payload.blobs`` (raw bytes with their path, dtype and shape; arrays.py),
with ``null`` standing in their place in the JSON. The rule is strict on purpose: a value
is either carried *faithfully* or rejected with ``SERIALIZATION_ERROR`` naming
where it is (``$.a[2].b``), never silently mangled.

Carried:
  * ``None``, ``bool``, ``str``, ``int`` within ±(2**53-1) (ints stay ints),
    finite ``float``, ``list``, ``tuple`` (as an array), ``dict`` and other
    mappings with ``str`` keys; subclasses of these (``IntEnum``, ``StrEnum``,
    ``OrderedDict``...) are carried as their base value.
  * ``datetime``, ``date`` and ``time`` as ISO-8601 strings.
  * numpy scalars, through ``.item()`` (numpy is only looked at when the tool
    already imported it; it is never required).
  * numpy arrays (of the dtypes in arrays.ITEMSIZES) and ``bytes``,
    ``bytearray``, ``memoryview`` at any depth, as blobs; the *whole* value
    being a byte string is sent untouched as ``Payload.binary`` instead.
    JSON-only values (session values, defaults) cannot hold them.

Rejected (the message says what to return instead):
  * NaN and ±Infinity (not JSON);
  * ints outside ±(2**53-1): a JavaScript number would silently round them,
    so return them as ``str``;
  * arrays of other dtypes (object, strings, datetime64, big-endian...);
  * sets, dict keys that are not ``str``,
    and any other object (dataclasses, models, Enums with non-primitive
    values...): convert them to the types above first;
  * structures nested deeper than :data:`MAX_DEPTH` (usually a cycle).

Incoming arguments are a JSON object (``Payload.json``, its blobs placed
back as read-only numpy arrays and ``bytes``) or raw bytes
(``Payload.binary``, handed to the tool's single ``bytes`` parameter).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from .arrays import BYTES, NumpyMissing, array_parts, from_blob, loaded_numpy
from .errors import INVALID_ARGUMENTS, SERIALIZATION_ERROR, ToolError
from .wire import pb

if TYPE_CHECKING:  # only the types: serialization works without shared memory
    from .shared_memory import InRegion, SharedOut

MAX_SAFE_INTEGER: Final = 2**53 - 1
MAX_DEPTH: Final = 200

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BINARY_TYPES: Final = (bytes, bytearray, memoryview)

# Upper bounds of a blob's bytes in a Payload beyond its data, key and dtype bytes (a tag is 1 byte, a
# length varint at most 5, a varint at most 10): the Blob field, a key segment (field + its key field),
# an index segment, the dtype field (dtype names are short), the packed shape, the data field.
_BLOB_FIELD: Final = 6
_KEY_SEGMENT: Final = 12
_INDEX_SEGMENT: Final = 8
_DTYPE_FIELD: Final = 2
_SHAPE_FIELD: Final = 6
_DIMENSION: Final = 10
_DATA_FIELD: Final = 6
# A shared blob carries its SharedSlot instead of its data: the field, offset and length varints.
_SHARED_FIELD: Final = 24

# Why a JSON-only value (a session value, a default) cannot hold what a payload carries as a blob.
_ARRAY_NOT_JSON: Final = (
    "sessions and other JSON-only values hold JSON, not numpy arrays: store the array elsewhere or use .tolist()"
)
_BYTES_NOT_JSON: Final = (
    "sessions and other JSON-only values hold JSON, not bytes: store them elsewhere or encode them (e.g. base64)"
)


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


class _Taken:
    """An array or byte string taken out of a value: its JSON stand-in until its path is known.

    ``data`` is a C-contiguous byte view over the value where it can be (copied
    once, into a shared-memory slot or into the protobuf bytes), else bytes.
    """

    __slots__ = ("data", "dtype", "shape")

    def __init__(self, dtype: str, shape: tuple[int, ...], data: bytes | memoryview) -> None:
        self.dtype = dtype
        self.shape = shape
        self.data = data


class _Blobs:
    """What one encoding took out, and which of its output containers hold some (found again by id).

    Paths are not built while walking (that would cost every element of every
    value): the containers that hold a blob are remembered, and only those are
    walked again afterwards, to find the paths and leave null in their place.
    """

    __slots__ = ("holders", "taken")

    def __init__(self) -> None:
        self.taken = 0
        self.holders: set[int] = set()

    def take(self, dtype: str, shape: tuple[int, ...], data: bytes | memoryview) -> _Taken:
        self.taken += 1
        return _Taken(dtype, shape, data)

    def locate(self, plain: Any) -> tuple[Any, list[tuple[tuple[str | int, ...], _Taken]]]:
        """``plain`` with null for every blob, and each blob with its path (outermost first)."""
        found: list[tuple[tuple[str | int, ...], _Taken]] = []
        if type(plain) is _Taken:
            return None, [((), plain)]
        self._locate(plain, [], found)
        return plain, found

    def _locate(self, node: Any, path: list[str | int], found: list[tuple[tuple[str | int, ...], _Taken]]) -> None:
        items = enumerate(node) if type(node) is list else node.items()
        for key, child in items:
            if type(child) is _Taken:
                node[key] = None  # replacing a value while iterating is safe: the size stays
                found.append(((*path, key), child))
            elif id(child) in self.holders:
                path.append(key)
                self._locate(child, path, found)
                path.pop()


def encode_payload(
    value: Any, what: str = "result", into: pb.Payload | None = None, shared: SharedOut | None = None
) -> pb.Payload:
    """Encode a tool result or stream chunk; top-level binary goes out untouched.

    ``into`` fills a payload already inside a reply: a message handed to a
    protobuf constructor is copied, which costs more than the encoding of a
    small result. ``shared``: see fill_payload.
    """
    payload = pb.Payload() if into is None else into
    fill_payload(payload, value, what, shared)
    return payload


def fill_payload(payload: pb.Payload, value: Any, what: str = "result", shared: SharedOut | None = None) -> int:
    """Encode ``value`` into ``payload``; returns an upper bound of the bytes it carries.

    The bound is free here (exact but for the blobs' few field headers), while
    asking the filled message for its size serializes it again: the bridge
    uses it to size its frames and to refuse what no frame can carry.

    With ``shared`` (the worker's out region), blobs of at least its threshold
    go into the region and the payload carries only their slots (counted by
    that descriptor, not their data); a whole value of bytes that large
    becomes ``null`` plus one bytes blob with an empty path. The region being
    full is RESOURCE_EXHAUSTED; on any failure the slots this payload already
    took are freed.
    """
    if isinstance(value, _BINARY_TYPES):
        length = value.nbytes if isinstance(value, memoryview) else len(value)
        if shared is None or not shared.wants(length):
            data = bytes(value)
            payload.binary = data
            return len(data)
        plain: Any = None
        found: list[tuple[tuple[str | int, ...], _Taken]] = [((), _Taken(BYTES, (), _byte_view(value)))]
    else:
        blobs = _Blobs()
        plain = _plain_or_reject(value, what, blobs)
        found = []
        if blobs.taken:
            plain, found = blobs.locate(plain)
    size = 0
    try:
        for path, taken in found:
            size += _add_blob(payload, path, taken, what, shared)
    except BaseException:
        if shared is not None:
            shared.free_payload(payload)
        raise
    data = _dump(plain)
    payload.json = data
    return size + len(data)


def _byte_view(value: bytes | bytearray | memoryview) -> bytes | memoryview:
    """A byte string's bytes without a copy where a C-contiguous view exists, else copied in C order."""
    if isinstance(value, bytes):
        return value
    view = memoryview(value)
    if view.c_contiguous:
        with contextlib.suppress(TypeError):  # cast refuses empty shapes; those are cheap to copy
            return view.cast("B")
    return view.tobytes()


def _add_blob(
    payload: pb.Payload, path: tuple[str | int, ...], taken: _Taken, what: str, shared: SharedOut | None
) -> int:
    """Append one blob to ``payload`` (its data inline or in a slot); returns the upper bound of its bytes there."""
    segments = []
    size = _BLOB_FIELD + _DTYPE_FIELD + len(taken.dtype) + _SHAPE_FIELD + _DIMENSION * len(taken.shape)
    length = taken.data.nbytes if isinstance(taken.data, memoryview) else len(taken.data)
    for segment in path:
        if isinstance(segment, int):
            segments.append(pb.PathSegment(index=segment))
            size += _INDEX_SEGMENT
            continue
        try:
            size += _KEY_SEGMENT + len(segment.encode("utf-8"))
        except UnicodeEncodeError:  # protobuf strings are UTF-8; the JSON could escape it, a path cannot
            where = format_path(path)
            reason = f"the key {segment!r} on the way to this {taken.dtype} value is not valid UTF-8"
            raise ToolError(
                SERIALIZATION_ERROR,
                f"{what} cannot be serialized: {where}: {reason}",
                {"path": where, "reason": reason},
            ) from None
        segments.append(pb.PathSegment(key=segment))
    if shared is not None and shared.wants(length):
        slot = shared.place(taken.data, f"{what} at {format_path(path)}")
        payload.blobs.add(path=segments, dtype=taken.dtype, shape=taken.shape, shared=slot)
        return size + _SHARED_FIELD
    data = taken.data if isinstance(taken.data, bytes) else taken.data.tobytes()
    payload.blobs.add(path=segments, dtype=taken.dtype, shape=taken.shape, data=data)
    return size + _DATA_FIELD + length


def encode_json(value: Any, what: str = "value") -> bytes:
    """Compact JSON for a JSON-only ``value`` or a SERIALIZATION_ERROR naming the offending path.

    Arrays and bytes are refused: only payloads carry them (as blobs).
    """
    return _dump(_plain_or_reject(value, what, None))


def _plain_or_reject(value: Any, what: str, blobs: _Blobs | None) -> Any:
    try:
        return _plain(value, 0, blobs)
    except _Reject as exc:
        path = format_path(reversed(exc.segments))
        raise ToolError(
            SERIALIZATION_ERROR,
            f"{what} cannot be serialized: {path}: {exc.reason}",
            {"path": path, "reason": exc.reason},
        ) from None


def _dump(plain: Any) -> bytes:
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


def decode_payload(payload: pb.Payload, what: str, incoming: InRegion | None = None) -> Any:
    """A received value (a host tool's result): bytes for a binary body, else the JSON with its blobs placed.

    ``incoming``: the host's shared-memory region, where blobs with a slot are read.
    """
    if payload.WhichOneof("body") == "binary":
        _no_blobs_beside(payload, what)
        return payload.binary
    value = decode_json(payload.json, what)
    return _place_blobs(value, payload.blobs, what, SERIALIZATION_ERROR, incoming) if payload.blobs else value


def decode_args(payload: pb.Payload, incoming: InRegion | None = None) -> dict[str, Any] | bytes:
    """The call's arguments: a JSON object by name (blobs placed), or raw bytes for a binary payload.

    A ``null`` body with one bytes blob at the empty path is raw bytes too (how
    the host sends large binary arguments through shared memory).
    """
    body = payload.WhichOneof("body")
    if body != "json":
        _no_blobs_beside(payload, "arguments")
        return {} if body is None else payload.binary
    args = decode_json(payload.json, "arguments")
    if payload.blobs:
        args = _place_blobs(args, payload.blobs, "arguments", INVALID_ARGUMENTS, incoming)
        if isinstance(args, bytes):  # only a bytes blob at the root makes the whole value bytes
            return args
    if not isinstance(args, dict):
        raise ToolError(
            INVALID_ARGUMENTS,
            f"arguments must be a JSON object of parameter names, got {json_type_name(args)}",
            {"errors": [{"path": "$", "problem": "wrong_type", "expected": "object", "got": json_type_name(args)}]},
        )
    return args


def _no_blobs_beside(payload: pb.Payload, what: str) -> None:
    if payload.blobs:
        raise ToolError(SERIALIZATION_ERROR, f"{what}: blobs come only with a JSON body, not a binary or empty one")


def _place_blobs(
    root: Any, blobs: Iterable[pb.Blob], what: str, numpy_missing_code: str, incoming: InRegion | None
) -> Any:
    """``root`` with each blob's value where its path points (a null there); errors name the path.

    ``numpy_missing_code``: the answer when an array arrives and numpy is not
    installed (the call's arguments: INVALID_ARGUMENTS; malformed blobs are
    SERIALIZATION_ERROR, like malformed JSON).
    """
    for blob in blobs:
        path: list[str | int] = []
        try:
            for segment in blob.path:
                kind = segment.WhichOneof("segment")
                if kind is None:
                    raise ValueError("a path segment has neither a key nor an index")
                path.append(segment.key if kind == "key" else segment.index)
            root = _put(root, path, from_blob(blob.dtype, list(blob.shape), _blob_data(blob, incoming)))
        except NumpyMissing as exc:
            where = format_path(path)
            raise ToolError(
                numpy_missing_code,
                f"{what}: {where} is a {blob.dtype} array, and the worker cannot receive it: {exc}",
                {"errors": [{"path": where, "problem": "numpy_missing", "expected": "numpy", "got": "ndarray"}]},
            ) from None
        except ValueError as exc:
            where = format_path(path)
            raise ToolError(
                SERIALIZATION_ERROR, f"{what}: malformed blob at {where}: {exc}", {"path": where, "reason": str(exc)}
            ) from None
    return root


def _blob_data(blob: pb.Blob, incoming: InRegion | None) -> bytes | memoryview:
    """A received blob's bytes: inline, or a read-only view of its slot in the host's region."""
    # .data makes a new bytes object on every access: read it once.
    data = blob.data
    if not blob.HasField("shared"):
        return data
    if data:
        raise ValueError("it carries both inline data and a shared-memory slot")
    if incoming is None:
        raise ValueError("it names a shared-memory slot, and this worker has no shared memory (no --shm-in)")
    return incoming.view(blob.shared.offset, blob.shared.length)


def _put(root: Any, path: list[str | int], value: Any) -> Any:
    if not path:
        if root is not None:
            raise ValueError("the JSON value is not null where the blob stands")
        return value
    node = root
    for segment in path[:-1]:
        node = _child(node, segment)
    if _child(node, path[-1]) is not None:
        raise ValueError("the JSON value is not null where the blob stands")
    node[path[-1]] = value
    return root


def _child(node: Any, segment: str | int) -> Any:
    if isinstance(segment, str) and isinstance(node, dict) and segment in node:
        return node[segment]
    if isinstance(segment, int) and isinstance(node, list) and segment < len(node):
        return node[segment]
    raise ValueError("its path does not exist in the JSON value")


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
    numpy = loaded_numpy()
    if numpy is not None and isinstance(value, numpy.ndarray):
        return "ndarray"
    return type(value).__name__


def _plain(value: Any, depth: int, blobs: _Blobs | None) -> Any:
    """``value`` as plain JSON types, or _Reject. Exact-type checks first: they are the hot path."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        return _check_int(value)
    if kind is float:
        return _check_float(value)
    if kind is list or kind is tuple:
        return _plain_sequence(value, depth, blobs)
    if kind is dict:
        return _plain_mapping(value, depth, blobs)
    return _plain_other(value, depth, blobs)


def _plain_other(value: Any, depth: int, blobs: _Blobs | None) -> Any:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _check_int(int(value))
    if isinstance(value, float):
        return _check_float(float(value))
    if isinstance(value, str):
        return str.__str__(value)  # the characters, not a subclass's __str__ (Enum's "Mode.FAST")
    if isinstance(value, (list, tuple)):
        return _plain_sequence(value, depth, blobs)
    if isinstance(value, Mapping):
        return _plain_mapping(value, depth, blobs)
    if isinstance(value, (_dt.date, _dt.time)):  # datetime is a date
        return value.isoformat()
    numpy = loaded_numpy()
    if numpy is not None:
        if isinstance(value, numpy.ndarray):
            if blobs is None:
                raise _Reject(_ARRAY_NOT_JSON)
            try:
                return blobs.take(*array_parts(value))
            except ValueError as exc:
                raise _Reject(str(exc)) from None
        if isinstance(value, numpy.generic):
            return _plain(value.item(), depth, blobs)
    if isinstance(value, _BINARY_TYPES):
        if blobs is None:
            raise _Reject(_BYTES_NOT_JSON)
        return blobs.take(BYTES, (), _byte_view(value))
    if isinstance(value, (set, frozenset)):
        raise _Reject(f"a {type(value).__name__} is not JSON; return a list (e.g. sorted(...))")
    cls = type(value)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    raise _Reject(f"{name} is not JSON-serializable; convert it to dict/list/str/number first")


def _plain_sequence(items: list[Any] | tuple[Any, ...], depth: int, blobs: _Blobs | None) -> list[Any]:
    if depth >= MAX_DEPTH:
        raise _Reject(f"nested deeper than {MAX_DEPTH} levels (a circular reference?)")
    taken = blobs.taken if blobs is not None else 0
    out = []
    for index, item in enumerate(items):
        try:
            out.append(_plain(item, depth + 1, blobs))
        except _Reject as exc:
            exc.segments.append(index)
            raise
    if blobs is not None and blobs.taken != taken:
        blobs.holders.add(id(out))
    return out


def _plain_mapping(mapping: Mapping[Any, Any], depth: int, blobs: _Blobs | None) -> dict[str, Any]:
    if depth >= MAX_DEPTH:
        raise _Reject(f"nested deeper than {MAX_DEPTH} levels (a circular reference?)")
    taken = blobs.taken if blobs is not None else 0
    out = {}
    for key, item in mapping.items():
        if not isinstance(key, str):
            raise _Reject(f"key {key!r} is a {type(key).__name__}; JSON object keys must be strings")
        try:
            out[str(key)] = _plain(item, depth + 1, blobs)
        except _Reject as exc:
            exc.segments.append(key)
            raise
    if blobs is not None and blobs.taken != taken:
        blobs.holders.add(id(out))
    return out


def _check_int(value: int) -> int:
    if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return value
    raise _Reject(f"integer {value} is outside ±(2**53-1), so JavaScript would round it; return it as a str")


def _check_float(value: float) -> float:
    if math.isfinite(value):
        return value
    raise _Reject(f"{value!r} is not valid JSON; return None or a string instead")

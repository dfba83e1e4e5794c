"""Parameter schemas derived from type hints, and argument validation against them.

The host only sees JSON-schema type names (``ToolParameter.type``), but the
worker validates every call *before* the tool runs, so a tool never has to
defend itself against ``"2"`` where it declared ``int``, and the caller gets
every problem at once as ``INVALID_ARGUMENTS`` with a path per problem.

Annotation mapping: ``int``→integer, ``float``→number (ints accepted and kept
as ints), ``str``→string, ``bool``→boolean, ``list[X]``/``tuple[X, ...]``→array
of X, ``dict``/mappings/TypedDict→object, ``bytes``/``memoryview``→binary,
``np.ndarray``/``NDArray[np.float32]``/``np.ndarray[tuple[int, int], ...]``→ndarray
(with the dtype and number of dimensions the annotation gives), ``None``→null,
``Optional[X]``/``X | None``→X with nullable, ``Literal[...]`` of one primitive
type→that type, ``Annotated[X, "text"]``→X described by "text". ``Any``, a
missing annotation, unions of several types and anything else→any (not checked).
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from .arrays import loaded_numpy, ndarray_annotation
from .errors import INVALID_ARGUMENTS, ToolError
from .serialization import format_path, json_type_name

MAX_REPORTED_ERRORS: Final = 20

_SCALARS: Final[dict[Any, str]] = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    bytes: "binary",
    bytearray: "binary",
    memoryview: "binary",
    type(None): "null",
}
_ARRAY_ORIGINS: Final = (list, tuple, collections.abc.Sequence, collections.abc.Iterable)
_OBJECT_ORIGINS: Final = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


@dataclass(frozen=True, slots=True)
class JsonType:
    """A JSON-schema type with what validation needs beyond the wire name."""

    name: str
    nullable: bool = False
    items: JsonType | None = None  # element type, for arrays only
    dtype: str = ""  # for ndarray: the element type declared ("" for any)
    ndim: int = 0  # for ndarray: the number of dimensions declared (0 for any)

    def expected(self) -> str:
        """How the type reads in an error: ``integer``, ``string|null``, ``ndarray[float32, 2-d]``."""
        name = self.name
        if name == "ndarray" and (self.dtype or self.ndim):
            name += f"[{', '.join(filter(None, (self.dtype, f'{self.ndim}-d' if self.ndim else '')))}]"
        return f"{name}|null" if self.nullable else name

    def accepts(self, value: Any) -> bool:
        """Whether a decoded JSON value fits, ignoring array items."""
        if value is None:
            return self.nullable or self.name in ("any", "null")
        name = self.name
        if name == "any":
            return True
        if name == "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        if name == "number":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if name == "string":
            return isinstance(value, str)
        if name == "boolean":
            return isinstance(value, bool)
        if name == "array":
            return isinstance(value, list)
        if name == "object":
            return isinstance(value, dict)
        if name == "binary":
            return isinstance(value, (bytes, bytearray, memoryview))
        if name == "ndarray":
            numpy = loaded_numpy()  # an array argument was decoded with numpy, so it is loaded
            return numpy is not None and isinstance(value, numpy.ndarray)
        return False


ANY: Final = JsonType("any")


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Final[Any] = _NoDefault()


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One named tool parameter as the host sees it."""

    name: str
    type: JsonType
    default: Any = NO_DEFAULT
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is NO_DEFAULT


def json_type(annotation: Any) -> JsonType:
    """Map a (resolved) annotation to its JSON type; see the module docstring."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return ANY
    if annotation is None:
        return JsonType("null")
    array = ndarray_annotation(annotation)
    if array is not None:
        return JsonType("ndarray", dtype=array[0], ndim=array[1])
    scalar = _SCALARS.get(annotation) if isinstance(annotation, type) else None
    if scalar is not None:
        return JsonType(scalar)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return json_type(args[0])
    if origin is typing.Union or origin is types.UnionType:
        return _union_type(args)
    if origin is typing.Literal:
        kinds = {_SCALARS.get(type(value)) for value in args}
        kind = kinds.pop() if len(kinds) == 1 else None
        return JsonType(kind) if kind is not None else ANY
    if annotation in _ARRAY_ORIGINS or origin in _ARRAY_ORIGINS:
        return JsonType("array", items=_items_type(origin, args))
    if annotation in _OBJECT_ORIGINS or origin in _OBJECT_ORIGINS or typing.is_typeddict(annotation):
        return JsonType("object")
    return ANY


def description_of(annotation: Any) -> str:
    """The first string in ``Annotated[X, ...]`` metadata, else empty."""
    if typing.get_origin(annotation) is typing.Annotated:
        for meta in typing.get_args(annotation)[1:]:
            if isinstance(meta, str):
                return meta
    return ""


def validate_arguments(tool: str, args: dict[str, Any], params: Mapping[str, ParamSpec], accepts_extra: bool) -> None:
    """Raise INVALID_ARGUMENTS listing every missing, unknown or mistyped argument."""
    errors: list[dict[str, str]] = []
    known = 0
    for name, spec in params.items():
        if name in args:
            known += 1
            _check(args[name], spec.type, (name,), errors)
        elif spec.required:
            errors.append({"path": format_path((name,)), "problem": "missing", "expected": spec.type.expected()})
    if known < len(args) and not accepts_extra:
        for name, value in args.items():
            if name not in params:
                errors.append({"path": format_path((name,)), "problem": "unknown", "got": json_type_name(value)})
    if errors:
        shown = errors[:MAX_REPORTED_ERRORS]
        summary = "; ".join(_describe(error) for error in shown[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise ToolError(
            INVALID_ARGUMENTS,
            f"invalid arguments for {tool}: {summary}{more}",
            {"errors": shown, "parameters": list(params)},
        )


def _check(value: Any, expected: JsonType, path: tuple[str | int, ...], errors: list[dict[str, str]]) -> None:
    if not expected.accepts(value):
        error = {
            "path": format_path(path),
            "problem": "wrong_type",
            "expected": expected.expected(),
            "got": json_type_name(value),
        }
        if expected.name == "ndarray" and value is not None:
            error["hint"] = "send an NdArray or a TypedArray; JSON lists and numbers are not arrays"
        errors.append(error)
    elif expected.name == "ndarray" and value is not None:
        _check_array(value, expected, format_path(path), errors)
    elif expected.items is not None and expected.items.name != "any" and value is not None:
        for index, item in enumerate(value):
            if len(errors) >= MAX_REPORTED_ERRORS:
                return
            _check(item, expected.items, (*path, index), errors)


def _check_array(value: Any, expected: JsonType, path: str, errors: list[dict[str, str]]) -> None:
    if expected.dtype and value.dtype.name != expected.dtype:
        errors.append({"path": path, "problem": "wrong_dtype", "expected": expected.dtype, "got": value.dtype.name})
    if expected.ndim and value.ndim != expected.ndim:
        errors.append(
            {"path": path, "problem": "wrong_ndim", "expected": f"{expected.ndim}-d", "got": f"{value.ndim}-d"}
        )


def _describe(error: Mapping[str, str]) -> str:
    problem = error["problem"]
    if problem == "missing":
        return f"{error['path']} is required ({error['expected']})"
    if problem == "unknown":
        return f"{error['path']} is not a parameter"
    if problem == "wrong_dtype":
        return f"{error['path']} must be an array of dtype {error['expected']}, got {error['got']}"
    if problem == "wrong_ndim":
        return f"{error['path']} must be a {error['expected']} array, got {error['got']}"
    hint = f" ({error['hint']})" if "hint" in error else ""
    return f"{error['path']} must be {error['expected']}, got {error['got']}{hint}"


def _union_type(args: tuple[Any, ...]) -> JsonType:
    members = [arg for arg in args if arg is not type(None)]
    if len(members) != 1:
        return ANY  # several types: the tool checks itself; any also accepts null
    inner = json_type(members[0])
    return replace(inner, nullable=True) if len(members) < len(args) else inner


def _items_type(origin: Any, args: tuple[Any, ...]) -> JsonType:
    if not args:
        return ANY
    if origin is tuple:
        # tuple[X, ...] is homogeneous; a fixed tuple[X, Y] is not described.
        return json_type(args[0]) if len(args) == 2 and args[1] is Ellipsis else ANY
    return json_type(args[0])

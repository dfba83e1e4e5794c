"""numpy arrays and byte strings as wire blobs (``pb.Blob``), and ``np.ndarray`` annotations.

A blob is an array's element type (``dtype``), its dimensions (``shape``, C
order) and its raw elements (little-endian), or a byte string (dtype
``"bytes"``, no shape). serialization.py finds them inside values and places
them back; this module knows numpy, which stays optional: it is imported only
when an array blob arrives (``np.frombuffer`` needs it), and looked at in
``sys.modules`` otherwise (an array can only exist where numpy was imported).
"""

from __future__ import annotations

import importlib
import math
import sys
import typing
from types import ModuleType
from typing import Any, Final

BYTES: Final = "bytes"

# The element types that travel, with their element sizes (the host's NdArray has the same table).
ITEMSIZES: Final[dict[str, int]] = {
    "bool": 1,
    "int8": 1,
    "int16": 2,
    "int32": 4,
    "int64": 8,
    "uint8": 1,
    "uint16": 2,
    "uint32": 4,
    "uint64": 8,
    "float16": 2,
    "float32": 4,
    "float64": 8,
    "complex64": 8,
    "complex128": 16,
}
_SUPPORTED: Final = ", ".join(ITEMSIZES)

# What to do with the element types that do not travel, by numpy's dtype.kind.
_CONVERT: Final[dict[str, str]] = {
    "O": "convert it to a numeric dtype (e.g. .astype(np.float64)) or return .tolist()",
    "U": "return .tolist() (strings travel as JSON)",
    "S": "return .tolist() or the raw bytes (.tobytes())",
    "T": "return .tolist() (strings travel as JSON)",
    "M": "convert it with .astype(np.int64) (counts of its unit) or return ISO strings",
    "m": "convert it with .astype(np.int64) (counts of its unit)",
    "V": "return each field as an array of its own (x['field'])",
    "f": "convert it with .astype(np.float64)",
    "c": "convert it with .astype(np.complex128)",
}

_numpy: ModuleType | None = None


class NumpyMissing(Exception):
    """An array blob arrived and numpy cannot be imported."""


def numpy_module() -> ModuleType:
    """numpy, imported on first need; NumpyMissing when it is not installed."""
    global _numpy
    if _numpy is None:
        try:
            _numpy = importlib.import_module("numpy")
        except ImportError as exc:
            raise NumpyMissing(f"install numpy to receive arrays ({exc})") from None
    return _numpy


def loaded_numpy() -> Any:
    """numpy if something already imported it, else None (never imports it)."""
    return sys.modules.get("numpy")


def array_parts(array: Any) -> tuple[str, tuple[int, ...], memoryview]:
    """dtype name, shape and a C-order little-endian byte view of a numpy array; ValueError says why not.

    The view is over the array itself when it is C-contiguous (no copy: the
    shared-memory path copies it once, into the region; the inline path once,
    into the protobuf ``bytes``); a slice or a transpose is made contiguous
    once by ``ravel``.
    """
    numpy = loaded_numpy()
    if numpy is not None and isinstance(array, numpy.ma.MaskedArray):
        raise ValueError("a masked array would lose its mask: return .filled(fill_value), or data and mask apart")
    dtype = array.dtype
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big"):
        raise ValueError(
            f"a big-endian {dtype.name} array does not travel; convert it with .astype(x.dtype.newbyteorder('<'))"
        )
    name = dtype.name
    if name not in ITEMSIZES or dtype.fields is not None:
        advice = _CONVERT.get(dtype.kind, "convert it to one of them with .astype()")
        raise ValueError(f"arrays of dtype {dtype} do not travel (supported: {_SUPPORTED}); {advice}")
    # As 1-d uint8: memoryview.cast refuses 0-d and empty shapes, and every dtype has a uint8 view.
    return name, tuple(array.shape), memoryview(array.ravel().view(numpy.uint8))


def from_blob(dtype: str, shape: list[int], data: bytes | memoryview) -> Any:
    """The value a received blob stands for: ``bytes``, or a read-only numpy array over ``data``.

    ``data`` is the blob's inline bytes or a read-only view of a shared-memory
    slot: the array is zero-copy over either; a byte string is copied out of a
    slot (bytes parameters are immutable ``bytes``, and the slot is the call's only).

    ValueError for a malformed blob; NumpyMissing for an array without numpy.
    """
    if dtype == BYTES:
        if shape:
            raise ValueError(f"a bytes blob has no shape, got {shape}")
        return data if isinstance(data, bytes) else bytes(data)
    itemsize = ITEMSIZES.get(dtype)
    if itemsize is None:
        raise ValueError(f"unknown dtype {dtype!r} (supported: {_SUPPORTED}, bytes)")
    expected = math.prod(shape) * itemsize
    if len(data) != expected:  # a slot's view is 1-d bytes, so len() is its byte count too
        raise ValueError(f"{dtype} array of shape {shape} takes {expected} bytes, got {len(data)}")
    numpy = numpy_module()
    try:
        # Over the received bytes, no copy; read-only because bytes are immutable and slots mapped read-only.
        return numpy.frombuffer(data, dtype=numpy.dtype(dtype).newbyteorder("<")).reshape(shape)
    except ValueError as exc:  # e.g. more dimensions than numpy supports
        raise ValueError(f"shape {shape} cannot be made into an array: {exc}") from None


def ndarray_annotation(annotation: Any) -> tuple[str, int] | None:
    """(dtype, ndim) of an ``np.ndarray`` / ``NDArray[np.float32]`` annotation ("" and 0: not given), else None.

    TypeError for a declared dtype that cannot travel: no call could ever fit it.
    """
    numpy = loaded_numpy()
    if numpy is None:
        return None  # the annotation cannot name numpy's types without numpy imported
    origin = typing.get_origin(annotation)
    if annotation is not numpy.ndarray and origin is not numpy.ndarray:
        return None
    args = typing.get_args(annotation)
    if len(args) != 2:
        return "", 0
    shape, dtype_type = args
    return _declared_dtype(numpy, dtype_type), _declared_ndim(shape)


def _declared_ndim(shape: Any) -> int:
    # ndarray[tuple[int, int], ...] is 2-d; tuple[int, ...], Any or a TypeVar say nothing.
    if typing.get_origin(shape) is not tuple:
        return 0
    dims = typing.get_args(shape)
    return 0 if Ellipsis in dims else len(dims)


def _declared_dtype(numpy: Any, dtype_type: Any) -> str:
    # np.dtype[np.float32] -> "float32"; np.dtype[Any], np.dtype[np.floating] (abstract) -> any.
    if typing.get_origin(dtype_type) is not numpy.dtype:
        return ""
    (scalar,) = typing.get_args(dtype_type) or (None,)
    if not (isinstance(scalar, type) and issubclass(scalar, numpy.generic)):
        return ""
    try:
        dtype = numpy.dtype(scalar)
    except TypeError:  # abstract scalar types (np.floating, np.integer) are not dtypes
        return ""
    if dtype.name not in ITEMSIZES:
        raise TypeError(f"arrays of dtype {dtype} cannot travel (supported: {_SUPPORTED})")
    return str(dtype.name)

"""How failures become ``ErrorInfo`` on the wire.

Two kinds of failure exist. A :class:`ToolError` is an *answer*: the tool (or
the bridge, e.g. for bad arguments) chose a code from the Snakepit error table,
and its message and details are the whole story, so no traceback is sent.
Any other exception is a *crash* of the tool: it becomes ``PYTHON_EXCEPTION``
(``RESOURCE_EXHAUSTED`` for ``MemoryError``, so the host can treat it like the
OOM it is) with the Python type, traceback and exception chain, so the Node
side can show exactly what Python would have printed.

A malformed failure is still described: a ToolError's code and message go
through ``str()``, unencodable details become a note saying so, and lone
surrogates are escaped. Should user code raise even then, the bridge answers
``INTERNAL`` and logs the original (server.py).
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from typing import Any, Final

from .wire import pb

PYTHON_EXCEPTION: Final = "PYTHON_EXCEPTION"
TOOL_NOT_FOUND: Final = "TOOL_NOT_FOUND"
INVALID_ARGUMENTS: Final = "INVALID_ARGUMENTS"
SERIALIZATION_ERROR: Final = "SERIALIZATION_ERROR"
RESOURCE_EXHAUSTED: Final = "RESOURCE_EXHAUSTED"
PAYLOAD_TOO_LARGE: Final = "PAYLOAD_TOO_LARGE"
INTERNAL: Final = "INTERNAL"
# The host option that sets the worker's message limit (maxPayloadBytes + 64 KiB).
PAYLOAD_LIMIT_OPTION: Final = "maxPayloadBytes"

# Bounds keep a pathological exception (a huge message, a recursion traceback,
# a cyclic chain) from producing a multi-megabyte error frame.
MAX_CHAIN_DEPTH: Final = 16
MAX_MESSAGE_CHARS: Final = 8 * 1024
MAX_TRACEBACK_CHARS: Final = 64 * 1024


class ToolError(Exception):
    """Raise from a tool to answer with a chosen error code instead of PYTHON_EXCEPTION.

    ``details`` must be JSON-encodable; it reaches the host as ``details_json``.
    """

    def __init__(self, code: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


def payload_too_large(what: str, size: int, limit: int, subject: str) -> ToolError:
    """The answer for a reply that no frame can carry: ``subject`` ("the result of
    tool 'x'") is ``size`` bytes, above the worker's message ``limit``.

    ``what`` is the kind, for programs: result, session delta, stream chunk, error
    or host call.
    """
    return ToolError(
        PAYLOAD_TOO_LARGE,
        f"{subject} is {size} bytes, more than the {limit}-byte limit of one worker message; "
        f"the host pool option {PAYLOAD_LIMIT_OPTION} raises the limit",
        {"bytes": size, "limitBytes": limit, "what": what, "option": PAYLOAD_LIMIT_OPTION},
    )


def error_info(exc: BaseException) -> pb.ErrorInfo:
    """Describe ``exc`` for the host (see the module docstring for the two kinds)."""
    if isinstance(exc, ToolError):
        # A tool may pass anything as code or message (ToolError("X", 42)).
        info = pb.ErrorInfo(code=_wire_text(str(exc.code)), message=_clip(str(exc.message), MAX_MESSAGE_CHARS))
        if exc.details:
            info.details_json = _details_json(exc.details)
        return info
    code = RESOURCE_EXHAUSTED if isinstance(exc, MemoryError) else PYTHON_EXCEPTION
    python = python_exception(exc)
    message = f"{python.type}: {python.message}" if python.message else python.type
    return pb.ErrorInfo(code=code, message=message, python=python)


def python_exception(exc: BaseException) -> pb.PythonException:
    """Type, message, full traceback and the cause/context chain of ``exc``."""
    return pb.PythonException(
        type=qualified_type_name(exc),
        message=_message(exc),
        traceback=_clip_head("".join(traceback.format_exception(exc)), MAX_TRACEBACK_CHARS),
        chain=[
            pb.ExceptionLink(type=qualified_type_name(linked), message=_message(linked), relation=relation)
            for linked, relation in exception_chain(exc)
        ],
    )


def exception_chain(exc: BaseException) -> list[tuple[BaseException, str]]:
    """The exceptions linked to ``exc``, outermost first, as Python prints them.

    Each step follows ``__cause__`` (relation "cause") or, unless suppressed by
    ``raise ... from None``, ``__context__`` (relation "context"). ``exc`` itself
    is not included. Depth is bounded and cycles are cut.
    """
    chain: list[tuple[BaseException, str]] = []
    seen = {id(exc)}
    current = exc
    while len(chain) < MAX_CHAIN_DEPTH:
        if current.__cause__ is not None:
            linked, relation = current.__cause__, "cause"
        elif current.__context__ is not None and not current.__suppress_context__:
            linked, relation = current.__context__, "context"
        else:
            break
        if id(linked) in seen:
            break
        seen.add(id(linked))
        chain.append((linked, relation))
        current = linked
    return chain


def qualified_type_name(exc: BaseException) -> str:
    """The type as the host shows it: ``ValueError`` for builtins, ``pkg.mod.Error`` otherwise."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _message(exc: BaseException) -> str:
    # str() of a user exception runs user code and can itself fail.
    try:
        text = str(exc)
    except Exception:  # a failure here must not hide the original error
        text = f"<unprintable {type(exc).__name__}>"
    return _clip(text, MAX_MESSAGE_CHARS)


def _details_json(details: Mapping[str, Any]) -> bytes:
    try:
        text = json.dumps(details, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)
    except Exception as exc:  # default=str runs the objects' own __str__, which may raise anything
        text = json.dumps(
            {"unencodable_details": _safe_repr(details), "reason": f"{qualified_type_name(exc)}: {_message(exc)}"}
        )
    # A lone surrogate can only sit inside a JSON string, where \udcxx is its valid escape.
    return text.encode("utf-8", "backslashreplace")


def _safe_repr(value: object) -> str:
    try:
        return repr(value)[:MAX_MESSAGE_CHARS]
    except Exception:  # user code again
        return f"<unprintable {type(value).__name__}>"


def _wire_text(text: str) -> str:
    """``text`` as protobuf accepts it: lone surrogates (undecodable file names) escaped, not fatal."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return _wire_text(text)
    return _wire_text(f"{text[:limit]}... [{len(text) - limit} more characters]")


def _clip_head(text: str, limit: int) -> str:
    # A traceback's most useful part is its end (the exception actually raised).
    if len(text) <= limit:
        return _wire_text(text)
    return _wire_text(f"[{len(text) - limit} earlier characters omitted]\n{text[-limit:]}")

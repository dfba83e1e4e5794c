"""The tools every baseline worker runs: the same work as the showcase adapter's.

``add`` is trivial on purpose (it measures the bridge); ``cpu`` burns about
``ms`` of this thread's CPU time with the showcase's own loop (imported); ``count``
yields ``{"i": i}`` chunks. Arguments arrive as JSON and results leave as
compact JSON, as they do through Snakepit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# The exact workload of the showcase's ``cpu`` tool: baselines and Snakepit do the same Python work.
from snakepit_bridge.examples.showcase import burn_cpu

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_DECODER = json.JSONDecoder()


def add(a: float, b: float) -> float:
    return a + b


def cpu(ms: float = 2.0) -> int:
    return burn_cpu(ms)


TOOLS: dict[str, Callable[..., Any]] = {"add": add, "cpu": cpu}


def encode(value: Any) -> bytes:
    return _ENCODER.encode(value).encode("utf-8")


def call_json(tool: str, args_json: bytes) -> tuple[bool, bytes, str]:
    """Run ``tool`` on JSON arguments; (ok, JSON result, error text)."""
    try:
        args = _DECODER.decode(args_json.decode("utf-8")) if args_json else {}
        return True, encode(TOOLS[tool](**args)), ""
    except Exception as exc:  # reported to the caller, never raised into the transport
        return False, b"", f"{type(exc).__name__}: {exc}"


def call_obj(tool: str, args: dict[str, Any]) -> tuple[bool, Any, str]:
    """Same, for already-decoded arguments (the stdio worker's JSON line)."""
    try:
        return True, TOOLS[tool](**args), ""
    except Exception as exc:
        return False, None, f"{type(exc).__name__}: {exc}"

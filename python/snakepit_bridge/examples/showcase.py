"""ShowcaseAdapter: one tool per behaviour the host has to handle.

It doubles as the fixture of the Python and Node test suites (results,
streams, sessions, errors, crashes, memory, CPU, frozen workers), so every
tool is small and deterministic.
"""

from __future__ import annotations

import builtins
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from snakepit_bridge import Adapter, CallContext, HostToolError, tool

try:
    import numpy as np
except ImportError:  # numpy is optional (the extra `snakepit-bridge[numpy]`): the array tools are not served
    HAS_NUMPY = False
else:
    HAS_NUMPY = True

F = TypeVar("F", bound=Callable[..., Any])

MIB = 1024 * 1024
PAGE = 4096
# While the file this names exists, workers refuse to start: lets tests (and
# operators trying out the dashboards) drive a pool into a crash loop and out.
FAIL_START_ENV = "SNAKEPIT_SHOWCASE_FAIL_START_FILE"


def array_tool(func: F) -> F:
    """``@tool`` when numpy is installed; else the method stays unserved, its annotations never evaluated."""
    return tool(func) if HAS_NUMPY else func


def burn_cpu(ms: float) -> int:
    """About ``ms`` of this thread's CPU time in pure Python (the benchmarks' baselines run this same loop)."""
    deadline = time.thread_time() + ms / 1000
    iterations = 0
    accumulator = 0
    while time.thread_time() < deadline:
        for step in range(100):
            accumulator = (accumulator * 31 + step) % 1_000_003
        iterations += 100
    return iterations


class ShowcaseAdapter(Adapter):
    """Tools exercising every path of the bridge."""

    thread_safe = True

    def setup(self) -> None:
        fail_file = os.environ.get(FAIL_START_ENV)
        if fail_file and os.path.exists(fail_file):
            raise RuntimeError(f"refusing to start while {fail_file} exists ({FAIL_START_ENV})")
        self._held: list[bytearray] = []
        self._held_lock = threading.Lock()

    def teardown(self) -> None:
        self._held.clear()

    @tool(idempotent=True, inline=True)
    def ping(self) -> str:
        """Answer "pong": the cheapest round trip."""
        return "pong"

    @tool(idempotent=True, inline=True)
    def echo(self, value: Any) -> Any:
        """Return the value unchanged (a JSON round trip)."""
        return value

    @tool(idempotent=True, inline=True)
    def add(self, a: float, b: float) -> float:
        """Add two numbers; integers stay integers."""
        return a + b

    @tool
    def sleep(self, ms: int, ctx: CallContext) -> int:
        """Sleep ms milliseconds, returning early when cancelled; returns the ms slept."""
        started = time.monotonic()
        if ctx.sleep(ms / 1000):
            return ms
        return round((time.monotonic() - started) * 1000)

    @tool
    def fail(self, type: str = "ValueError", message: str = "boom", chained: bool = False) -> None:
        """Raise the named builtin exception (RuntimeError for unknown names)."""
        error = _builtin_exception(type, message)
        if not chained:
            raise error
        try:
            raise KeyError("inner cause")
        except KeyError as cause:
            raise error from cause

    @tool
    def crash(self, exit_code: int = 1) -> None:
        """Kill the worker process at once, as a segfaulting extension would."""
        os._exit(exit_code)

    @tool
    def allocate(self, mb: int) -> int:
        """Hold mb more MiB (pages touched, so they are resident); returns the MiB held."""
        block = bytearray(mb * MIB)
        block[::PAGE] = b"\x01" * len(range(0, len(block), PAGE))
        with self._held_lock:
            self._held.append(block)
            return sum(len(held) for held in self._held) // MIB

    @tool(idempotent=True)
    def whoami(self, ctx: CallContext) -> dict[str, Any]:
        """The worker's pid and id, to see where a call ran."""
        return {"pid": os.getpid(), "worker_id": ctx.worker_id}

    @tool
    def count(self, n: int, ctx: CallContext, delay_ms: int = 0) -> Iterator[dict[str, int]]:
        """Stream {"i": 0} ... {"i": n-1}, waiting delay_ms before each chunk after the first."""
        for i in range(n):
            if i and delay_ms and not ctx.sleep(delay_ms / 1000):
                return
            yield {"i": i}

    @tool(inline=True, idempotent=True)
    def session_put(self, key: str, value: Any, ctx: CallContext) -> Any:
        """Store value under key in the session; returns it (a blind write: safe to run again)."""
        ctx.session[key] = value
        return value

    @tool(inline=True, idempotent=True)
    def session_get(self, key: str, ctx: CallContext) -> Any:
        """The session's value under key, or null."""
        return ctx.session.get(key)

    @tool(inline=True)
    def session_incr(self, key: str, ctx: CallContext, by: int = 1) -> int:
        """Add by to the integer under key (missing counts as 0); returns the new value."""
        current = ctx.session.get(key, 0)
        if isinstance(current, bool) or not isinstance(current, int):
            raise TypeError(f"session value {key!r} is not an integer: {current!r}")
        ctx.session[key] = current + by
        return current + by

    @tool
    def session_incr_after_host(self, key: str, host_tool: str, ctx: CallContext, by: int = 1) -> int:
        """Call host_tool({"key": key}), then add by to key as this call's snapshot had it.

        A host tool that changes the session meanwhile (a nested call, a host-side
        write) makes this call's commit conflict: the host's concurrency backstop.
        """
        ctx.call_host(host_tool, {"key": key})
        return self.session_incr(key, ctx, by)

    @tool
    def session_fill(self, prefix: str, count: int, ctx: CallContext, size: int = 1) -> int:
        """Set count keys prefix0, prefix1, ... to strings of size "x"; returns count (to reach the session caps)."""
        value = "x" * size
        for i in range(count):
            ctx.session[f"{prefix}{i}"] = value
        return count

    @tool
    def cpu(self, ms: float = 2.0) -> int:
        """Burn about ms of this thread's CPU time in pure Python; returns the iterations."""
        return burn_cpu(ms)

    @tool
    def reverse_bytes(self, data: bytes) -> bytes:
        """Reverse a binary payload (the binary path both ways)."""
        return data[::-1]

    @tool
    def bytes_len(self, data: bytes) -> int:
        """The length of data: bytes in only."""
        return len(data)

    @tool
    def bytes_make(self, n: int, fill: int = 0) -> bytes:
        """n bytes, each fill (0-255): bytes out only."""
        if not 0 <= n <= 1 << 30:
            raise ValueError(f"n must be between 0 and 2**30, got {n}")
        return bytes([fill]) * n

    @tool
    def bytes_split(self, data: bytes, size: int) -> list[bytes]:
        """Cut data into pieces of size bytes (the last may be shorter): bytes inside a result."""
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        return [data[start : start + size] for start in range(0, len(data), size)]

    @array_tool
    def array_sum(self, x: np.ndarray) -> float:
        """The sum of all elements of x, as a float."""
        return float(x.sum())

    @array_tool
    def array_scale(self, x: np.ndarray, factor: float) -> np.ndarray:
        """x times factor, elementwise: an array in and an array out (same shape; numpy's dtype rules)."""
        return x * factor

    @array_tool
    def array_fill(self, n: int, value: float) -> np.ndarray:
        """A float32 array of n elements, each value: an array out only."""
        if not 0 <= n <= 1 << 30:
            raise ValueError(f"n must be between 0 and 2**30, got {n}")
        return np.full(n, value, dtype=np.float32)

    @array_tool
    def array_hold(self, x: np.ndarray, ms: int, ctx: CallContext) -> float:
        """Hold x for ms milliseconds (returning early when cancelled), then sum it: a call that keeps its array."""
        ctx.sleep(ms / 1000)
        return float(x.sum())

    @array_tool
    def array_split(self, x: np.ndarray, parts: int) -> Iterator[np.ndarray]:
        """Stream x in parts pieces along its first axis (np.array_split): arrays in stream chunks."""
        yield from np.array_split(x, parts)

    @tool
    def noisy(self, text: str) -> str:
        """print() text to stdout (which the host logs) and return it."""
        print(text)
        return text

    @tool
    def sleep_span(self, ms: int, ctx: CallContext) -> dict[str, float]:
        """Sleep like ``sleep`` and report when it ran (wall clock): shows calls overlapping on threads."""
        start = time.time()
        ctx.sleep(ms / 1000)
        return {"start": start, "end": time.time()}

    @tool
    def greet(self, user_id: int, ctx: CallContext) -> str:
        """Greet a user looked up through the host tool ``lookup_user``."""
        user = ctx.call_host("lookup_user", {"id": user_id})
        return f"Hello, {user['name']}!"

    @tool
    async def greet_async(self, user_id: int, ctx: CallContext) -> str:
        """``greet`` from an ``async def`` tool, with the awaitable host call."""
        user = await ctx.call_host_async("lookup_user", {"id": user_id})
        return f"Hello, {user['name']}!"

    @tool
    def host_failure(
        self, name: str, args: dict[str, Any], ctx: CallContext, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Call a host tool and report how it failed, as the typed Python exception saw it."""
        try:
            return {"ok": True, "result": ctx.call_host(name, args, timeout=timeout_s)}
        except HostToolError as error:
            return {
                "ok": False,
                "exception": type(error).__name__,
                "code": error.code,
                "host_type": error.host_type,
                "status": error.status,
            }

    @tool
    def call_host(self, name: str, args: dict[str, Any], ctx: CallContext) -> Any:
        """Call any host tool and return its result; its failure propagates as a HostToolError."""
        return ctx.call_host(name, args)

    @tool
    def recurse(self, ctx: CallContext, level: int = 0) -> int:
        """Ask the host to run this tool again, forever: shows the host's recursion limit."""
        return int(ctx.call_host("run_python", {"tool": "recurse", "args": {"level": level + 1}}))

    @tool
    def log(self, level: str, message: str, ctx: CallContext) -> None:
        """Write one log record at ``level`` (debug, info, warning, error) through ``ctx.logger``."""
        ctx.logger.log(logging.getLevelName(level.upper()), message)

    @tool(idempotent=True)
    def environment(self) -> list[str]:
        """The names (never the values) of the variables the worker inherited: shows the allow-list at work."""
        return sorted(os.environ)

    @tool
    def spin(self) -> None:
        """Loop forever, ignoring cancellation: a frozen worker for the host to detect."""
        counter = 0
        while True:
            counter += 1

    @tool
    def text(self, size: int) -> str:
        """A string of ``size`` characters: a result as large as asked (e.g. over the message limit)."""
        return "x" * size

    @tool
    def chunks(self, n: int, size: int) -> Iterator[str]:
        """Yield ``n`` strings of ``size`` characters, as fast as the host takes them."""
        for _ in range(n):
            yield "y" * size

    @tool
    def nan(self) -> float:
        """Return NaN, which JSON cannot carry: answered with SERIALIZATION_ERROR."""
        return float("nan")


def _builtin_exception(name: str, message: str) -> BaseException:
    cls = getattr(builtins, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        return RuntimeError(message)
    try:
        return cls(message)
    except TypeError:  # e.g. UnicodeDecodeError takes five arguments
        return RuntimeError(message)

"""Adapters for the tests: async tools, iterables and generator cleanup."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from snakepit_bridge import Adapter, CallContext, ToolError, tool
from snakepit_bridge.host_tools import HostToolError


class MixedAdapter(Adapter):
    """Async and sync tools side by side, counting closed generators."""

    def setup(self) -> None:
        self.closed = {"async": 0, "sync": 0}

    @tool
    async def wait(self, ms: int) -> int:
        """Sleep on the event loop."""
        await asyncio.sleep(ms / 1000)
        return ms

    @tool
    async def rendezvous(self, n: int) -> int:
        """Return once ``n`` calls of it are running at the same time (fails after 5 s otherwise)."""
        arrived = getattr(self, "_arrived", 0) + 1
        self._arrived = arrived
        if not hasattr(self, "_all_here"):
            self._all_here = asyncio.Event()
        if arrived >= n:
            self._all_here.set()
        await asyncio.wait_for(self._all_here.wait(), 5)
        return arrived

    @tool
    async def explode(self, message: str) -> None:
        raise LookupError(message)

    @tool
    async def ticks(self, n: int, delay_ms: int = 0) -> AsyncIterator[int]:
        try:
            for i in range(n):
                if delay_ms:
                    await asyncio.sleep(delay_ms / 1000)
                yield i
        finally:
            self.closed["async"] += 1

    @tool
    def sync_ticks(self, n: int, ctx: CallContext, delay_ms: int = 0) -> Iterator[int]:
        try:
            for i in range(n):
                if delay_ms and not ctx.sleep(delay_ms / 1000):
                    return
                yield i
        finally:
            self.closed["sync"] += 1

    @tool(streaming=True)
    def letters(self, word: str) -> Iterator[str]:
        """A plain method whose returned iterable is streamed."""
        return iter(word)

    @tool
    def nap(self, ms: int, ctx: CallContext) -> int:
        ctx.sleep(ms / 1000)
        return ms

    @tool
    def closes(self) -> dict[str, int]:
        return self.closed

    @tool(inline=True)
    def whoami_inline(self, ctx: CallContext) -> dict[str, object]:
        return {"request_id": ctx.request_id, "session": dict(ctx.session), "timeout_ms": ctx.timeout_ms}

    @tool(inline=True)
    def ask_host_inline(self, ctx: CallContext) -> object:
        return ctx.call_host("anything")

    @tool
    def huge(self) -> int:
        return 2**60


class SizesAdapter(Adapter):
    """Replies of chosen sizes, to test the byte bounds of the worker's frames."""

    def setup(self) -> None:
        self.closed = {"async": 0, "sync": 0}

    @tool(inline=True)
    def blob_inline(self, n: int) -> bytes:
        """Inline: every call of one host frame is answered before the writer runs."""
        return b"x" * n

    @tool
    def blob(self, n: int) -> bytes:
        return b"x" * n

    @tool
    def chunks(self, n: int, size: int) -> Iterator[bytes]:
        try:
            for _ in range(n):
                yield b"x" * size
        finally:
            self.closed["sync"] += 1

    @tool
    async def achunks(self, n: int, size: int) -> AsyncIterator[bytes]:
        try:
            for _ in range(n):
                yield b"x" * size
        finally:
            self.closed["async"] += 1

    @tool
    def closes(self) -> dict[str, int]:
        return self.closed

    @tool
    def growing(self, sizes: list[int]) -> Iterator[bytes]:
        try:
            for size in sizes:
                yield b"x" * size
        finally:
            self.closed["sync"] += 1

    @tool
    async def agrowing(self, sizes: list[int]) -> AsyncIterator[bytes]:
        try:
            for size in sizes:
                yield b"x" * size
        finally:
            self.closed["async"] += 1

    @tool
    async def ablob(self, n: int) -> bytes:
        return b"x" * n

    @tool
    def array(self, n: int) -> npt.NDArray[np.uint8]:
        return np.zeros(n, dtype=np.uint8)

    @tool
    def array_chunks(self, n: int, size: int) -> Iterator[dict[str, Any]]:
        for i in range(n):
            yield {"i": i, "data": np.full(size, i, dtype=np.uint8)}

    @tool
    def session_blob(self, n: int, ctx: CallContext) -> str:
        ctx.session["big"] = "x" * n
        return "stored"

    @tool
    def big_error(self, n: int) -> None:
        raise ToolError("INVALID_ARGUMENTS", "too much detail", {"blob": "x" * n})

    @tool
    def big_host_call(self, n: int, ctx: CallContext) -> dict[str, object]:
        try:
            ctx.call_host("echo", {"blob": "x" * n}, timeout=5)
        except HostToolError as exc:
            return {"code": exc.code, "message": exc.message, "details": exc.details}
        return {}


class Unprintable(Exception):
    """An exception whose text cannot be had: its __str__ itself raises."""

    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class Opaque:
    """An object that refuses both str() and repr()."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _fail(kind: str) -> None:
    """Raise the malformed or unusual failure named ``kind``."""
    if kind == "int_message":
        raise ToolError("INVALID_ARGUMENTS", 42)  # type: ignore[arg-type]  # what a careless tool does
    if kind == "int_code":
        raise ToolError(42, "the code is a number")  # type: ignore[arg-type]
    if kind == "unprintable":
        raise Unprintable()
    if kind == "unprintable_message":
        raise ToolError("INVALID_ARGUMENTS", Opaque())  # type: ignore[arg-type]
    if kind == "bad_details":
        raise ToolError("INVALID_ARGUMENTS", "odd details", {"thing": Opaque()})
    if kind == "unicode":
        raise ToolError("INVALID_ARGUMENTS", "café introuvable: 数据 ☃")
    if kind == "surrogate":
        raise ValueError("caf\udcff.txt")
    raise AssertionError(kind)


class FailingAdapter(Adapter):
    """Every failure kind of _fail, from a thread, from the event loop and inline."""

    @tool
    def fail_sync(self, kind: str) -> None:
        _fail(kind)

    @tool
    async def fail_async(self, kind: str) -> None:
        _fail(kind)

    @tool(inline=True)
    def fail_inline(self, kind: str) -> None:
        _fail(kind)

    @tool
    def fail_stream(self, kind: str) -> Iterator[int]:
        yield 1
        _fail(kind)

    @tool(inline=True)
    def ping(self) -> str:
        return "pong"


class EnvAdapter(Adapter):
    """What the worker's environment shows a tool and the processes it starts."""

    @tool
    def sees(self, name: str) -> dict[str, object]:
        child = subprocess.run(
            [sys.executable, "-c", "import os, sys; print(os.environ.get(sys.argv[1], '<unset>'))", name],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return {"worker": name in os.environ, "child": child.stdout.strip()}


class ArrayAdapter(Adapter):
    """Array parameters whose annotations declare dtype and dimensions."""

    @tool
    def fit(
        self, x: np.ndarray[tuple[int, int], np.dtype[np.float32]], labels: npt.NDArray[np.int64], rate: float = 0.1
    ) -> dict[str, Any]:
        """Echo what arrived, shapes and all."""
        return {"x": x, "labels": labels, "rate": rate, "writeable": x.flags.writeable}

    @tool
    def mask(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """Where x is positive."""
        return x > 0

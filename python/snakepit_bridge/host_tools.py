"""Calling back into the host: tools the NestJS application exposes to Python.

A running tool calls ``ctx.call_host("lookup_user", {"id": 7})`` (or awaits
``ctx.call_host_async(...)``). The request travels on the same Connect stream
as the tool's own call, tagged with that call's id, and the host answers with
the host tool's result or its error. A failure on the host side arrives as a
:class:`HostToolError` carrying the host's error code, the JavaScript error
type and its HTTP status; left uncaught it fails the tool like any exception,
chain included, so the original Node caller still sees all of it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import ToolError
from .serialization import decode_json, decode_payload, encode_payload
from .wire import pb

if TYPE_CHECKING:  # context imports this module
    from .context import Cancellation
    from .shared_memory import InRegion, SharedOut


class HostToolError(Exception):
    """A host tool failed, or could not be called.

    ``code`` is the Snakepit error code the host reported (e.g. ``TOOL_NOT_FOUND``,
    ``TIMEOUT``, ``INTERNAL``); ``host_type`` the JavaScript error class
    (e.g. ``NotFoundException``); ``status`` its HTTP status when it had one.
    """

    def __init__(self, code: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.host_type: str = str(self.details.get("hostType", ""))
        status = self.details.get("status")
        self.status: int | None = status if isinstance(status, int) else None

    def __str__(self) -> str:
        prefix = f"{self.host_type}: " if self.host_type else ""
        return f"{prefix}{self.message} ({self.code})"


class HostToolTimeout(HostToolError):
    """The host tool did not answer within its budget."""


class HostToolCancelled(HostToolError):
    """The call that made the host call was cancelled meanwhile."""


class HostLink:
    """One call's way back to the host; owned by the connection that runs the call."""

    __slots__ = (
        "_cancelled",
        "_depth",
        "_incoming",
        "_lock",
        "_next_id",
        "_parent_id",
        "_pending",
        "_send",
        "_session_id",
        "_shared",
        "tools",
    )

    def __init__(
        self,
        send: Callable[[pb.WorkerMessage], None],
        next_id: Callable[[], int],
        *,
        parent_id: int,
        depth: int,
        session_id: str,
        cancelled: Cancellation,
        tools: Mapping[str, pb.ToolSpec],
        shared: SharedOut | None = None,
        incoming: InRegion | None = None,
    ) -> None:
        """``shared`` / ``incoming``: the stream's shared-memory regions, for the calls' args and the replies."""
        self._send = send
        self._shared = shared
        self._incoming = incoming
        self._next_id = next_id
        self._parent_id = parent_id
        self._depth = depth
        self._session_id = session_id
        self._cancelled = cancelled
        self._pending: dict[int, concurrent.futures.Future[Any]] = {}
        self._lock = threading.Lock()
        self.tools = tools

    def start(
        self, name: str, args: Mapping[str, Any] | None, timeout: float | None
    ) -> tuple[int, concurrent.futures.Future[Any]]:
        """Send a HostCall; the future resolves with the decoded result or a HostToolError."""
        call_id = self._next_id()
        request = pb.HostCall(
            call_id=call_id,
            tool=name,
            args=encode_payload(dict(args or {}), f"arguments of host tool {name}", shared=self._shared),
            timeout_ms=max(0, int((timeout or 0) * 1000)),
            depth=self._depth + 1,
            session_id=self._session_id,
        )
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        # Checked and registered under the lock fail_all takes: a cancel sets the
        # flag before it fails what is pending, so either this sees the flag or
        # fail_all sees the future, never neither.
        try:
            with self._lock:
                if self._cancelled.is_set():
                    raise HostToolCancelled("CANCELLED", f"cannot call host tool {name!r}: the call was cancelled")
                self._pending[call_id] = future
            self._send(pb.WorkerMessage(id=self._parent_id, host_call=request))
        except BaseException:  # cancelled, or refused (too large for a frame): nobody will answer or read it
            self.forget(call_id)
            if self._shared is not None:
                self._shared.free_payload(request.args)
            raise
        return call_id, future

    def resolve(self, reply: pb.HostCallReply) -> None:
        """Reader side: the host answered."""
        with self._lock:
            future = self._pending.pop(reply.call_id, None)
        if future is None or future.done():
            return
        # Decoded here, on the connection's reader: what cannot be decoded fails this host call
        # in the tool, never the reader (and with it every call on the stream).
        try:
            if reply.WhichOneof("outcome") != "error":
                future.set_result(decode_payload(reply.value, "host tool result", self._incoming))
                return
            details = decode_json(reply.error.details_json, "host error details") if reply.error.details_json else {}
        except ToolError as exc:
            future.set_exception(HostToolError(exc.code, exc.message, exc.details))
            return
        error_type = HostToolTimeout if reply.error.code == "TIMEOUT" else HostToolError
        future.set_exception(error_type(reply.error.code, reply.error.message, details))

    def fail_all(self, reason: str) -> None:
        """The parent call ended or was cancelled: nobody will read these answers."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(HostToolCancelled("CANCELLED", reason))

    def forget(self, call_id: int) -> None:
        with self._lock:
            self._pending.pop(call_id, None)


def wait_sync(link: HostLink, name: str, args: Mapping[str, Any] | None, timeout: float | None) -> Any:
    """Block the tool's thread until the host answers (or the budget runs out)."""
    call_id, future = link.start(name, args, timeout)
    try:
        return future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        link.forget(call_id)
        raise HostToolTimeout("TIMEOUT", f"host tool {name!r} did not answer within {timeout} s") from None


async def wait_async(link: HostLink, name: str, args: Mapping[str, Any] | None, timeout: float | None) -> Any:
    call_id, future = link.start(name, args, timeout)
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except TimeoutError:
        link.forget(call_id)
        raise HostToolTimeout("TIMEOUT", f"host tool {name!r} did not answer within {timeout} s") from None

"""Unit-test adapter tools without a worker, a host or gRPC.

:class:`ToolHarness` calls the tools of an adapter instance the way the worker
runs them, with the worker's own parts:

* arguments are encoded as a host call's are (numpy arrays and bytes at any
  depth as blobs, arriving as read-only arrays and ``bytes``) and checked
  against the tool's parameters (``INVALID_ARGUMENTS`` for every missing,
  unknown or mistyped one);
* the tool gets a real :class:`~snakepit_bridge.CallContext`: its session (a
  dict you pass), metadata, time budget, cancellation, and host tools you fake;
* what comes back is what the host would receive: the result and stream chunks
  after their round trip (``SERIALIZATION_ERROR`` for what cannot travel;
  arrays come back as read-only numpy arrays, byte strings as ``bytes``), and
  the session as the host would store it after the call;
* failures are raised as the worker would answer them: a
  :class:`~snakepit_bridge.ToolError` (bad arguments, an unserializable
  result, or one the tool raised), or the tool's own exception, which the
  worker reports as ``PYTHON_EXCEPTION`` with that type.

Example::

    from snakepit_bridge.testing import ToolHarness

    def test_visit_counts_per_session() -> None:
        with ToolHarness.serving(MyAdapter) as harness:  # setup() before, teardown() after
            result = harness.call("visit", {"page": "home"}, session={"visits": {"home": 1}})
        assert result.value == {"home": 2}
        assert result.session == {"visits": {"home": 2}}

What it does not do: the host's parts (pools, timeouts, retries, session
stores and their caps, message size limits) and running calls concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, TypeVar

from .adapter import Adapter, ToolDefinition, ToolKind, discover_tools
from .context import CallContext
from .errors import INVALID_ARGUMENTS, TOOL_NOT_FOUND, ToolError
from .host_tools import HostLink, HostToolError
from .serialization import decode_args, decode_json, decode_payload, encode_json, encode_payload
from .wire import pb

__all__ = ["HostTool", "SessionDelta", "ToolHarness", "ToolResult"]

A = TypeVar("A", bound=Adapter)
T = TypeVar("T")

HostTool = Callable[[dict[str, Any]], Any]
"""A fake host tool: receives the arguments the tool sent, returns the result.

Raise :class:`~snakepit_bridge.HostToolError` (or ``HostToolTimeout``) to fail
with a code of your choice; any other exception reaches the tool as the host
reports a throwing host tool: ``HostToolError`` with code ``HOST_EXCEPTION``
and the exception's class name as ``host_type``.
"""

DEFAULT_SESSION_ID: Final = "test-session"
# The code the host gives a host tool that threw (host-tool.registry.ts).
HOST_EXCEPTION: Final = "HOST_EXCEPTION"


@dataclass(frozen=True, slots=True)
class SessionDelta:
    """What a call changed in its session: the keys it assigned (with their values) and the keys it deleted."""

    set: dict[str, Any]
    deleted: list[str]


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What the host receives from one call.

    ``value``: the result (for a streaming tool, what its generator returned,
    usually None); decoded from JSON, with numpy arrays (read-only) and
    ``bytes`` where the tool returned arrays and byte strings.
    ``chunks``: the stream chunks, decoded the same way (for ``stream()`` of a
    non-streaming tool, its result as the only chunk, as the host does).
    ``session``: the session after the call, as the host stores it (the one the
    call began with when it changed nothing, failed or was cancelled; empty
    without a session). ``delta``: what the call changed, or None.
    ``cancelled``: the call ended cancelled: the host gets no result and keeps no
    session change, only the chunks sent before.
    """

    value: Any
    chunks: list[Any]
    session: dict[str, Any]
    delta: SessionDelta | None
    cancelled: bool


@dataclass(slots=True)
class _Run:
    """One call: what the worker's _Call holds, plus the session it began with."""

    tool: ToolDefinition
    function: Callable[..., Any]
    args: pb.Payload
    ctx: CallContext
    session: dict[str, Any]
    stream: bool  # called like executeStream

    def cancelled(self, chunks: list[Any]) -> ToolResult:
        return ToolResult(None, chunks, self.session, None, True)


class ToolHarness:
    """Calls the tools of one adapter instance as the worker does; see the module docstring.

    ``tools`` maps each tool name to its definition as the worker discovered it
    (``description``, ``params`` with their JSON types, ``streaming``,
    ``idempotent``): a TypeError from the constructor is one the worker would
    refuse to start with.
    """

    def __init__(self, adapter: Adapter, *, worker_id: str = "test-worker") -> None:
        tools = discover_tools(type(adapter))
        if not tools:
            raise TypeError(f"{type(adapter).__qualname__} has no @tool methods, so no worker would serve it")
        self.adapter = adapter
        self.tools: Mapping[str, ToolDefinition] = MappingProxyType(tools)
        self.worker_id = worker_id
        self._request_ids = itertools.count(1)

    @classmethod
    @contextlib.contextmanager
    def serving(cls, adapter_class: type[A], *, worker_id: str = "test-worker") -> Iterator[ToolHarness]:
        """A harness for a new ``adapter_class()``, between its ``setup()`` and ``teardown()`` as in a worker."""
        adapter = adapter_class()
        harness = cls(adapter, worker_id=worker_id)  # tools are checked before setup, as the worker does
        adapter.setup()
        try:
            yield harness
        finally:
            adapter.teardown()

    def call(
        self,
        tool: str,
        args: Mapping[str, Any] | bytes | None = None,
        *,
        session: Mapping[str, Any] | None = None,
        session_id: str = DEFAULT_SESSION_ID,
        metadata: Mapping[str, str] | None = None,
        host_tools: Mapping[str, HostTool] | None = None,
        timeout_ms: int = 0,
        cancelled: bool = False,
    ) -> ToolResult:
        """Call a non-streaming tool, like the host's ``execute``.

        ``args``: the arguments by name (numpy arrays and bytes anywhere in
        them travel as the host's NdArray and Buffer do), or ``bytes`` for the
        tool's ``bytes`` parameter. ``session``: the session's values, or None to call outside a
        session (then a tool that writes to ``ctx.session`` fails, as in a
        worker); ``session_id`` is its ``ctx.session_id``. ``metadata``: the
        caller's metadata (``ctx.metadata``). ``host_tools``: fakes for the
        tools ``ctx.call_host`` may call (others are ``TOOL_NOT_FOUND``).
        ``timeout_ms``: the caller's budget (``ctx.deadline``, ``ctx.remaining()``).
        ``cancelled``: the host cancels the call as soon as it started: a sync
        tool runs with ``ctx.cancelled`` set, an async one gets CancelledError at
        its first await; the result says ``cancelled``.

        An ``async def`` tool runs in a new event loop; inside a running loop
        (an async test), await :meth:`call_async` instead.
        """
        run = self._start(tool, args, session, session_id, metadata, host_tools, timeout_ms, stream=False)
        if run.tool.is_async:
            return _run_to_end(self._async(run, cancel_after=0 if cancelled else None), tool)
        return self._sync(run, cancel_after=0 if cancelled else None)

    def stream(
        self,
        tool: str,
        args: Mapping[str, Any] | bytes | None = None,
        *,
        session: Mapping[str, Any] | None = None,
        session_id: str = DEFAULT_SESSION_ID,
        metadata: Mapping[str, str] | None = None,
        host_tools: Mapping[str, HostTool] | None = None,
        timeout_ms: int = 0,
        cancel_after: int | None = None,
    ) -> ToolResult:
        """Run a streaming tool to its end, like the host's ``executeStream``; the chunks are in ``chunks``.

        ``cancel_after``: the host cancels the call once it received that many
        chunks (0: as soon as it started). The worker then pulls no more: the
        generator is closed at its ``yield`` (``finally`` blocks run) and the
        result says ``cancelled``. The other options are those of :meth:`call`.
        """
        run = self._start(tool, args, session, session_id, metadata, host_tools, timeout_ms, stream=True)
        if run.tool.is_async:
            return _run_to_end(self._async(run, cancel_after), tool)
        return self._sync(run, cancel_after)

    async def call_async(
        self,
        tool: str,
        args: Mapping[str, Any] | bytes | None = None,
        *,
        session: Mapping[str, Any] | None = None,
        session_id: str = DEFAULT_SESSION_ID,
        metadata: Mapping[str, str] | None = None,
        host_tools: Mapping[str, HostTool] | None = None,
        timeout_ms: int = 0,
        cancelled: bool = False,
    ) -> ToolResult:
        """:meth:`call` for async tests: async tools run on the running loop, sync ones in a thread (as in a worker)."""
        run = self._start(tool, args, session, session_id, metadata, host_tools, timeout_ms, stream=False)
        return await self._on_loop(run, 0 if cancelled else None)

    async def stream_async(
        self,
        tool: str,
        args: Mapping[str, Any] | bytes | None = None,
        *,
        session: Mapping[str, Any] | None = None,
        session_id: str = DEFAULT_SESSION_ID,
        metadata: Mapping[str, str] | None = None,
        host_tools: Mapping[str, HostTool] | None = None,
        timeout_ms: int = 0,
        cancel_after: int | None = None,
    ) -> ToolResult:
        """:meth:`stream` for async tests."""
        run = self._start(tool, args, session, session_id, metadata, host_tools, timeout_ms, stream=True)
        return await self._on_loop(run, cancel_after)

    # ------------------------------------------------------------ the call, as the worker makes it

    def _start(
        self,
        name: str,
        args: Mapping[str, Any] | bytes | None,
        session: Mapping[str, Any] | None,
        session_id: str,
        metadata: Mapping[str, str] | None,
        host_tools: Mapping[str, HostTool] | None,
        timeout_ms: int,
        *,
        stream: bool,
    ) -> _Run:
        definition = self.tools.get(name)
        if definition is None:
            raise ToolError(TOOL_NOT_FOUND, f"no tool named {name!r}", {"tool": name, "available": sorted(self.tools)})
        if definition.streaming and not stream:
            # The worker's words (executeStream is the host's call); here that is stream().
            raise ToolError(INVALID_ARGUMENTS, f"{name} is a streaming tool: call it with executeStream")
        # The host sends the arguments (arrays and bytes as blobs) and every session value as
        # JSON: encoded here as they would be, so the tool sees exactly what it would in a worker.
        payload = encode_payload(args if isinstance(args, bytes) else dict(args or {}), "arguments")
        snapshot = None
        if session is not None:
            snapshot = {key: encode_json(value, f"session value {key!r}") for key, value in session.items()}
        ctx = CallContext(
            request_id=next(self._request_ids),
            tool=definition.name,
            worker_id=self.worker_id,
            session_id=session_id if snapshot is not None else "",
            session=snapshot,
            metadata=metadata,
            timeout_ms=timeout_ms,
        )
        if not definition.inline:  # an inline tool runs on the worker's loop and cannot call the host
            ctx.connect_host(_fake_host(host_tools or {}), 0)
        held = {key: decode_json(data, f"session value {key!r}") for key, data in (snapshot or {}).items()}
        return _Run(definition, getattr(self.adapter, definition.attribute), payload, ctx, held, stream)

    def _sync(self, run: _Run, cancel_after: int | None) -> ToolResult:
        """A sync tool start to finish, as the worker's pool thread runs it."""
        ctx = run.ctx
        chunks: list[Any] = []
        if cancel_after == 0:
            ctx.cancelled.set()
        try:
            value = run.function(**run.tool.bind(decode_args(run.args), ctx))
            if run.tool.kind is ToolKind.SYNC_STREAM:
                iterator = iter(value)
                value = None
                try:
                    while not _cancel_due(ctx, chunks, cancel_after):
                        try:
                            item = next(iterator)
                        except StopIteration as stop:
                            value = stop.value
                            break
                        chunks.append(_received(encode_payload(item, f"chunk {len(chunks)}")))
                finally:
                    close = getattr(iterator, "close", None)
                    if close is not None:
                        close()
            return self._outcome(run, value, chunks)
        except BaseException:
            if ctx.cancelled.is_set():  # whatever a cancelled call raised, its answer is Cancelled
                return run.cancelled(chunks)
            raise

    async def _async(self, run: _Run, cancel_after: int | None) -> ToolResult:
        """An async tool as the worker's task runs it; cancelling is cancelling that task."""
        ctx = run.ctx
        chunks: list[Any] = []

        async def body() -> Any:
            kwargs = run.tool.bind(decode_args(run.args), ctx)
            if run.tool.kind is not ToolKind.ASYNC_STREAM:
                return await run.function(**kwargs)
            stream = run.function(**kwargs)
            try:
                while not _cancel_due(ctx, chunks, cancel_after):
                    try:
                        item = await stream.__anext__()
                    except StopAsyncIteration:
                        break
                    chunks.append(_received(encode_payload(item, f"chunk {len(chunks)}")))
            finally:
                await stream.aclose()
            return None

        task = asyncio.ensure_future(body())
        if cancel_after == 0 and run.tool.kind is ToolKind.ASYNC:
            await asyncio.sleep(0)  # the tool starts and runs up to its first await; there the cancel reaches it
            ctx.cancelled.set()
            task.cancel()
        try:
            value = await task
        except asyncio.CancelledError:
            if task.cancelled() and ctx.cancelled.is_set():
                return run.cancelled(chunks)
            raise  # the test itself was cancelled
        except BaseException:
            if ctx.cancelled.is_set():
                return run.cancelled(chunks)
            raise
        return self._outcome(run, value, chunks)

    async def _on_loop(self, run: _Run, cancel_after: int | None) -> ToolResult:
        if run.tool.is_async:
            return await self._async(run, cancel_after)
        return await asyncio.to_thread(self._sync, run, cancel_after)

    def _outcome(self, run: _Run, value: Any, chunks: list[Any]) -> ToolResult:
        """The worker's reply to a call that returned, as the host takes it."""
        if run.ctx.cancelled.is_set():
            return run.cancelled(chunks)
        received = _received(encode_payload(value))
        if run.stream and not run.tool.streaming:  # the host streams a plain result as its only chunk
            chunks = [] if received is None else [received]
        delta = run.ctx.session_delta
        if delta is None:
            return ToolResult(received, chunks, run.session, None, False)
        assigned = {key: decode_json(data, f"session value {key!r}") for key, data in delta.set.items()}
        session = {key: value for key, value in run.session.items() if key not in delta.deleted}
        session.update(assigned)
        return ToolResult(received, chunks, session, SessionDelta(assigned, list(delta.deleted)), False)


def _cancel_due(ctx: CallContext, chunks: list[Any], cancel_after: int | None) -> bool:
    """Whether the worker stops pulling: the host cancelled once it had ``cancel_after`` chunks."""
    if cancel_after is not None and len(chunks) >= cancel_after:
        ctx.cancelled.set()
    return ctx.cancelled.is_set()


def _received(payload: pb.Payload) -> Any:
    """A payload as the host decodes it: bytes for binary, else the JSON value with its arrays and bytes."""
    return decode_payload(payload, "the reply")


def _fake_host(fakes: Mapping[str, HostTool]) -> Callable[[CallContext, int], HostLink]:
    """The worker's HostLink, with a host that answers each host call at once from ``fakes``."""
    specs = {name: pb.ToolSpec(name=name) for name in fakes}
    call_ids = itertools.count(1)

    def link_for(ctx: CallContext, depth: int) -> HostLink:
        def send(message: pb.WorkerMessage) -> None:
            link.resolve(_answer(fakes, message.host_call))

        link = HostLink(
            send,
            lambda: next(call_ids),
            parent_id=ctx.request_id,
            depth=depth,
            session_id=ctx.session_id,
            cancelled=ctx.cancelled,
            tools=specs,
        )
        return link

    return link_for


def _answer(fakes: Mapping[str, HostTool], call: pb.HostCall) -> pb.HostCallReply:
    """The host's reply to one host call (the link only sends calls of tools in ``fakes``)."""
    try:
        value = fakes[call.tool](decode_payload(call.args, f"arguments of host tool {call.tool!r}"))
    except HostToolError as exc:
        error = pb.ErrorInfo(code=exc.code, message=exc.message)
        if exc.details:
            error.details_json = encode_json(exc.details, "host error details")
        return pb.HostCallReply(call_id=call.call_id, error=error)
    except Exception as exc:  # what the host makes of a throwing host tool
        details = encode_json({"tool": call.tool, "hostType": type(exc).__name__}, "host error details")
        error = pb.ErrorInfo(code=HOST_EXCEPTION, message=str(exc), details_json=details)
        return pb.HostCallReply(call_id=call.call_id, error=error)
    return pb.HostCallReply(call_id=call.call_id, value=encode_payload(value, f"the result of host tool {call.tool!r}"))


def _run_to_end(coroutine: Coroutine[Any, Any, T], tool: str) -> T:
    """Run an async tool's call in a new event loop; refuse inside a running one (it would deadlock)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    coroutine.close()
    raise RuntimeError(
        f"{tool} is an async tool and an event loop is running here: await call_async() or stream_async() instead"
    )

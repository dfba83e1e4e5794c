"""The WorkerBridge gRPC service: many calls multiplexed on one Connect stream.

Design (chosen by benchmark against unary gRPC and raw pipes): gRPC charges per
message, so every reply that is ready at the same moment goes out in one
``WorkerFrame``. A reader task turns each ``CallRequest`` into a running call;
finished replies (and stream chunks) are appended to one outbox, and a single
writer, the handler's async generator, sends the whole outbox as one frame.

Frames are bounded in bytes: gRPC refuses to send a message above the limit
(``--max-message-bytes``, which the host matches to its own channel) and the
stream dies with every call on it. Each reply enters the outbox with its
share of a frame (its tag, length varint and body); when the outbox fits, it
is still one frame, otherwise the writer sends as many consecutive frames as
it takes, in order. The share of a result or chunk is an upper bound taken
from its payload's length (its JSON or binary body and its blobs), so the
hot path never serializes a reply twice (only a reply whose bound exceeds
the limit is measured exactly). A blob that travels through shared memory
(shared_memory.py) counts by its slot descriptor, not its data. A reply
that no frame could carry on its own is never queued: that call alone
answers ``PAYLOAD_TOO_LARGE`` (a stream ends at the oversized chunk, its
generator closed; a host call that is too large raises ``HostToolError`` in
the tool), so no message size can break the stream.

Async tools run as tasks on the event loop. Sync tools run in a thread pool
so the loop (and health checks) stay responsive; a finished sync call does
*not* wake the loop per call (``run_in_executor`` does, and costs 3-4x): it
appends to the outbox and schedules one wake-up only when none is pending.

Every call ends with exactly one terminal message (CallResult, CallError or
Cancelled), even when its failure cannot be described (then the CallError is
``INTERNAL`` and the worker log has the original). Once the host cancelled a
call, its terminal is ``Cancelled``, sent only when the tool has really
stopped: the host reuses the slot then.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hmac
import itertools
import logging
import os
import platform
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import grpc

from ._version import __version__
from .adapter import Adapter, ToolDefinition, ToolKind
from .context import CallContext, Cancellation
from .errors import (
    INTERNAL,
    INVALID_ARGUMENTS,
    TOOL_NOT_FOUND,
    ToolError,
    error_info,
    payload_too_large,
    qualified_type_name,
)
from .host_tools import HostLink, HostToolError
from .schema import ParamSpec
from .serialization import decode_args, encode_json, fill_payload
from .shared_memory import SharedRegions
from .wire import pb, pb_grpc

TOKEN_METADATA_KEY: Final = "x-snakepit-token"
# Chunks of one streaming call the host's consumer has not taken yet (queued,
# in flight, or buffered by the host). The host returns credit (StreamCredit)
# as its consumer takes chunks, so a generator faster than the slowest reader
# blocks instead of filling memory on either side.
STREAM_WINDOW: Final = 64
# The smallest message limit a worker accepts: the PAYLOAD_TOO_LARGE error that
# replaces an oversized reply (a few hundred bytes) must always fit.
MIN_MESSAGE_BYTES: Final = 4096

# Upper bounds of what a result or chunk adds to its payload's bytes in a frame,
# so that the hot path never serializes a reply just to learn its size. Each
# field costs a 1-byte tag; a varint is at most 10 bytes (uint64), a length
# at most 5 (< 32 GiB): the frame's element (1+5), WorkerMessage.id (1+10),
# the kind (1+5), its value (1+5), the payload's body (1+5); a chunk adds seq (1+10).
RESULT_OVERHEAD: Final = 35
CHUNK_OVERHEAD: Final = RESULT_OVERHEAD + 11
# A session delta is one more length-delimited field of the result.
DELTA_OVERHEAD: Final = 6

# A reply and its share of a frame (exact, or an upper bound).
Reply = tuple[pb.WorkerMessage, int]

log = logging.getLogger("snakepit.bridge")


def frame_share(message: pb.WorkerMessage) -> int:
    """The exact bytes ``message`` adds to a WorkerFrame: tag, length varint, body.

    (protobuf's own varint sizer is internal API, hence the one-liner.)
    """
    size = message.ByteSize()
    return 1 + max(1, (size.bit_length() + 6) // 7) + size


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):
    """Reject every RPC, health included, that lacks the per-run secret.

    The socket (or loopback port) may be reachable by other local users; only
    the host that spawned the worker knows the token.
    """

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the auth token must not be empty")
        self._token = token.encode("utf-8")

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or self._authorized(handler_call_details.invocation_metadata):
            return handler
        return _denying_handler(handler)

    def _authorized(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> bool:
        for key, value in metadata or ():
            if key == TOKEN_METADATA_KEY:
                given = value if isinstance(value, bytes) else value.encode("utf-8")
                return hmac.compare_digest(given, self._token)
        return False


async def _abort_unauthenticated(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"missing or invalid {TOKEN_METADATA_KEY} metadata")


def _denying_handler(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    # The replacement must have the same streaming shape as the real method.
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(_abort_unauthenticated)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(_abort_unauthenticated)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(_abort_unauthenticated)
    return grpc.unary_unary_rpc_method_handler(_abort_unauthenticated)


class _ChunkWindow:
    """Credit for one streaming call: at most STREAM_WINDOW chunks the host's consumer has not taken."""

    __slots__ = ("_cond", "_space", "_untaken")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._untaken = 0
        self._space: asyncio.Event | None = None

    def acquire(self, cancelled: Cancellation) -> bool:
        """Block a pool thread until a chunk may be queued; False once cancelled."""
        with self._cond:
            self._cond.wait_for(lambda: self._untaken < STREAM_WINDOW or cancelled.is_set())
            if cancelled.is_set():
                return False
            self._untaken += 1
            return True

    async def acquire_async(self) -> None:
        """The event-loop flavour; cancellation arrives as CancelledError."""
        while self._untaken >= STREAM_WINDOW:
            self._space = asyncio.Event()
            await self._space.wait()
        with self._cond:
            self._untaken += 1

    def release(self, count: int) -> None:
        """The host's StreamCredit: its consumer took ``count`` more chunks."""
        with self._cond:
            # Never below zero: credit beyond what was sent must not widen the window.
            self._untaken = max(0, self._untaken - count)
            self._cond.notify_all()
        if self._space is not None:
            self._space.set()

    def interrupt(self) -> None:
        """Wake a blocked pool thread so it sees the cancellation."""
        with self._cond:
            self._cond.notify_all()


class _Call:
    """One call in flight on a connection."""

    __slots__ = ("args", "cancel_reason", "ctx", "function", "future", "id", "seq", "task", "tool", "window")

    def __init__(
        self, request_id: int, tool: ToolDefinition, function: Callable[..., Any], args: pb.Payload, ctx: CallContext
    ) -> None:
        self.id = request_id
        self.tool = tool
        self.function = function
        self.args = args
        self.ctx = ctx
        self.window = _ChunkWindow() if tool.streaming else None
        self.future: concurrent.futures.Future[None] | None = None
        self.task: asyncio.Task[Reply] | None = None
        self.seq = 0
        self.cancel_reason = ""


class _Connection:
    """One Connect stream: its calls in flight, its outbox and its single writer."""

    def __init__(self, bridge: WorkerBridge, loop: asyncio.AbstractEventLoop) -> None:
        self._bridge = bridge
        self._loop = loop
        self._loop_thread = threading.get_ident()
        # No frame may exceed this: gRPC refuses to send a larger message and
        # the stream, with every call on it, dies.
        self._limit = bridge.max_message_bytes
        # _lock guards _outbox (with the frame share of each message and their
        # sum), _wake_pending, and removal from _calls together
        # with the terminal message that causes it, so the writer can never see
        # "no calls, nothing queued" in between.
        self._lock = threading.Lock()
        self._outbox: list[pb.WorkerMessage] = []
        self._shares: list[int] = []
        self._outbox_bytes = 0
        self._wake_pending = False
        self._wakeup = asyncio.Event()
        self._calls: dict[int, _Call] = {}
        self._closing = False
        # Host tools this host exposes (replaced whole when the host sends them).
        self._host_tools: dict[str, pb.ToolSpec] = {}
        self._host_call_ids = itertools.count(1)
        self._inert_context = CallContext(request_id=0, tool="", worker_id=bridge.worker_id)
        # The shared-memory regions (None: everything inline). Slots of the out region are this
        # stream's until the host releases them on it, or the stream ends.
        shared = bridge.shared
        self._shared_in = shared.incoming if shared is not None else None
        self._shared_out = shared.connection() if shared is not None else None

    def _host_link(self, ctx: CallContext, depth: int) -> HostLink:
        """The way back to the host for one call, made when its tool first reaches for it."""
        return HostLink(
            self._send_host_call,
            lambda: next(self._host_call_ids),
            parent_id=ctx.request_id,
            depth=depth,
            session_id=ctx.session_id,
            cancelled=ctx.cancelled,
            tools=self._host_tools,
            shared=self._shared_out,
            incoming=self._shared_in,
        )

    # ------------------------------------------------------------ writer side

    async def frames(self) -> AsyncIterator[pb.WorkerFrame]:
        """Everything queued since the last frame, as one frame when it fits (as many as
        it takes otherwise); ends once closing and idle."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            with self._lock:
                messages, self._outbox = self._outbox, []
                shares, self._shares = self._shares, []
                total, self._outbox_bytes = self._outbox_bytes, 0
                finished = self._closing and not self._calls
            if messages:
                if total <= self._limit:
                    yield pb.WorkerFrame(messages=messages)
                else:
                    for part in split_frames(messages, shares, self._limit):
                        yield pb.WorkerFrame(messages=part)
            if finished:
                return

    def _post(self, message: pb.WorkerMessage, share: int, *, finished: _Call | None = None) -> None:
        """Queue a reply from any thread; the loop is woken at most once per burst.

        ``share`` is the message's frame share (see frame_share), at most the limit.
        """
        with self._lock:
            self._outbox.append(message)
            self._shares.append(share)
            self._outbox_bytes += share
            if finished is not None:
                del self._calls[finished.id]
            if threading.get_ident() == self._loop_thread:
                self._wakeup.set()
                return
            if self._wake_pending:
                return
            self._wake_pending = True
        # RuntimeError: the loop is closed, the process is exiting and nobody reads.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._wake)

    def _send_host_call(self, message: pb.WorkerMessage) -> None:
        """HostLink's way out; a host call no frame can carry fails in the tool instead (HostLink frees its slots)."""
        share = frame_share(message)
        if share > self._limit:
            subject = f"the call of host tool {message.host_call.tool!r}"
            refusal = self._refuse(message.id, payload_too_large("host call", share, self._limit, subject))
            raise HostToolError(refusal.code, refusal.message, refusal.details)
        self._post(message, share)

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
        self._wakeup.set()

    # ------------------------------------------------------------ reader side

    async def read(self, requests: AsyncIterator[pb.HostFrame]) -> None:
        """Start and cancel calls as frames arrive; cancel everything when the stream ends."""
        reason = "the host closed the stream"
        try:
            async for frame in requests:
                for message in frame.messages:
                    kind = message.WhichOneof("kind")
                    if kind == "call":
                        self._start(message.id, message.call)
                    elif kind == "cancel":
                        self.cancel(message.id, message.cancel.reason)
                    elif kind == "host_reply":
                        self._host_reply(message.id, message.host_reply)
                    elif kind == "credit":
                        self._credit(message.id, message.credit.chunks)
                    elif kind == "host_tools":
                        self._host_tools = {spec.name: spec for spec in message.host_tools.tools}
                    elif kind == "release":
                        self._release(message.release.offsets)
        except Exception as exc:  # any failure of the stream ends it the same way
            reason = f"the stream broke: {exc}"
            log.warning("Connect stream broke, cancelling its calls", exc_info=True)
        self.cancel_all(reason)
        self.close_when_idle()

    def _release(self, offsets: Iterable[int]) -> None:
        if self._shared_out is not None:
            self._shared_out.release(offsets)
        else:
            log.debug("ignoring a shared-memory release: this worker has no shared memory")

    def close_shared(self) -> None:
        """The stream ended: the host releases nothing more on it, so its slots are free again."""
        if self._shared_out is not None:
            self._shared_out.close()

    def close_when_idle(self) -> None:
        """End the response stream as soon as no call is in flight (used for draining too)."""
        with self._lock:
            self._closing = True
        self._wakeup.set()

    def _start(self, request_id: int, request: pb.CallRequest) -> None:
        if request_id == 0 or request_id in self._calls:
            problem = "a duplicate" if request_id else "the reserved"
            log.error("ignoring a call with %s request id %d", problem, request_id)
            return
        entry = self._bridge.tools.get(request.tool)
        if entry is None:
            error = ToolError(
                TOOL_NOT_FOUND,
                f"no tool named {request.tool!r}",
                {"tool": request.tool, "available": sorted(self._bridge.tools)},
            )
            self._post(*self._error_reply(request_id, "an unknown tool", error))
            return
        tool, function = entry
        if tool.streaming and not request.stream:
            error = ToolError(INVALID_ARGUMENTS, f"{tool.name} is a streaming tool: call it with executeStream")
            self._post(*self._error_reply(request_id, f"tool {tool.name!r}", error))
            return
        if tool.inline and tool.context_param is None:
            # Nothing can reach this call's context (no parameter, no cancel while it
            # runs): it shares an inert one instead of building one per call.
            ctx = self._inert_context
        else:
            ctx = CallContext(
                request_id=request_id,
                tool=tool.name,
                worker_id=self._bridge.worker_id,
                session_id=request.session_id,
                session=request.session.values if request.HasField("session") else None,
                metadata=request.metadata,
                timeout_ms=request.timeout_ms,
            )
        call = _Call(request_id, tool, function, request.args, ctx)
        if tool.inline:
            # Start to finish on the loop thread, so no cancel and no host reply can
            # reach it meanwhile: it is not registered, and has no way back to the
            # host (waiting for one would block the loop that reads it).
            self._post(*self._execute_sync(call))
            return
        ctx.connect_host(self._host_link, request.host_call_depth)
        with self._lock:
            self._calls[request_id] = call
        if tool.is_async:
            call.task = self._loop.create_task(self._run_async(call))
            call.task.add_done_callback(lambda task: self._async_done(call, task))
        else:
            call.future = self._bridge.submit(self._run_sync, call)

    def _host_reply(self, request_id: int, reply: pb.HostCallReply) -> None:
        call = self._calls.get(request_id)
        link = call.ctx.opened_host if call is not None else None
        if link is not None:
            link.resolve(reply)

    def _credit(self, request_id: int, chunks: int) -> None:
        call = self._calls.get(request_id)
        if call is not None and call.window is not None:
            call.window.release(chunks)

    def cancel(self, request_id: int, reason: str) -> None:
        """Cancel a call in flight; unknown or finished ids are ignored."""
        call = self._calls.get(request_id)
        if call is not None:
            self._cancel(call, reason or "cancelled by the host")

    def cancel_all(self, reason: str) -> None:
        with self._lock:
            calls = list(self._calls.values())
        for call in calls:
            self._cancel(call, reason)

    def _cancel(self, call: _Call, reason: str) -> None:
        if call.ctx.cancelled.is_set():
            return
        call.cancel_reason = reason
        call.ctx.cancelled.set()
        link = call.ctx.opened_host
        if link is not None:
            link.fail_all(f"the call was cancelled: {reason}")
        if call.window is not None:
            call.window.interrupt()
        if call.task is not None:
            call.task.cancel()
        elif call.future is not None and call.future.cancel():
            # Still queued behind other calls: it will never run, so answer now.
            self._post(*self._cancelled(call), finished=call)

    # ------------------------------------------------------------ running tools

    def _run_sync(self, call: _Call) -> None:
        """Pool thread: run a sync tool (or drain a sync stream) and post its terminal."""
        self._post(*self._execute_sync(call), finished=call)

    def _execute_sync(self, call: _Call) -> Reply:
        try:
            kwargs = call.tool.bind(decode_args(call.args, self._shared_in), call.ctx)
            value = call.function(**kwargs)
            if call.tool.kind is ToolKind.SYNC_STREAM:
                value = self._pump(call, value)
            return self._outcome(call, value)
        except BaseException as exc:  # SystemExit from a tool is a tool failure too
            return self._failure(call, exc)

    def _pump(self, call: _Call, iterable: Iterable[Any]) -> Any:
        """Pull chunks while credit lasts and nobody cancelled; close the generator in this thread."""
        iterator = iter(iterable)
        assert call.window is not None
        try:
            while call.window.acquire(call.ctx.cancelled):
                try:
                    item = next(iterator)
                except StopIteration as stop:
                    return stop.value
                self._post_chunk(call, item)
            return None
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    async def _run_async(self, call: _Call) -> Reply:
        """Loop task: run an async tool; CancelledError propagates (see _async_done)."""
        try:
            kwargs = call.tool.bind(decode_args(call.args, self._shared_in), call.ctx)
            if call.tool.kind is ToolKind.ASYNC_STREAM:
                await self._pump_async(call, call.function(**kwargs))
                return self._outcome(call, None)
            return self._outcome(call, await call.function(**kwargs))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # SystemExit from a tool is a tool failure too
            return self._failure(call, exc)

    async def _pump_async(self, call: _Call, stream: AsyncIterator[Any]) -> None:
        assert call.window is not None
        try:
            while True:
                await call.window.acquire_async()
                try:
                    item = await stream.__anext__()
                except StopAsyncIteration:
                    return
                self._post_chunk(call, item)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    def _async_done(self, call: _Call, task: asyncio.Task[Reply]) -> None:
        # A task cancelled before its first step never ran its try block, so the
        # terminal is decided here, not inside the coroutine.
        message, share = self._cancelled(call) if task.cancelled() else task.result()
        self._post(message, share, finished=call)

    def _post_chunk(self, call: _Call, item: Any) -> None:
        message = pb.WorkerMessage(id=call.id)
        message.chunk.seq = call.seq
        share = CHUNK_OVERHEAD + fill_payload(message.chunk.value, item, f"chunk {call.seq}", self._shared_out)
        if share > self._limit:  # the bound is not good enough here: ask for the truth
            share = frame_share(message)
            if share > self._limit:
                self._unsent(message.chunk.value)
                # Raised in the pump: the generator is closed and the call ends with it.
                subject = f"stream chunk {call.seq} of tool {call.tool.name!r}"
                raise self._refuse(call.id, payload_too_large("stream chunk", share, self._limit, subject))
        call.seq += 1
        self._post(message, share)

    def _outcome(self, call: _Call, value: Any) -> Reply:
        if call.ctx.cancelled.is_set():
            return self._cancelled(call)
        message = pb.WorkerMessage(id=call.id)
        try:
            value_bytes = fill_payload(message.result.value, value, shared=self._shared_out)
        except ToolError as exc:
            return self._failure(call, exc)
        share = RESULT_OVERHEAD + value_bytes
        delta = call.ctx.session_delta
        delta_bytes = 0
        if delta is not None:
            message.result.session.CopyFrom(delta)
            delta_bytes = delta.ByteSize()
            share += DELTA_OVERHEAD + delta_bytes
        if share > self._limit:  # the bound is not good enough here: ask for the truth
            share = frame_share(message)
            if share > self._limit:
                self._unsent(message.result.value)
                subject = f"the result of tool {call.tool.name!r}"
                if delta_bytes:
                    subject += f" with its {delta_bytes}-byte session delta"
                what = "session delta" if delta_bytes > value_bytes else "result"  # the larger part
                return self._failure(call, self._refuse(call.id, payload_too_large(what, share, self._limit, subject)))
        return message, share

    def _unsent(self, payload: pb.Payload) -> None:
        """A payload that will not be sent gives its shared-memory slots back."""
        if self._shared_out is not None:
            self._shared_out.free_payload(payload)

    def _failure(self, call: _Call, exc: BaseException) -> Reply:
        if call.ctx.cancelled.is_set():
            return self._cancelled(call)
        return self._error_reply(call.id, f"tool {call.tool.name!r}", exc)

    def _error_reply(self, request_id: int, tool: str, exc: BaseException) -> Reply:
        info = _describe(request_id, tool, exc)
        log.debug("%s failed: %s", tool, info.message, extra={"request_id": request_id, "code": info.code})
        message = pb.WorkerMessage(id=request_id, error=pb.CallError(error=info))
        share = frame_share(message)
        if share > self._limit:
            refusal = self._refuse(request_id, payload_too_large("error", share, self._limit, f"the error of {tool}"))
            message = pb.WorkerMessage(id=request_id, error=pb.CallError(error=error_info(refusal)))
            share = frame_share(message)
        return message, share

    @staticmethod
    def _refuse(request_id: int, refusal: ToolError) -> ToolError:
        log.warning("%s: answering %s instead", refusal.message, refusal.code, extra={"request_id": request_id})
        return refusal

    @staticmethod
    def _cancelled(call: _Call) -> Reply:
        message = pb.WorkerMessage(id=call.id, cancelled=pb.Cancelled(reason=call.cancel_reason))
        return message, frame_share(message)


def _describe(request_id: int, tool: str, exc: BaseException) -> pb.ErrorInfo:
    """error_info, or a last-resort INTERNAL: the call gets its terminal whatever ``exc`` is."""
    try:
        return error_info(exc)
    except BaseException as problem:  # user code ran (__str__, details): anything can come out
        log.error(
            "%s failed with %s, and describing that failure failed too (%s); answering %s",
            tool,
            qualified_type_name(exc),
            qualified_type_name(problem),
            INTERNAL,
            exc_info=exc,
            extra={"request_id": request_id},
        )
        return pb.ErrorInfo(
            code=INTERNAL,
            message=f"{tool} failed with {qualified_type_name(exc)}, which could not be described "
            f"({qualified_type_name(problem)}); the worker log has its traceback",
        )


def split_frames(messages: list[pb.WorkerMessage], shares: list[int], limit: int) -> Iterator[list[pb.WorkerMessage]]:
    """Consecutive runs of ``messages``, each as long as fits in ``limit`` bytes.

    Order is kept (a call's chunks, then its terminal), and no run is empty.
    """
    start = total = 0
    for index, share in enumerate(shares):
        if total + share > limit and index > start:
            yield messages[start:index]
            start, total = index, 0
        total += share
    yield messages[start:]


class WorkerBridge(pb_grpc.WorkerBridgeServicer):
    """Serves one adapter instance to the host."""

    def __init__(
        self,
        adapter: Adapter,
        adapter_spec: str,
        tools: Mapping[str, ToolDefinition],
        worker_id: str,
        capacity: int,
        *,
        max_message_bytes: int,
        shared: SharedRegions | None = None,
    ) -> None:
        self.worker_id = worker_id
        # The shared-memory regions (--shm-in/--shm-out); None sends everything inline.
        self.shared = shared
        # The largest gRPC message the server sends (its max_send_message_length).
        self.max_message_bytes = max_message_bytes
        self.tools: dict[str, tuple[ToolDefinition, Callable[..., Any]]] = {
            name: (definition, getattr(adapter, definition.attribute)) for name, definition in tools.items()
        }
        # Sync tools run here, `capacity` at a time; calls the host pipelines beyond
        # that (its pipelineDepth) wait in this executor's queue, cancellable there.
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=capacity, thread_name_prefix="tool")
        self._running: set[concurrent.futures.Future[None]] = set()
        self._running_lock = threading.Lock()
        self._connections: set[_Connection] = set()
        self._draining = False
        self._drained = asyncio.Event()
        self._description = pb.DescribeResponse(
            worker_id=worker_id,
            pid=os.getpid(),
            adapter=adapter_spec,
            tools=[_tool_spec(definition) for definition in tools.values()],
            capacity=capacity,
            python_version=platform.python_version(),
            bridge_version=__version__,
        )

    async def Connect(
        self, request_iterator: AsyncIterator[pb.HostFrame], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.WorkerFrame]:
        connection = _Connection(self, asyncio.get_running_loop())
        self._connections.add(connection)
        if self._draining:
            connection.close_when_idle()
        reader = asyncio.create_task(connection.read(request_iterator))
        try:
            async for frame in connection.frames():
                yield frame
        finally:
            reader.cancel()
            connection.cancel_all("the stream ended")
            connection.close_shared()
            self._connections.discard(connection)
            if self._draining and not self._connections:
                self._drained.set()

    async def Describe(
        self, request: pb.DescribeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.DescribeResponse:
        return self._description

    def submit(self, fn: Callable[[_Call], None], call: _Call) -> concurrent.futures.Future[None]:
        """Run a sync call in the pool, remembering it until it finished (see wait_for_tools)."""
        future = self._executor.submit(fn, call)
        with self._running_lock:
            self._running.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: concurrent.futures.Future[None]) -> None:
        with self._running_lock:
            self._running.discard(future)

    async def drain(self, timeout: float) -> bool:
        """Graceful shutdown: end every Connect stream once its calls finished, refusing nothing.

        Returns False if streams were still busy after ``timeout`` seconds.
        """
        self._draining = True
        for connection in list(self._connections):
            connection.close_when_idle()
        if not self._connections:
            return True
        try:
            await asyncio.wait_for(self._drained.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def wait_for_tools(self, timeout: float) -> bool:
        """Wait for sync tools still running in the pool; False if some ignore cancellation."""
        with self._running_lock:
            running = list(self._running)
        _, not_done = concurrent.futures.wait(running, timeout=max(0.0, timeout))
        self._executor.shutdown(wait=False, cancel_futures=True)
        return not not_done


def _tool_spec(tool: ToolDefinition) -> pb.ToolSpec:
    return pb.ToolSpec(
        name=tool.name,
        description=tool.description,
        parameters=[_tool_parameter(spec) for spec in tool.params.values()],
        streaming=tool.streaming,
        idempotent=tool.idempotent,
    )


def _tool_parameter(spec: ParamSpec) -> pb.ToolParameter:
    parameter = pb.ToolParameter(
        name=spec.name,
        type=spec.type.name,
        required=spec.required,
        description=spec.description,
        items=spec.type.items.name if spec.type.items is not None else "",
        nullable=spec.type.nullable,
        dtype=spec.type.dtype,
        ndim=spec.type.ndim,
    )
    if not spec.required:
        # A default JSON cannot carry (an object, a set) is simply not shown to the host.
        with contextlib.suppress(ToolError):
            parameter.default_json = encode_json(spec.default, f"default of {spec.name}")
    return parameter

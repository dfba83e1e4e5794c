"""Test helpers: a real worker subprocess and a multiplexing Connect client.

Everything here is bounded: reads of the ready fd and every wait for a reply
have deadlines, and processes are always killed on teardown.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc

from snakepit_bridge.wire import pb, pb_grpc

SHOWCASE = "snakepit_bridge.examples.showcase:ShowcaseAdapter"
TOKEN = "test-token-0123456789"
READY_TIMEOUT = 20.0
REPLY_TIMEOUT = 10.0
TERMINALS = ("result", "error", "cancelled")


def auth(token: str = TOKEN) -> tuple[tuple[str, str], ...]:
    return (("x-snakepit-token", token),)


class WorkerProcess:
    """``python -m snakepit_bridge.worker`` on a short unix socket path, ready fd on a pipe."""

    def __init__(
        self,
        *args: str,
        adapter: str = SHOWCASE,
        address: str | None = None,
        env: Mapping[str, str] | None = None,
        token: str | None = TOKEN,
        extra_path: str | None = None,
    ) -> None:
        # pytest's tmp_path can exceed the 107-byte unix socket limit.
        self.dir = Path(tempfile.mkdtemp(prefix="sp-", dir="/tmp"))
        self.socket = self.dir / "w.sock"
        self.address = address or f"unix://{self.socket}"
        self.stdout_path = self.dir / "stdout.log"
        self.stderr_path = self.dir / "stderr.log"
        self._args = ["--adapter", adapter, "--address", self.address, *args]
        self._env = dict(os.environ if env is None else env)
        self._env.pop("SNAKEPIT_AUTH_TOKEN", None)
        if token is not None:
            self._env["SNAKEPIT_AUTH_TOKEN"] = token
        if extra_path is not None:
            self._env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra_path, self._env.get("PYTHONPATH")]))
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_line = ""

    def start(self) -> str:
        """Spawn and return the line written to the ready fd (READY ... or ERROR ...)."""
        read_fd, write_fd = os.pipe()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "snakepit_bridge.worker", *self._args, "--ready-fd", str(write_fd)],
                pass_fds=(write_fd,),
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                env=self._env,
            )
        os.close(write_fd)
        try:
            self.ready_line = _read_line(read_fd, READY_TIMEOUT)
        finally:
            os.close(read_fd)
        return self.ready_line

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        """Kill whatever is left; safe to call twice."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def serving(worker: WorkerProcess) -> Iterator[WorkerProcess]:
    """Fixture body: start ``worker``, insist it is ready, yield it, always stop it."""
    try:
        line = worker.start()
        assert line.startswith("READY "), f"worker did not start: {line!r}\n{worker.stderr()}"
        yield worker
    finally:
        worker.stop()


def _read_line(fd: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no ready line within {timeout}s (got {data!r})")
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    return data.decode()


def call_request(
    tool: str,
    args: Mapping[str, Any] | None = None,
    *,
    binary: bytes | None = None,
    raw_json: bytes | None = None,
    stream: bool = False,
    session_id: str = "",
    session: Mapping[str, Any] | None = None,
    timeout_ms: int = 0,
    blobs: Sequence[pb.Blob] = (),
) -> pb.CallRequest:
    """A call as the host sends it; ``blobs`` go beside the JSON ``args`` (each where args has a null)."""
    request = pb.CallRequest(tool=tool, stream=stream, session_id=session_id, timeout_ms=timeout_ms)
    if binary is not None:
        request.args.binary = binary
    elif raw_json is not None:
        request.args.json = raw_json
    elif args is not None:
        request.args.json = json.dumps(args).encode()
    request.args.blobs.extend(blobs)
    if session is not None:
        request.session.values.update({key: json.dumps(value).encode() for key, value in session.items()})
    return request


def value_of(payload: pb.Payload) -> Any:
    """Decode a reply payload: JSON as Python, binary as bytes."""
    if payload.WhichOneof("body") == "binary":
        return payload.binary
    return json.loads(payload.json)


def blob(path: Sequence[str | int], dtype: str, shape: Sequence[int], data: bytes) -> pb.Blob:
    """A blob as the host sends it: ``path`` of keys and indices, outermost first."""
    segments = [pb.PathSegment(index=s) if isinstance(s, int) else pb.PathSegment(key=s) for s in path]
    return pb.Blob(path=segments, dtype=dtype, shape=shape, data=data)


def blob_paths(payload: pb.Payload) -> list[list[str | int]]:
    """Each blob's path in ``payload`` as the wire has it."""
    return [[getattr(s, s.WhichOneof("segment") or "key") for s in b.path] for b in payload.blobs]


class BridgeClient:
    """A test double of the host: one Connect stream, calls matched by id.

    Like the host's push-based streams it returns credit for every chunk as it
    arrives, unless ``auto_credit`` is False (then the test sends ``credit``).
    """

    def __init__(self, channel: grpc.aio.Channel, token: str = TOKEN, *, auto_credit: bool = True) -> None:
        self.stub = pb_grpc.WorkerBridgeStub(channel)
        self._token = token
        self._auto_credit = auto_credit
        self._outgoing: asyncio.Queue[pb.HostFrame | None] = asyncio.Queue()
        self._replies: dict[int, asyncio.Queue[pb.WorkerMessage]] = {}
        self._next_id = 1
        self.frames_received = 0
        self.messages_received = 0
        self.frame_sizes: list[int] = []  # serialized bytes of each WorkerFrame, in order
        self._reader: asyncio.Task[None] | None = None
        self.stream_error: BaseException | None = None
        self.ended = asyncio.Event()

    async def __aenter__(self) -> BridgeClient:
        self._call = self.stub.Connect(self._frames(), metadata=auth(self._token))
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close_requests()
        if self._reader is not None:
            self._reader.cancel()
        self._call.cancel()

    async def _frames(self) -> AsyncIterator[pb.HostFrame]:
        while (frame := await self._outgoing.get()) is not None:
            yield frame

    async def _read(self) -> None:
        try:
            async for frame in self._call:
                self.frames_received += 1
                self.frame_sizes.append(frame.ByteSize())
                for message in frame.messages:
                    self.messages_received += 1
                    if self._auto_credit and message.WhichOneof("kind") == "chunk":
                        self.credit(message.id, 1)
                    self._queue(message.id).put_nowait(message)
        except grpc.aio.AioRpcError as exc:
            self.stream_error = exc
        finally:
            self.ended.set()

    def _queue(self, request_id: int) -> asyncio.Queue[pb.WorkerMessage]:
        return self._replies.setdefault(request_id, asyncio.Queue())

    @property
    def next_id(self) -> int:
        """The request id the next call will get (reply sizes depend on it)."""
        return self._next_id

    def send(self, *requests: pb.CallRequest) -> list[int]:
        """Send calls in ONE frame (as the host coalesces a tick); returns their ids."""
        ids = []
        messages = []
        for request in requests:
            ids.append(self._next_id)
            messages.append(pb.HostMessage(id=self._next_id, call=request))
            self._next_id += 1
        self._outgoing.put_nowait(pb.HostFrame(messages=messages))
        return ids

    def send_host_tools(self, *names: str) -> None:
        """Offer host tools to Python, as the host does first thing on a stream."""
        tools = pb.HostTools(tools=[pb.ToolSpec(name=name) for name in names])
        self._outgoing.put_nowait(pb.HostFrame(messages=[pb.HostMessage(id=0, host_tools=tools)]))

    def reply_host(self, request_id: int, call_id: int, value: pb.Payload) -> None:
        """Answer a host call the worker made for call ``request_id`` with ``value``."""
        reply = pb.HostCallReply(call_id=call_id, value=value)
        self._outgoing.put_nowait(pb.HostFrame(messages=[pb.HostMessage(id=request_id, host_reply=reply)]))

    def release(self, *offsets: int) -> None:
        """Give slots of the worker's shared-memory region back, as the host does once it read them."""
        release = pb.SharedRelease(offsets=offsets)
        self._outgoing.put_nowait(pb.HostFrame(messages=[pb.HostMessage(id=0, release=release)]))

    def close_requests(self) -> None:
        """Half-close: the host will send nothing more."""
        self._outgoing.put_nowait(None)

    def cancel(self, request_id: int, reason: str = "test cancel") -> None:
        self._outgoing.put_nowait(
            pb.HostFrame(messages=[pb.HostMessage(id=request_id, cancel=pb.CancelRequest(reason=reason))])
        )

    def credit(self, request_id: int, chunks: int) -> None:
        """Tell the worker the consumer took ``chunks`` more chunks of a stream."""
        self._outgoing.put_nowait(
            pb.HostFrame(messages=[pb.HostMessage(id=request_id, credit=pb.StreamCredit(chunks=chunks))])
        )

    async def next_message(self, request_id: int, timeout: float = REPLY_TIMEOUT) -> pb.WorkerMessage:
        return await asyncio.wait_for(self._queue(request_id).get(), timeout)

    async def collect(self, request_id: int, timeout: float = REPLY_TIMEOUT) -> list[pb.WorkerMessage]:
        """All messages of one call up to and including its terminal."""
        messages = []
        async with asyncio.timeout(timeout):
            while True:
                message = await self._queue(request_id).get()
                messages.append(message)
                if message.WhichOneof("kind") in TERMINALS:
                    return messages

    async def call(self, request: pb.CallRequest, timeout: float = REPLY_TIMEOUT) -> pb.WorkerMessage:
        """Send one call and return its terminal message."""
        (request_id,) = self.send(request)
        return (await self.collect(request_id, timeout))[-1]

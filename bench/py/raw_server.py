"""Raw grpc.aio worker for the baselines (no Snakepit code).

Serves ``RawBench`` (bench/proto/bench.proto) on a Unix socket or 127.0.0.1:

* ``Call``: unary, the tool runs inline in the handler.
* ``Batch``: one bidi stream multiplexing calls by id. A reader task takes each
  RequestBatch apart; every reply that is ready when the writer wakes goes out
  in one ReplyBatch. ``--dispatch`` chooses how a call runs:
  ``task`` (one asyncio task per call: the design the transport study measured fastest,
  used as "the transport's limit"), ``inline`` (in the reader, no concurrency)
  or ``threads`` (a ThreadPoolExecutor whose finished replies wake the loop at
  most once per burst: the shape Snakepit uses for sync tools).
* ``Count``: a plain server stream, one gRPC message per ``{"i": i}`` chunk.

Prints ``READY <address>`` on stdout once serving. Exits on SIGTERM/SIGINT and
when stdin reaches EOF (the bench died), so it never outlives the harness.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator

sys.path.insert(0, os.environ["BENCH_GEN_DIR"])

import grpc

import bench_pb2 as pb
import bench_pb2_grpc as pb_grpc
from bench_tools import call_json, encode


def _reply(request: pb.Request) -> pb.Reply:
    ok, result, error = call_json(request.tool, request.args_json)
    return pb.Reply(id=request.id, ok=ok, result_json=result, error=error)


class _Connection:
    """One Batch stream: a reader, an outbox and a single writer."""

    def __init__(self, dispatch: str, executor: concurrent.futures.Executor | None) -> None:
        self._dispatch = dispatch
        self._executor = executor
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._outbox: list[pb.Reply] = []
        self._wake_pending = False
        self._wakeup = asyncio.Event()
        self._ended = False

    async def read(self, requests: AsyncIterator[pb.RequestBatch]) -> None:
        try:
            async for batch in requests:
                for request in batch.requests:
                    if self._dispatch == "task":
                        self._loop.create_task(self._run_task(request))
                    elif self._dispatch == "threads":
                        assert self._executor is not None
                        self._executor.submit(self._run_thread, request)
                    else:
                        self._post_local(_reply(request))
        finally:
            self._ended = True
            self._wakeup.set()

    async def _run_task(self, request: pb.Request) -> None:
        self._post_local(_reply(request))

    def _post_local(self, reply: pb.Reply) -> None:
        with self._lock:
            self._outbox.append(reply)
        self._wakeup.set()

    def _run_thread(self, request: pb.Request) -> None:
        reply = _reply(request)
        with self._lock:
            self._outbox.append(reply)
            if self._wake_pending:
                return
            self._wake_pending = True
        self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
        self._wakeup.set()

    async def frames(self) -> AsyncIterator[pb.ReplyBatch]:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            with self._lock:
                replies, self._outbox = self._outbox, []
            if replies:
                yield pb.ReplyBatch(replies=replies)
            elif self._ended:
                return


# The generated modules are absent when mypy runs (see pyproject.toml), so the base class is Any here.
class RawBench(pb_grpc.RawBenchServicer):  # type: ignore[misc]
    def __init__(self, dispatch: str, threads: int) -> None:
        self._dispatch = dispatch
        self._executor = (
            concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tool")
            if dispatch == "threads"
            else None
        )

    async def Call(self, request: pb.Request, context: grpc.aio.ServicerContext[pb.Request, pb.Reply]) -> pb.Reply:
        return _reply(request)

    async def Batch(
        self,
        request_iterator: AsyncIterator[pb.RequestBatch],
        context: grpc.aio.ServicerContext[pb.RequestBatch, pb.ReplyBatch],
    ) -> AsyncIterator[pb.ReplyBatch]:
        connection = _Connection(self._dispatch, self._executor)
        reader = asyncio.create_task(connection.read(request_iterator))
        try:
            async for frame in connection.frames():
                yield frame
        finally:
            reader.cancel()

    async def Count(
        self, request: pb.CountRequest, context: grpc.aio.ServicerContext[pb.CountRequest, pb.Chunk]
    ) -> AsyncIterator[pb.Chunk]:
        for i in range(request.n):
            yield pb.Chunk(json=encode({"i": i}), seq=i)


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    loop.call_soon_threadsafe(stop.set)


async def serve(address: str, dispatch: str, threads: int) -> None:
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ]
    )
    pb_grpc.add_RawBenchServicer_to_server(RawBench(dispatch, threads), server)
    port = server.add_insecure_port(address)
    await server.start()
    bound = address if address.startswith("unix:") else f"{address.rsplit(':', 1)[0]}:{port}"
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    threading.Thread(target=_watch_stdin, args=(loop, stop), daemon=True).start()
    sys.stdout.write(f"READY {bound}\n")
    sys.stdout.flush()
    await stop.wait()
    await server.stop(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True, help="unix:///abs/path.sock or 127.0.0.1:0")
    parser.add_argument("--dispatch", choices=["task", "inline", "threads"], default="task")
    parser.add_argument("--threads", type=int, default=8)
    ns = parser.parse_args()
    asyncio.run(serve(ns.address, ns.dispatch, ns.threads))
    os._exit(0)  # do not wait for idle tool threads


if __name__ == "__main__":
    main()

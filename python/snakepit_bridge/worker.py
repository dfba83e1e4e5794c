"""The worker process: ``python -m snakepit_bridge.worker --adapter pkg.mod:Class ...``.

Contract with the host that spawns it:

* Environment: ``SNAKEPIT_AUTH_TOKEN`` (required, non-empty) is the secret every
  RPC must carry in ``x-snakepit-token`` metadata. The worker removes it from
  its environment as soon as it read it, so processes a tool starts never
  inherit it.
* Ready fd (``--ready-fd``, default 3, a pipe from the host): exactly one line,
  ``READY <bound address>\\n`` once the server accepts calls, or
  ``ERROR {"type", "message", "traceback"}\\n`` (one-line JSON) if anything
  failed before that; then the fd is closed.
* stdout is left to the user's ``print()`` (line-buffered, logged by the host
  as plain lines); stderr carries JSON log lines (see snakepit_bridge.logging).
* stdin: the host keeps it open as a pipe; EOF means the host died, and the
  worker shuts down. A worker started with a tty or /dev/null as stdin does
  not watch it.
* Exit codes: 0 after a graceful shutdown (SIGTERM, SIGINT, stdin EOF, parent
  death), 3 when startup failed (the reason is on the ready fd); anything else
  is a crash (1: an uncaught Python exception, negative: killed by a signal,
  or whatever a tool passed to ``os._exit``).

Shared memory (``--shm-in PATH --shm-out PATH --shm-threshold BYTES
--shm-region-bytes BYTES``, all four or none): blobs of at least the threshold
travel through two region files the host created (see shared_memory.py); the
out region never holds more than region-bytes of live slots. Without the
flags everything travels inline. The mappings are closed at exit; the host
removes the files.

Memory limit (``--memory-limit-mb``): ``RLIMIT_AS`` caps *virtual* address
space, not resident memory, and is applied before the adapter is imported.
Thread stacks, glibc malloc arenas (up to 64 MiB reserved per thread; set
``MALLOC_ARENA_MAX=2`` to shrink that) and libraries that reserve big regions
up front (BLAS, CUDA, JAX) count against it, so set it well above the
expected resident size. Exceeding it raises MemoryError in the tool, which is
answered as RESOURCE_EXHAUSTED, rather than getting the process OOM-killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import io
import json
import logging
import os
import resource
import signal
import stat
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from .adapter import Adapter, discover_tools, load_adapter
from .errors import qualified_type_name
from .logging import LEVEL_NAMES, configure_logging
from .server import MIN_MESSAGE_BYTES, TokenAuthInterceptor, WorkerBridge
from .shared_memory import SharedMemoryOptions, SharedRegions
from .wire import SERVICE_NAME, pb_grpc

TOKEN_ENV: str = "SNAKEPIT_AUTH_TOKEN"
EXIT_OK = 0
EXIT_STARTUP_FAILED = 3
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
UNIX_PATH_MAX = 107  # sun_path is 108 bytes including the terminating NUL
PARENT_CHECK_SECONDS = 1.0

log = logging.getLogger("snakepit.worker")


class StartupError(Exception):
    """A problem found before serving, described for the person running the host."""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors reach the ready fd too."""

    def error(self, message: str) -> NoReturn:
        raise StartupError(f"{self.prog}: {message}")


@dataclass(frozen=True)
class Options:
    adapter: str
    address: str
    worker_id: str
    capacity: int
    ready_fd: int
    log_level: str
    memory_limit_mb: int | None
    shutdown_grace_ms: int
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    shared_memory: SharedMemoryOptions | None = None


# The shared-memory flags, which come all together or not at all.
_SHM_FLAGS = ("--shm-in", "--shm-out", "--shm-threshold", "--shm-region-bytes")


def parse_args(argv: list[str]) -> Options:
    parser = _ArgumentParser(prog="snakepit_bridge.worker", description="Serve a Snakepit adapter over gRPC.")
    parser.add_argument("--adapter", required=True, help="the adapter class, as package.module:Class")
    parser.add_argument("--address", default="127.0.0.1:0", help="unix:///abs/path.sock or host:port (0: any port)")
    parser.add_argument("--worker-id", default=f"worker-{os.getpid()}")
    parser.add_argument("--capacity", type=_positive_int, default=1, help="calls run at once (above 1: thread_safe)")
    parser.add_argument("--ready-fd", type=int, default=3, help="fd to write READY/ERROR to (default 3)")
    parser.add_argument("--log-level", choices=LEVEL_NAMES, default="info")
    parser.add_argument("--memory-limit-mb", type=_positive_int, default=None, help="RLIMIT_AS in MiB (see docs)")
    parser.add_argument("--shutdown-grace-ms", type=_non_negative_int, default=5000)
    parser.add_argument(
        "--max-message-bytes",
        type=_message_limit,
        default=DEFAULT_MAX_MESSAGE_BYTES,
        help=f"largest gRPC message either way (at least {MIN_MESSAGE_BYTES}); the host sets it to match its own "
        "channel, and a reply above it fails its call with PAYLOAD_TOO_LARGE",
    )
    shm = parser.add_argument_group("shared memory (all four or none; without them every blob travels inline)")
    shm.add_argument("--shm-in", metavar="PATH", help="the host's region file (host -> worker), mapped read-only")
    shm.add_argument("--shm-out", metavar="PATH", help="the worker's region file (worker -> host), grown as needed")
    shm.add_argument(
        "--shm-threshold",
        metavar="BYTES",
        type=_positive_int,
        help="blobs of at least this size go through the regions",
    )
    shm.add_argument(
        "--shm-region-bytes", metavar="BYTES", type=_positive_int, help="cap of the live slots in the out region"
    )
    ns = parser.parse_args(argv)
    shm_values = (ns.shm_in, ns.shm_out, ns.shm_threshold, ns.shm_region_bytes)
    given = [flag for flag, value in zip(_SHM_FLAGS, shm_values, strict=True) if value is not None]
    if given and len(given) != len(_SHM_FLAGS):
        missing = ", ".join(flag for flag in _SHM_FLAGS if flag not in given)
        parser.error(f"{', '.join(_SHM_FLAGS)} go together: {', '.join(given)} given without {missing}")
    return Options(
        adapter=ns.adapter,
        address=ns.address,
        worker_id=ns.worker_id,
        capacity=ns.capacity,
        ready_fd=ns.ready_fd,
        log_level=ns.log_level,
        memory_limit_mb=ns.memory_limit_mb,
        shutdown_grace_ms=ns.shutdown_grace_ms,
        max_message_bytes=ns.max_message_bytes,
        shared_memory=SharedMemoryOptions(*shm_values) if given else None,
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _message_limit(text: str) -> int:
    value = int(text)
    if value < MIN_MESSAGE_BYTES:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_MESSAGE_BYTES}, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the worker; returns the exit code (see the module docstring)."""
    args = sys.argv[1:] if argv is None else argv
    ready = ReadyChannel(_ready_fd_from(args))
    try:
        options = parse_args(args)
        configure_logging(options.log_level, options.worker_id)
        # print() output must reach the host promptly, not when an 8 KiB buffer fills.
        if isinstance(sys.stdout, io.TextIOWrapper):
            sys.stdout.reconfigure(line_buffering=True)
        # Popped, not read: a tool's subprocesses inherit os.environ.
        token = os.environ.pop(TOKEN_ENV, "")
        if not token:
            raise StartupError(f"{TOKEN_ENV} is not set: the worker refuses to serve without an auth token")
        unix_path = _unix_socket_path(options.address)
        if options.memory_limit_mb is not None:
            _limit_memory(options.memory_limit_mb)
        watch_host(stdin_is_pipe=_stdin_is_pipe())
        adapter_cls = load_adapter(options.adapter)
        tools = discover_tools(adapter_cls)
        if not tools:
            raise StartupError(f"{options.adapter} has no @tool methods")
        if options.capacity > 1 and not adapter_cls.thread_safe:
            raise StartupError(
                f"{options.adapter} is not thread_safe, so it cannot run with --capacity {options.capacity}; "
                "use --capacity 1 or set thread_safe = True on the class"
            )
        shared = _open_shared_memory(options.shared_memory)
        try:
            adapter = adapter_cls()
            adapter.setup()
        except BaseException:
            if shared is not None:
                shared.close()
            raise
    except Exception as exc:  # every startup failure is reported the same way
        ready.fail(exc)
        return EXIT_STARTUP_FAILED
    bridge = WorkerBridge(
        adapter,
        options.adapter,
        tools,
        options.worker_id,
        options.capacity,
        max_message_bytes=options.max_message_bytes,
        shared=shared,
    )
    try:
        code, tools_stopped = asyncio.run(_serve(options, token, bridge, ready))
    finally:
        if unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(unix_path)
        if shared is not None:
            shared.close()  # the mappings only: the host removes the files
    _teardown(adapter)
    if not tools_stopped:
        # A pool thread stuck in a tool would keep the interpreter from exiting.
        log.error("tools still running after the shutdown grace ignore cancellation; exiting without them")
        logging.shutdown()
        sys.stdout.flush()
        os._exit(code)
    return code


async def _serve(options: Options, token: str, bridge: WorkerBridge, ready: ReadyChannel) -> tuple[int, bool]:
    """Serve until SIGTERM/SIGINT, then drain within the grace period.

    Returns the exit code and whether every sync tool stopped in time.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _request_stop, stop, signum)
    server = grpc.aio.server(
        interceptors=[TokenAuthInterceptor(token)],
        options=[
            ("grpc.so_reuseport", 0),  # a second worker on the same port must fail, not share it
            ("grpc.max_receive_message_length", options.max_message_bytes),
            ("grpc.max_send_message_length", options.max_message_bytes),
        ],
    )
    pb_grpc.add_WorkerBridgeServicer_to_server(bridge, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        bound = _bind(server, options.address)
        await server.start()
        for service in ("", SERVICE_NAME):
            await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    except Exception as exc:  # reported on the ready fd like any startup failure
        ready.fail(exc)
        await server.stop(None)
        return EXIT_STARTUP_FAILED, True
    ready.succeed(bound)
    log.info("worker ready", extra={"address": bound, "adapter": options.adapter, "capacity": options.capacity})
    await stop.wait()
    # Health turns NOT_SERVING while running calls finish (the server still
    # answers it); only then, or when the grace is over, does the server stop
    # and cancel what is left.
    deadline = loop.time() + options.shutdown_grace_ms / 1000
    log.info("shutting down", extra={"grace_ms": options.shutdown_grace_ms})
    await health_servicer.enter_graceful_shutdown()
    if not await bridge.drain(deadline - loop.time()):
        log.warning("calls still running at the end of the shutdown grace are cancelled")
    await server.stop(max(0.0, deadline - loop.time()))
    tools_stopped = await asyncio.to_thread(bridge.wait_for_tools, deadline - loop.time())
    return EXIT_OK, tools_stopped


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    if stop.is_set():
        log.info("already shutting down", extra={"signal": signal.Signals(signum).name})
        return
    log.info("shutdown requested", extra={"signal": signal.Signals(signum).name})
    stop.set()


def _bind(server: grpc.aio.Server, address: str) -> str:
    """Bind and return the address the host must dial (the real port when 0 was asked)."""
    port = server.add_insecure_port(address)  # raises RuntimeError when it cannot bind
    if address.startswith("unix:"):
        return address
    host = address.rsplit(":", 1)[0]
    return f"{host}:{port}"


def _unix_socket_path(address: str) -> str | None:
    """The socket file of a unix: address (to remove at exit), checked up front."""
    if not address.startswith("unix:"):
        if ":" not in address:
            raise StartupError(f"--address must be unix:///abs/path.sock or host:port, got {address!r}")
        return None
    path = address.removeprefix("unix://") if address.startswith("unix://") else address.removeprefix("unix:")
    if not os.path.isabs(path):
        raise StartupError(f"unix socket path must be absolute, got {address!r}")
    if len(os.fsencode(path)) > UNIX_PATH_MAX:
        raise StartupError(f"unix socket path is longer than {UNIX_PATH_MAX} bytes: {path}")
    return path


def _open_shared_memory(options: SharedMemoryOptions | None) -> SharedRegions | None:
    """Both region files, which the host created before spawning the worker."""
    if options is None:
        return None
    try:
        regions = SharedRegions(options)
    except OSError as exc:
        raise StartupError(f"cannot open the shared-memory region {exc.filename}: {exc.strerror}") from None
    log.info(
        "shared memory on",
        extra={
            "threshold": options.threshold,
            "region_bytes": options.region_bytes,
            "dir": os.path.dirname(options.out_path),
        },
    )
    return regions


def _limit_memory(megabytes: int) -> None:
    limit = megabytes * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY and limit > hard:
        raise StartupError(f"--memory-limit-mb {megabytes} exceeds the hard RLIMIT_AS of {hard // (1024 * 1024)} MiB")
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    log.info("address space limited", extra={"memory_limit_mb": megabytes})


def _teardown(adapter: Adapter) -> None:
    try:
        adapter.teardown()
    except Exception:  # a failing teardown must not turn a clean exit into a crash
        log.exception("adapter teardown failed")


# ---------------------------------------------------------------- ready fd


class ReadyChannel:
    """The one-line startup report to the host on the ready fd."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.sent = False
        # Children the adapter spawns must not hold the pipe open.
        with contextlib.suppress(OSError):
            os.set_inheritable(fd, False)

    def succeed(self, address: str) -> None:
        self._send(f"READY {address}\n")

    def fail(self, exc: BaseException) -> None:
        report = {
            "type": qualified_type_name(exc),
            "message": str(exc),
            "traceback": "".join(traceback.format_exception(exc)),
        }
        log.error("worker failed to start: %s", report["message"])
        self._send(f"ERROR {json.dumps(report)}\n")

    def _send(self, line: str) -> None:
        if self.sent:
            return
        self.sent = True
        data = line.encode("utf-8")
        try:
            while data:
                data = data[os.write(self._fd, data) :]
            if self._fd > 2:  # by hand, --ready-fd 2 reports on stderr, which must stay open
                os.close(self._fd)
        except OSError as exc:
            # No pipe (run by hand): the line still shows up in the log.
            log.warning("cannot write to the ready fd %d: %s; the line was: %s", self._fd, exc, line.rstrip())


def _ready_fd_from(argv: list[str]) -> int:
    """--ready-fd before full parsing, so even a usage error is reported on it."""
    for index, arg in enumerate(argv):
        value = arg.removeprefix("--ready-fd=") if arg.startswith("--ready-fd=") else None
        if arg == "--ready-fd" and index + 1 < len(argv):
            value = argv[index + 1]
        if value is not None:
            with contextlib.suppress(ValueError):
                return int(value)
    return 3


# ---------------------------------------------------------------- host death


def watch_host(*, stdin_is_pipe: bool) -> None:
    """Turn every sign that the host died into SIGTERM to ourselves.

    Raising SIGTERM (instead of exiting) reuses whichever handler is active:
    before the server runs it ends the process at once, afterwards it starts
    the graceful shutdown.
    """
    parent = os.getppid()
    _set_parent_death_signal()
    if stdin_is_pipe:
        threading.Thread(target=_watch_stdin, name="stdin-watch", daemon=True).start()
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _stdin_is_pipe() -> bool:
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _watch_stdin() -> None:
    try:
        while os.read(0, 65536):
            pass  # the host has nothing to say on stdin; only EOF matters
    except OSError:
        pass
    log.warning("stdin closed: the host is gone, shutting down")
    os.kill(os.getpid(), signal.SIGTERM)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    log.warning("the parent process %d is gone, shutting down", parent)
    os.kill(os.getpid(), signal.SIGTERM)


def _set_parent_death_signal() -> None:
    """Linux: have the kernel send SIGTERM when the parent dies (best effort)."""
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0) != 0:
            log.debug("prctl(PR_SET_PDEATHSIG) failed", extra={"errno": ctypes.get_errno()})
    except (OSError, AttributeError):
        log.debug("prctl is unavailable; relying on the stdin and parent-pid watches")


if __name__ == "__main__":
    # Run the package's module, not this __main__ copy, so that exception types
    # reported on the ready fd carry their real names (snakepit_bridge.worker.X).
    from snakepit_bridge.worker import main as package_main

    sys.exit(package_main())

"""The worker process contract: ready fd, exit codes, signals, host death, limits."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import textwrap
from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import BridgeClient, WorkerProcess, auth, call_request, value_of

Spawn = Callable[..., WorkerProcess]


def startup_error(worker: WorkerProcess) -> dict[str, str]:
    assert worker.ready_line.startswith("ERROR "), worker.ready_line
    assert worker.ready_line.endswith("\n") and worker.ready_line.count("\n") == 1
    report: dict[str, str] = json.loads(worker.ready_line.removeprefix("ERROR "))
    assert set(report) == {"type", "message", "traceback"}
    assert worker.wait() == 3
    return report


def test_ready_line_names_the_socket(spawn: Spawn) -> None:
    worker = spawn()
    assert worker.ready_line == f"READY {worker.address}\n"
    assert worker.socket.exists()


def test_tcp_port_zero_reports_the_bound_port(spawn: Spawn) -> None:
    host, port = spawn(address="127.0.0.1:0").ready_line.removeprefix("READY ").strip().rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0


def test_missing_adapter_module(spawn: Spawn) -> None:
    report = startup_error(spawn(adapter="no_such_package.adapters:Thing"))
    assert report["type"] == "snakepit_bridge.adapter.AdapterLoadError"
    assert "'no_such_package.adapters' not found" in report["message"]
    assert "ModuleNotFoundError" in report["traceback"]


def test_adapter_that_fails_to_import(spawn: Spawn, tmp_path: Path) -> None:
    (tmp_path / "broken_adapter.py").write_text("import not_installed_dependency\n")
    report = startup_error(spawn(adapter="broken_adapter:Broken", extra_path=str(tmp_path)))
    assert "No module named 'not_installed_dependency'" in report["message"]


def test_missing_attribute_and_wrong_type(spawn: Spawn) -> None:
    missing = startup_error(spawn(adapter="snakepit_bridge.examples.showcase:Nope"))
    assert "has no attribute 'Nope'" in missing["message"]
    assert "ShowcaseAdapter" in missing["message"]
    wrong = startup_error(spawn(adapter="snakepit_bridge.examples.showcase:MIB"))
    assert "is not an Adapter subclass" in wrong["message"]


def test_setup_failure_is_reported(spawn: Spawn, tmp_path: Path) -> None:
    (tmp_path / "failing_setup.py").write_text(
        textwrap.dedent("""
        from snakepit_bridge import Adapter, tool

        class Failing(Adapter):
            def setup(self) -> None:
                raise FileNotFoundError("model.bin is missing")

            @tool
            def ping(self) -> str:
                return "pong"
    """)
    )
    report = startup_error(spawn(adapter="failing_setup:Failing", extra_path=str(tmp_path)))
    assert report["type"] == "FileNotFoundError"
    assert report["message"] == "model.bin is missing"


def test_capacity_needs_thread_safe(spawn: Spawn, tmp_path: Path) -> None:
    (tmp_path / "single.py").write_text(
        textwrap.dedent("""
        from snakepit_bridge import Adapter, tool

        class Single(Adapter):
            @tool
            def ping(self) -> str:
                return "pong"
    """)
    )
    report = startup_error(spawn("--capacity", "2", adapter="single:Single", extra_path=str(tmp_path)))
    assert "not thread_safe" in report["message"]


def test_missing_token_and_bad_usage(spawn: Spawn) -> None:
    no_token = startup_error(spawn(token=None))
    assert no_token["type"] == "snakepit_bridge.worker.StartupError"
    assert "SNAKEPIT_AUTH_TOKEN" in no_token["message"]
    usage = startup_error(spawn("--capacity", "0"))
    assert "--capacity" in usage["message"]


async def test_the_token_does_not_reach_tools_or_their_children(spawn: Spawn) -> None:
    worker = spawn(adapter="sample_adapters:EnvAdapter", extra_path=str(Path(__file__).parent / "adapters"))
    async with grpc.aio.insecure_channel(worker.address) as channel, BridgeClient(channel) as client:
        token = value_of((await client.call(call_request("sees", {"name": "SNAKEPIT_AUTH_TOKEN"}))).result.value)
        assert token == {"worker": False, "child": "<unset>"}
        # The check itself works: a variable that was not removed is seen by both.
        path = value_of((await client.call(call_request("sees", {"name": "PATH"}))).result.value)
        assert path["worker"] is True and path["child"] != "<unset>"


def test_message_limit_has_a_floor(spawn: Spawn) -> None:
    # Below it, even the PAYLOAD_TOO_LARGE answer to an oversized reply might not fit.
    report = startup_error(spawn("--max-message-bytes", "100"))
    assert "--max-message-bytes" in report["message"] and "at least 4096" in report["message"]


def test_sigterm_exits_cleanly_and_removes_socket(spawn: Spawn) -> None:
    worker = spawn()
    assert worker.socket.exists()
    os.kill(worker.pid, signal.SIGTERM)
    assert worker.wait() == 0
    assert not worker.socket.exists()
    assert '"msg": "shutting down"' in worker.stderr()


async def test_sigterm_lets_running_calls_finish(spawn: Spawn) -> None:
    worker = spawn("--capacity", "2")
    async with grpc.aio.insecure_channel(worker.address) as channel, BridgeClient(channel) as client:
        request_id, ping = client.send(call_request("sleep", {"ms": 300}), call_request("ping"))
        await client.next_message(ping)  # same frame, so the sleep is running now
        os.kill(worker.pid, signal.SIGTERM)
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(50):  # the signal is handled asynchronously
            check = await health.Check(health_pb2.HealthCheckRequest(service=""), metadata=auth())
            if check.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                break
            await asyncio.sleep(0.005)
        assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING
        reply = await client.next_message(request_id)
        assert value_of(reply.result.value) == 300  # finished, not cancelled
        await client.ended.wait()
        assert client.stream_error is None  # the worker closed the stream cleanly
    assert worker.wait() == 0


def test_stdin_eof_means_host_gone(spawn: Spawn) -> None:
    worker = spawn()
    assert worker.proc is not None and worker.proc.stdin is not None
    worker.proc.stdin.close()
    assert worker.wait() == 0
    assert "stdin closed" in worker.stderr()


async def test_stuck_tool_does_not_block_shutdown(spawn: Spawn) -> None:
    worker = spawn("--shutdown-grace-ms", "300", "--capacity", "2")
    async with grpc.aio.insecure_channel(worker.address) as channel, BridgeClient(channel) as client:
        _, ping = client.send(call_request("spin"), call_request("ping"))
        await client.next_message(ping)  # same frame, so spin is running now
        os.kill(worker.pid, signal.SIGTERM)
        assert worker.wait() == 0  # within wait()'s bound, although spin never stops
    assert "ignore cancellation" in worker.stderr()


async def test_crash_breaks_the_stream(spawn: Spawn) -> None:
    worker = spawn()
    async with grpc.aio.insecure_channel(worker.address) as channel, BridgeClient(channel) as client:
        client.send(call_request("crash", {"exit_code": 7}))
        await client.ended.wait()
        assert isinstance(client.stream_error, grpc.aio.AioRpcError)
        assert client.stream_error.code() == grpc.StatusCode.UNAVAILABLE
    assert worker.wait() == 7


async def test_memory_limit_turns_into_resource_exhausted(spawn: Spawn) -> None:
    worker = spawn("--memory-limit-mb", "1200")
    async with grpc.aio.insecure_channel(worker.address) as channel, BridgeClient(channel) as client:
        small = await client.call(call_request("allocate", {"mb": 16}))
        assert value_of(small.result.value) == 16
        huge = await client.call(call_request("allocate", {"mb": 2048}))
        assert huge.error.error.code == "RESOURCE_EXHAUSTED"
        assert huge.error.error.python.type == "MemoryError"
        assert value_of((await client.call(call_request("ping"))).result.value) == "pong"


def test_port_in_use_is_a_startup_error(spawn: Spawn) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        report = startup_error(spawn(address=f"127.0.0.1:{port}"))
    assert str(port) in report["message"]

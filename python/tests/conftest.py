"""Fixtures: real worker processes (always killed afterwards) and clients for them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import pytest
from helpers import BridgeClient, WorkerProcess, serving


@pytest.fixture
def spawn() -> Iterator[Callable[..., WorkerProcess]]:
    """Start workers with custom arguments; every one is killed at teardown."""
    started: list[WorkerProcess] = []

    def start(*args: str, **kwargs: Any) -> WorkerProcess:
        worker = WorkerProcess(*args, **kwargs)
        started.append(worker)
        worker.start()
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="module")
def showcase() -> Iterator[WorkerProcess]:
    """One ShowcaseAdapter worker shared by a module's tests (startup is the slow part)."""
    yield from serving(WorkerProcess("--capacity", "4", "--worker-id", "showcase-1"))


@pytest.fixture
async def channel(showcase: WorkerProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(showcase.address) as chan:
        yield chan


@pytest.fixture
async def client(channel: grpc.aio.Channel) -> AsyncIterator[BridgeClient]:
    async with BridgeClient(channel) as bridge:
        yield bridge

"""Snakepit bridge: serve Python tools to a NestJS host over gRPC.

Write an :class:`Adapter` with ``@tool`` methods and start it with
``python -m snakepit_bridge.worker --adapter package.module:Class``; unit-test
its tools without a worker through :mod:`snakepit_bridge.testing`.
"""

from ._version import __version__
from .adapter import Adapter, AdapterLoadError, tool
from .context import CallContext, Cancellation, SessionView
from .errors import ToolError
from .host_tools import HostToolCancelled, HostToolError, HostToolTimeout

__all__ = [
    "Adapter",
    "AdapterLoadError",
    "CallContext",
    "Cancellation",
    "HostToolCancelled",
    "HostToolError",
    "HostToolTimeout",
    "SessionView",
    "ToolError",
    "__version__",
    "tool",
]

"""What a tool knows about the call it is serving.

A tool asks for it by declaring a parameter annotated ``CallContext`` (or
named ``ctx``); the bridge injects it, and it never appears in the schema.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

from .host_tools import HostLink, HostToolError, wait_async, wait_sync
from .serialization import decode_json, encode_json
from .wire import pb

TOOL_LOGGER = "snakepit.tool"


class SessionView(MutableMapping[str, Any]):
    """The session as a dict, recording what the tool changes.

    Reads come from the snapshot the host sent with the call (decoded on first
    access); assignments and deletions are recorded and returned to the host as
    one ``SessionDelta`` that it applies atomically when the call succeeds.
    A value is captured (and checked against the JSON rule) when it is
    *assigned*: mutating an object read from the session, or one already
    assigned, records nothing, so assign again after changing it.
    """

    __slots__ = ("_decoded", "_deleted", "_session_id", "_set", "_snapshot")

    def __init__(self, session_id: str, snapshot: Mapping[str, bytes]) -> None:
        self._session_id = session_id
        self._snapshot = snapshot
        self._decoded: dict[str, Any] = {}
        self._set: dict[str, bytes] = {}
        self._deleted: dict[str, None] = {}  # a dict keeps deletions in order

    def __getitem__(self, key: str) -> Any:
        if key in self._decoded:
            return self._decoded[key]
        if key in self._deleted or key not in self._snapshot:
            raise KeyError(key)
        value = decode_json(self._snapshot[key], f"session value {key!r}")
        self._decoded[key] = value
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self._require_session()
        if not isinstance(key, str):
            raise TypeError(f"session keys must be str, not {type(key).__name__}")
        self._set[key] = encode_json(value, f"session value {key!r}")
        self._decoded[key] = value
        self._deleted.pop(key, None)

    def __delitem__(self, key: str) -> None:
        self._require_session()
        if key not in self:
            raise KeyError(key)
        self._set.pop(key, None)
        self._decoded.pop(key, None)
        self._deleted[key] = None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key not in self._deleted and (key in self._set or key in self._snapshot)

    def __iter__(self) -> Iterator[str]:
        yield from self._set
        for key in self._snapshot:
            if key not in self._set and key not in self._deleted:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"SessionView({self._session_id!r}, keys={list(self)!r})"

    @property
    def changed(self) -> bool:
        return bool(self._set or self._deleted)

    def delta(self) -> pb.SessionDelta:
        """The recorded changes as the wire message."""
        return pb.SessionDelta(set=self._set, deleted=list(self._deleted))

    def _require_session(self) -> None:
        if not self._session_id:
            raise RuntimeError(
                "this call has no session, so session changes would be lost; call the tool within a session"
            )


class Cancellation:
    """Set once the host cancels the call; the ``threading.Event`` API a tool uses.

    A ``threading.Event`` (a ``Condition`` and two locks) per call was the
    largest allocation of a trivial call, and most calls never wait on it: the
    flag is a plain attribute, and the event is made only when someone waits.
    """

    __slots__ = ("_event", "_set")
    _guard = threading.Lock()  # orders "make the event" against "set": one, rarely contended

    def __init__(self) -> None:
        self._set = False
        self._event: threading.Event | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        with Cancellation._guard:
            event = self._event
        if event is not None:
            event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout`` seconds passed; True if cancelled."""
        if self._set:
            return True
        with Cancellation._guard:
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        # set() may have run before the event existed (one line: mypy would take a second `if` as unreachable).
        return self._set or event.wait(timeout)


class _CallLogger(logging.LoggerAdapter[logging.Logger]):
    """Adds the call's fields to every record, keeping the caller's own ``extra``."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


class CallContext:
    """Identity, session, metadata, budget and cancellation of one call.

    ``cancelled`` is set when the host cancels the call (or goes away). Sync
    tools cannot be interrupted, so long-running ones should poll it or wait
    through :meth:`sleep`; async tools are cancelled with ``CancelledError``
    instead and should use ``asyncio.sleep``.
    """

    __slots__ = (
        "_host",
        "_host_depth",
        "_host_factory",
        "_logger",
        "_metadata",
        "_metadata_source",
        "_session",
        "_snapshot",
        "cancelled",
        "deadline",
        "request_id",
        "session_id",
        "timeout_ms",
        "tool",
        "worker_id",
    )

    def __init__(
        self,
        *,
        request_id: int,
        tool: str,
        worker_id: str,
        session_id: str = "",
        session: Mapping[str, bytes] | None = None,
        metadata: Mapping[str, str] | None = None,
        timeout_ms: int = 0,
    ) -> None:
        self.request_id = request_id
        self.tool = tool
        self.worker_id = worker_id
        self.session_id = session_id
        self.timeout_ms = timeout_ms
        # Monotonic, like time.monotonic(); None when the caller set no budget.
        self.deadline: float | None = time.monotonic() + timeout_ms / 1000 if timeout_ms else None
        self.cancelled = Cancellation()
        # The session view, the metadata dict, the logger and the host link are
        # made on first use: this constructor runs for every call, and most
        # tools use none of them.
        self._snapshot = session
        self._session: SessionView | None = None
        self._metadata_source = metadata
        self._metadata: dict[str, str] | None = None
        self._logger: _CallLogger | None = None
        self._host: HostLink | None = None
        self._host_factory: Callable[[CallContext, int], HostLink] | None = None
        self._host_depth = 0

    @property
    def session(self) -> SessionView:
        """The call's session as a dict (empty, and refusing changes, without a session)."""
        if self._session is None:
            self._session = SessionView(self.session_id, self._snapshot if self._snapshot is not None else {})
        return self._session

    @property
    def session_delta(self) -> pb.SessionDelta | None:
        """What the tool changed in the session, or None if nothing (or never looked at)."""
        return self._session.delta() if self._session is not None and self._session.changed else None

    @property
    def metadata(self) -> dict[str, str]:
        """The caller's metadata (e.g. ``traceparent``)."""
        if self._metadata is None:
            self._metadata = dict(self._metadata_source or {})
        return self._metadata

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry the tool name and request id."""
        if self._logger is None:
            fields = {"tool": self.tool, "request_id": self.request_id}
            self._logger = _CallLogger(logging.getLogger(TOOL_LOGGER), fields)
        return self._logger

    def remaining(self) -> float | None:
        """Seconds left of the caller's budget (may be negative), or None without one."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; return False early if the call is cancelled meanwhile."""
        return not self.cancelled.wait(max(0.0, seconds))

    def __repr__(self) -> str:
        return f"CallContext(request_id={self.request_id}, tool={self.tool!r}, worker_id={self.worker_id!r})"

    def connect_host(self, factory: Callable[[CallContext, int], HostLink], depth: int) -> None:
        """Called by the bridge: how to reach the host, should the tool ask, and how deep
        in host-to-Python recursion this call already is."""
        self._host_factory = factory
        self._host_depth = depth

    @property
    def host(self) -> HostLink | None:
        """The call's link back to the host (None outside a host connection)."""
        if self._host is None and self._host_factory is not None:
            self._host = self._host_factory(self, self._host_depth)
        return self._host

    @property
    def opened_host(self) -> HostLink | None:
        """The link if the tool ever reached for the host (only then can host calls be pending)."""
        return self._host

    @property
    def host_tools(self) -> list[str]:
        """Names of the tools the host exposes to Python."""
        return sorted(self.host.tools) if self.host is not None else []

    def call_host(self, name: str, args: Mapping[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Run host tool ``name`` and return its result (blocks this tool's thread).

        ``timeout`` defaults to what is left of this call's budget. Raises
        :class:`HostToolError` (``HostToolTimeout``, ``HostToolCancelled``).
        """
        return wait_sync(self._host_link(name), name, args, self._host_timeout(timeout))

    async def call_host_async(
        self, name: str, args: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """The awaitable form of :meth:`call_host`, for ``async def`` tools."""
        return await wait_async(self._host_link(name), name, args, self._host_timeout(timeout))

    def _host_link(self, name: str) -> HostLink:
        if self.host is None:
            raise HostToolError("WORKER_UNAVAILABLE", f"no host connection to call {name!r} on")
        if name not in self.host.tools:
            raise HostToolError(
                "TOOL_NOT_FOUND", f"the host has no tool {name!r}", {"available": sorted(self.host.tools)}
            )
        return self.host

    def _host_timeout(self, timeout: float | None) -> float | None:
        if timeout is not None:
            return timeout
        remaining = self.remaining()
        return max(0.0, remaining) if remaining is not None else None

/**
 * The files `snakepit new-adapter NAME` writes: a commented adapter that shows
 * each kind of tool, and pytest tests that call its tools through
 * snakepit_bridge.testing, as a worker would, without one.
 * (No backticks in the Python text: they would end these template literals.)
 */

export interface AdapterNames {
  /** The Python package, e.g. `my_models`. */
  name: string;
  /** The adapter class, e.g. `MyModelsAdapter`. */
  className: string;
}

export const packageInit = ({
  name,
  className,
}: AdapterNames): string => `"""The ${name} adapter package; Snakepit loads it as '${name}.adapter:${className}'."""
`;

export const adapterModule = ({ name, className }: AdapterNames): string => `"""${className}: the Python tools behind a Snakepit pool.

Each worker runs 'python -m snakepit_bridge.worker --adapter ${name}.adapter:${className}'
in the app's working directory, so the '${name}' package must be importable from there
(or from PYTHONPATH). One instance of the class lives as long as the worker process and
serves every call sent to it.
"""

from __future__ import annotations

from collections.abc import Iterator

from snakepit_bridge import Adapter, CallContext, ToolError, tool


class ${className}(Adapter):
    """Example tools: replace them with yours.

    thread_safe says whether the tools may run in several threads of one worker
    at once. Leave it False (the default) while any tool changes shared state
    (attributes of self, globals) or calls a library that is not thread-safe:
    each worker then runs one call at a time and the pool scales with more
    processes. Set it True only when every tool is safe to run concurrently,
    typically read-only state plus code that releases the GIL (numpy, most model
    runtimes); only then may a worker run several calls at once (the pool option
    profile: 'thread').
    """

    thread_safe = False

    def setup(self) -> None:
        """Runs once per worker process, before it reports ready: load expensive resources here.

        Every call reuses what is loaded here. An exception fails the worker's
        start and appears in the host's log; a slow load counts against the
        pool's startTimeoutMs. Release resources in teardown() if they need it.
        """
        self.greetings = {"en": "Hello", "fr": "Bonjour", "de": "Hallo"}  # e.g. a model or a client

    @tool(idempotent=True)
    def greet(self, name: str, language: str = "en") -> dict:
        """Greet someone in one of the loaded languages."""
        # The first docstring line is the tool's description and the type hints are its parameters,
        # checked before the call. idempotent=True: the host may retry it on another worker after a crash.
        if language not in self.greetings:
            # ToolError chooses the error code the caller gets (here INVALID_ARGUMENTS, HTTP 400);
            # any other exception reaches the caller as PYTHON_EXCEPTION with its traceback.
            raise ToolError("INVALID_ARGUMENTS", f"unknown language {language!r}", {"known": sorted(self.greetings)})
        return {"greeting": f"{self.greetings[language]}, {name}!"}

    @tool
    def countdown(self, start: int, ctx: CallContext, interval_ms: int = 0) -> Iterator[dict]:
        """Stream start, start - 1, ..., 1, one chunk each, stopping early if the caller cancels."""
        # A generator is a streaming tool: each yield is one chunk of PoolService.executeStream.
        # A parameter named ctx (or annotated CallContext) is injected, never sent by the caller.
        for remaining in range(start, 0, -1):
            yield {"remaining": remaining}
            # Sync tools cannot be interrupted: wait with ctx.sleep, or poll ctx.cancelled.is_set().
            if not ctx.sleep(interval_ms / 1000):
                return

    @tool
    def visit(self, page: str, ctx: CallContext) -> dict:
        """Count this session's visits per page; the counts live in the host's session store."""
        # ctx.session is the session's state, sent with the call (execute(..., { sessionId })).
        # Only assignments are sent back, applied atomically with the result: build a new value
        # and assign it, since changing an object read from the session in place records nothing.
        visits = dict(ctx.session.get("visits", {}))
        visits[page] = visits.get(page, 0) + 1
        ctx.session["visits"] = visits
        return visits
`;

export const adapterTests = ({ name, className }: AdapterNames): string => `"""Tests of ${className}, without a worker.

snakepit_bridge.testing calls each tool as a worker would: the arguments are checked
against its parameters, it gets a real ctx (session, cancellation, metadata), and what
comes back is what the host would receive. Run them with the interpreter the workers
use; pytest is not a dependency of snakepit-bridge, so install it there first:

    .venv/bin/python -m pip install pytest
    .venv/bin/python -m pytest ${name}
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ${name}.adapter import ${className}
from snakepit_bridge import ToolError
from snakepit_bridge.testing import ToolHarness


@pytest.fixture
def harness() -> Iterator[ToolHarness]:
    # A new adapter between its setup() and teardown(), as in a worker process.
    with ToolHarness.serving(${className}) as serving:
        yield serving


def test_the_worker_serves_every_tool_with_its_parameters(harness: ToolHarness) -> None:
    # The tools as the worker discovers them at start (a TypeError there would stop it from starting).
    assert sorted(harness.tools) == ["countdown", "greet", "visit"]
    greet = harness.tools["greet"]
    assert greet.description == "Greet someone in one of the loaded languages."
    assert {name: (spec.type.name, spec.required) for name, spec in greet.params.items()} == {
        "name": ("string", True),
        "language": ("string", False),
    }
    assert greet.idempotent and not greet.streaming
    assert harness.tools["countdown"].streaming
    assert "ctx" not in harness.tools["countdown"].params  # injected by the worker, not sent by callers


def test_greet(harness: ToolHarness) -> None:
    assert harness.call("greet", {"name": "Ada", "language": "fr"}).value == {"greeting": "Bonjour, Ada!"}
    with pytest.raises(ToolError) as raised:
        harness.call("greet", {"name": "Ada", "language": "xx"})
    assert raised.value.code == "INVALID_ARGUMENTS"
    assert raised.value.details == {"known": ["de", "en", "fr"]}
    # Arguments are checked before the tool runs, as the worker checks them.
    with pytest.raises(ToolError, match="name is required"):
        harness.call("greet", {"language": "en"})


def test_countdown_streams_and_stops_when_cancelled(harness: ToolHarness) -> None:
    assert harness.stream("countdown", {"start": 3}).chunks == [{"remaining": 3}, {"remaining": 2}, {"remaining": 1}]
    # The caller cancels after the first chunk: the worker pulls no more and closes the generator.
    stopped = harness.stream("countdown", {"start": 3}, cancel_after=1)
    assert stopped.cancelled and stopped.chunks == [{"remaining": 3}]


def test_visit_updates_the_session(harness: ToolHarness) -> None:
    result = harness.call("visit", {"page": "home"}, session={"visits": {"home": 1}})
    assert result.value == {"home": 2}
    assert result.session == {"visits": {"home": 2}}  # what the host stores when the call succeeds
`;

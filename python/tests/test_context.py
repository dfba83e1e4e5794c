"""CallContext, the session view and argument validation."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from snakepit_bridge import CallContext, ToolError
from snakepit_bridge.schema import JsonType, ParamSpec, validate_arguments


def context(session: dict[str, bytes] | None = None, session_id: str = "s1", **kwargs: Any) -> CallContext:
    return CallContext(request_id=7, tool="t", worker_id="w1", session_id=session_id, session=session, **kwargs)


def test_identity_metadata_and_deadline() -> None:
    ctx = context(metadata={"traceparent": "00-abc"}, timeout_ms=1500)
    assert (ctx.request_id, ctx.tool, ctx.worker_id, ctx.session_id) == (7, "t", "w1", "s1")
    assert ctx.metadata == {"traceparent": "00-abc"}
    assert ctx.deadline is not None and 1.4 < ctx.deadline - time.monotonic() <= 1.5
    remaining = ctx.remaining()
    assert remaining is not None and remaining <= 1.5
    assert context().deadline is None and context().remaining() is None


def test_sleep_returns_early_when_cancelled() -> None:
    ctx = context()
    assert ctx.sleep(0.01) is True
    outcome: list[bool] = []
    sleeper = threading.Thread(target=lambda: outcome.append(ctx.sleep(60)))
    sleeper.start()
    ctx.cancelled.set()
    sleeper.join(timeout=30)  # a sleep that ignored the cancel would still be running: 60 s
    assert not sleeper.is_alive() and outcome == [False]


def test_cancellation_wakes_every_waiter_and_stays_set() -> None:
    ctx = context()
    assert ctx.cancelled.wait(0.01) is False and not ctx.cancelled.is_set()
    woken: list[bool] = []
    waiters = [threading.Thread(target=lambda: woken.append(ctx.cancelled.wait(5))) for _ in range(3)]
    for waiter in waiters:
        waiter.start()
    ctx.cancelled.set()
    for waiter in waiters:
        waiter.join(5)
    assert woken == [True, True, True]
    assert ctx.cancelled.is_set() and ctx.cancelled.wait(0) is True


def test_session_delta_only_when_the_tool_changed_the_session() -> None:
    assert context().session_delta is None  # never looked at
    ctx = context({"a": b"1"})
    assert ctx.session["a"] == 1
    after_reading = ctx.session_delta  # a local, so mypy does not keep the property narrowed to None below
    assert after_reading is None  # only read
    ctx.session["a"] = 2
    delta = ctx.session_delta
    assert delta is not None and dict(delta.set) == {"a": b"2"}


def test_logger_carries_call_fields(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO"):
        context().logger.info("hello", extra={"rows": 3})
    record = caplog.records[-1]
    assert (record.tool, record.request_id, record.rows) == ("t", 7, 3)  # type: ignore[attr-defined]


def test_session_reads_snapshot_and_records_changes() -> None:
    ctx = context({"a": b"1", "b": b'{"x":[1]}', "c": b"null"})
    session = ctx.session
    assert session["a"] == 1 and session["b"] == {"x": [1]} and session["c"] is None
    assert sorted(session) == ["a", "b", "c"] and len(session) == 3
    assert not session.changed
    session["a"] = 2
    session["new"] = "v"
    del session["b"]
    assert "b" not in session and session.get("b") is None
    assert sorted(session) == ["a", "c", "new"]
    delta = session.delta()
    assert dict(delta.set) == {"a": b"2", "new": b'"v"'}
    assert list(delta.deleted) == ["b"]


def test_session_set_after_delete_and_delete_missing() -> None:
    session = context({"a": b"1"}).session
    del session["a"]
    session["a"] = 3
    assert session["a"] == 3
    assert list(session.delta().deleted) == []
    with pytest.raises(KeyError):
        del session["missing"]


def test_session_values_must_be_json() -> None:
    session = context().session
    with pytest.raises(ToolError) as caught:
        session["k"] = {"bad": {1, 2}}
    assert caught.value.code == "SERIALIZATION_ERROR"
    assert caught.value.details["path"] == "$.bad"
    with pytest.raises(TypeError):
        session[1] = "x"  # type: ignore[index]
    assert not session.changed


def test_session_without_session_is_read_only() -> None:
    ctx = context(session_id="")
    assert ctx.session.get("anything") is None
    with pytest.raises(RuntimeError, match="no session"):
        ctx.session["k"] = 1


PARAMS = {
    "n": ParamSpec("n", JsonType("integer")),
    "x": ParamSpec("x", JsonType("number"), default=1.0),
    "tags": ParamSpec("tags", JsonType("array", items=JsonType("string")), default=None),
    "maybe": ParamSpec("maybe", JsonType("string", nullable=True), default=None),
    "any": ParamSpec("any", JsonType("any"), default=None),
}


def errors_for(args: dict[str, Any], accepts_extra: bool = False) -> list[dict[str, str]]:
    with pytest.raises(ToolError) as caught:
        validate_arguments("tool", args, PARAMS, accepts_extra)
    assert caught.value.code == "INVALID_ARGUMENTS"
    errors: list[dict[str, str]] = caught.value.details["errors"]
    return errors


def test_valid_arguments_pass() -> None:
    validate_arguments("tool", {"n": 1, "x": 2, "tags": ["a"], "maybe": None, "any": {"k": [None]}}, PARAMS, False)
    validate_arguments("tool", {"n": 1, "extra": True}, PARAMS, True)


def test_every_problem_is_reported() -> None:
    assert errors_for({"x": "1", "tags": ["a", 2], "bogus": 1}) == [
        {"path": "$.n", "problem": "missing", "expected": "integer"},
        {"path": "$.x", "problem": "wrong_type", "expected": "number", "got": "string"},
        {"path": "$.tags[1]", "problem": "wrong_type", "expected": "string", "got": "integer"},
        {"path": "$.bogus", "problem": "unknown", "got": "integer"},
    ]


@pytest.mark.parametrize(
    ("args", "expected", "got"),
    [
        ({"n": True}, "integer", "boolean"),
        ({"n": 1.0}, "integer", "number"),
        ({"n": None}, "integer", "null"),
        ({"n": 1, "x": False}, "number", "boolean"),
        ({"n": 1, "maybe": 3}, "string|null", "integer"),
        ({"n": 1, "tags": "a"}, "array", "string"),
    ],
)
def test_type_mismatches(args: dict[str, Any], expected: str, got: str) -> None:
    (error,) = errors_for(args)
    assert (error["expected"], error["got"]) == (expected, got)


def test_message_summarizes() -> None:
    with pytest.raises(ToolError, match=r"invalid arguments for tool: \$\.n is required \(integer\)"):
        validate_arguments("tool", {}, PARAMS, False)

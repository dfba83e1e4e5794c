"""Exceptions as ErrorInfo: codes, qualified types, traceback and the chain."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from snakepit_bridge import ToolError
from snakepit_bridge.errors import MAX_CHAIN_DEPTH, MAX_TRACEBACK_CHARS, error_info, exception_chain


class CustomError(Exception):
    pass


def raised(func: Callable[[], object]) -> BaseException:
    try:
        func()
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def test_builtin_exception() -> None:
    info = error_info(raised(lambda: int("x")))
    assert info.code == "PYTHON_EXCEPTION"
    assert info.python.type == "ValueError"
    assert info.python.message == "invalid literal for int() with base 10: 'x'"
    assert info.message == "ValueError: invalid literal for int() with base 10: 'x'"
    assert "Traceback (most recent call last)" in info.python.traceback
    assert not info.python.chain


def test_qualified_name_for_non_builtins() -> None:
    def fail() -> None:
        raise CustomError()

    info = error_info(raised(fail))
    assert info.python.type == "test_errors.CustomError"
    assert info.message == "test_errors.CustomError"  # no ": " for an empty message


def test_cause_then_context_chain() -> None:
    def fail() -> None:
        try:
            try:
                dict[str, int]()["k"]
            except KeyError:
                raise TypeError("while handling")  # noqa: B904  # the implicit context under test
        except TypeError as exc:
            raise ValueError("outer") from exc  # cause

    info = error_info(raised(fail))
    assert [(link.type, link.message, link.relation) for link in info.python.chain] == [
        ("TypeError", "while handling", "cause"),
        ("KeyError", "'k'", "context"),
    ]
    traceback = info.python.traceback
    assert traceback.index("KeyError") < traceback.index("TypeError") < traceback.index("ValueError: outer")


def test_suppressed_context_is_not_followed() -> None:
    def fail() -> None:
        try:
            dict[str, int]()["k"]
        except KeyError:
            raise ValueError("clean") from None

    assert error_info(raised(fail)).python.chain == []


def test_chain_depth_is_bounded_and_cycles_cut() -> None:
    exc: BaseException = ValueError("0")
    for i in range(1, 40):
        outer = ValueError(str(i))
        outer.__cause__ = exc
        exc = outer
    assert len(exception_chain(exc)) == MAX_CHAIN_DEPTH

    first, second = ValueError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first
    assert [linked for linked, _ in exception_chain(first)] == [second]


def test_memory_error_is_resource_exhausted() -> None:
    info = error_info(MemoryError())
    assert info.code == "RESOURCE_EXHAUSTED"
    assert info.python.type == "MemoryError"


def test_tool_error_picks_the_code() -> None:
    info = error_info(ToolError("MODEL_NOT_READY", "still loading", {"eta_s": 3}))
    assert info.code == "MODEL_NOT_READY"
    assert info.message == "still loading"
    assert json.loads(info.details_json) == {"eta_s": 3}
    assert not info.HasField("python")


def test_tool_error_with_unencodable_details() -> None:
    info = error_info(ToolError("X", "m", {"bad": float("nan")}))
    assert "unencodable_details" in json.loads(info.details_json)


def test_unprintable_exception() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert error_info(Unprintable()).python.message == "<unprintable Unprintable>"


def test_huge_traceback_keeps_its_end() -> None:
    def recurse(n: int) -> None:
        if n == 0:
            raise ValueError("bottom " + "x" * 100)
        recurse(n - 1)

    exc = raised(lambda: recurse(800))
    info = error_info(exc)
    assert len(info.python.traceback) < MAX_TRACEBACK_CHARS + 100
    assert info.python.traceback.rstrip().endswith("x" * 100)


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt()])
def test_base_exceptions_are_described_too(exc: BaseException) -> None:
    assert error_info(exc).code == "PYTHON_EXCEPTION"

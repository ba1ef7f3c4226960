"""The cheap stacktrace text parses to the same exceptions and frames as Python's own."""

from __future__ import annotations

import sys
import traceback

import pytest

from otel_sentry_bridge.capture.traceback_text import exception_text, stacktrace
from otel_sentry_bridge.convert.stacktrace import parse_stacktrace


class AppError(Exception):
    pass


def _deep(n: int) -> None:
    if n == 0:
        raise KeyError("k")
    _deep(n - 1)


def _chained_cause() -> None:
    try:
        _deep(3)
    except KeyError as exc:
        raise AppError("wrapped") from exc


def _chained_context() -> None:
    try:
        _deep(1)
    except KeyError:
        raise AppError("while handling")  # noqa: B904 - the implicit chain is the point


def _suppressed() -> None:
    try:
        _deep(1)
    except KeyError:
        raise AppError("clean") from None


class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


def _bad_str() -> None:
    raise BadStr()


def _syntax() -> None:
    compile("x = (", "generated.py", "exec")


def _with_note() -> None:
    error = AppError("noted")
    error.add_note("extra context")
    raise error


def _summary(text: str) -> list[tuple[str, str, list[tuple[str, int, str | None]]]]:
    return [
        (e.type, e.message, [(f.path, f.lineno, f.function) for f in e.frames])
        for e in parse_stacktrace(text)
    ]


@pytest.mark.parametrize(
    "fail", [_chained_cause, _chained_context, _suppressed, _bad_str, _syntax, _with_note]
)
def test_same_exceptions_and_frames_as_format_exception(fail: object) -> None:
    try:
        fail()  # type: ignore[operator]
    except Exception as exc:
        expected = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        ours = stacktrace(exc)
    assert _summary(ours) == _summary(expected)
    assert [e.chained for e in parse_stacktrace(ours)] == [
        e.chained for e in parse_stacktrace(expected)
    ]


def test_exception_never_raised() -> None:
    assert stacktrace(ValueError("plain")) == "ValueError: plain\n"
    assert exception_text(ValueError()) == "ValueError"
    assert exception_text(AppError("x")).endswith("test_traceback_text.AppError: x")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are 3.11+")
def test_exception_group_falls_back_to_traceback() -> None:
    group = ExceptionGroup("g", [ValueError("a")])  # noqa: F821
    assert stacktrace(group) == "".join(traceback.format_exception(group))


def test_cycle_in_the_chain_terminates() -> None:
    a, b = ValueError("a"), KeyError("b")
    a.__context__, b.__context__ = b, a
    text = stacktrace(a)
    assert text.count("ValueError: a") == 1

"""The cheap stacktrace text parses to the same exceptions and frames as Python's own."""

from __future__ import annotations

import os
import sys
import tokenize
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from otel_sentry_bridge.capture.traceback_text import (
    exception_attributes,
    exception_text,
    stacktrace,
)
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


# -- a class whose __module__ is no str --------------------------------------------------------


class _Unprintable:
    def __format__(self, spec: str) -> str:
        raise TypeError("not formattable")

    def __str__(self) -> str:
        raise TypeError("no str")

    __repr__ = __str__


class GeneratedError(Exception):
    pass


GeneratedError.__module__ = _Unprintable()  # type: ignore[assignment]


def test_a_module_that_is_no_str_is_unknown_as_python_prints_it() -> None:
    from otel_sentry_bridge.capture.traceback_text import exception_type_name
    from otel_sentry_bridge.convert.stacktrace import split_type

    try:
        raise GeneratedError("generated")
    except GeneratedError as exc:
        error = exc
    assert exception_type_name(GeneratedError) == "<unknown>.GeneratedError"
    assert exception_text(error) == "<unknown>.GeneratedError: generated"
    python_last_line = traceback.format_exception_only(GeneratedError, error)[-1]
    assert stacktrace(error).endswith(python_last_line)
    (parsed,) = parse_stacktrace(stacktrace(error))
    assert split_type(parsed.type) == (None, "GeneratedError")


# -- the worker's text with the source lines never opens what could block ----------------------


def _raising_from_a_fifo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> tuple[Path, Callable[[], None], list[str]]:
    """A FIFO, a function ``name`` compiled as if from it that raises ``KeyError('x')``, and
    the paths ``linecache`` opens from now on (the FIFO's open fails instead of blocking)."""
    fifo = tmp_path / f"{name}.fifo"
    os.mkfifo(fifo)  # open() for reading would wait for a writer
    namespace: dict[str, Any] = {}
    exec(compile(f"def {name}():\n    raise KeyError('x')\n", str(fifo), "exec"), namespace)
    opened: list[str] = []
    real_open = tokenize.open

    def recording_open(path: str) -> object:  # what linecache opens the files with
        opened.append(str(path))
        if str(path) == str(fifo):
            raise OSError("would have blocked")
        return real_open(path)

    monkeypatch.setattr(tokenize, "open", recording_open)
    return fifo, namespace[name], opened


def test_the_full_text_reads_no_fifo_and_keeps_the_other_source_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo, render, opened = _raising_from_a_fifo(tmp_path, monkeypatch, "render")
    try:
        render()
    except KeyError as exc:
        text = exception_attributes(exc, full=True)["exception.stacktrace"]
    assert str(fifo) not in opened
    assert f'  File "{fifo}", line 2, in render\n' in text
    assert "    render()\n" in text  # a regular file
    assert text.endswith("KeyError: 'x'\n")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are 3.11+")
def test_an_exception_group_s_text_reads_no_fifo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo, task, opened = _raising_from_a_fifo(tmp_path, monkeypatch, "task")
    try:
        task()
    except KeyError as exc:
        member = exc
    try:
        raise ExceptionGroup("tasks failed", [member])  # noqa: F821
    except ExceptionGroup as exc:  # noqa: F821
        full = exception_attributes(exc, full=True)["exception.stacktrace"]
        cheap = stacktrace(exc)
    assert str(fifo) not in opened
    for text in (full, cheap):
        (group,) = parse_stacktrace(text)
        assert [(f.path, f.function) for f in group.children[0].frames][-1] == (str(fifo), "task")
    assert "raise ExceptionGroup" in full and "raise ExceptionGroup" not in cheap


# -- bounded whatever the depth ----------------------------------------------------------------


def _frame_lines(exc: BaseException) -> list[str]:
    lines = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        lines.append(f'  File "{code.co_filename}", line {tb.tb_lineno}, in {code.co_name}\n')
        tb = tb.tb_next
    return lines


def _recurse(n: int) -> None:
    if n == 0:
        raise ValueError("deep")
    _recurse(n - 1)


def _ping(n: int) -> None:
    if n == 0:
        raise ValueError("deep")
    _pong(n - 1)


def _pong(n: int) -> None:
    _ping(n)


def test_a_deep_stack_is_collapsed_as_python_does_and_capped() -> None:
    try:
        _recurse(10)
    except ValueError as exc:
        usual = exc
    # A stack of usual depth: a line per frame, as it always was.
    assert stacktrace(usual) == "".join(
        ["Traceback (most recent call last):\n", *_frame_lines(usual), "ValueError: deep\n"]
    )

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5000))
    try:
        try:
            _recurse(3000)
        except ValueError as exc:
            recursion = exc
        try:
            _ping(1500)  # 3000 frames, no two in a row alike: nothing to collapse
        except ValueError as exc:
            ping_pong = exc
    finally:
        sys.setrecursionlimit(limit)

    text = stacktrace(recursion)
    # Python's own text, without the source lines and markers under the frames.
    python = [
        line
        for chunk in traceback.format_exception(recursion)
        for line in chunk.splitlines(keepends=True)
        if not line.startswith("    ")
    ]
    assert text == "".join(python)
    assert "  [Previous line repeated 2997 more times]\n" in text and len(text) < 2_000

    text = stacktrace(ping_pong)
    frames = _frame_lines(ping_pong)
    assert len(text) < 20_000  # 3000 lines of frames otherwise
    assert f"  [{len(frames) - 100} frames omitted]\n" in text
    (parsed,) = parse_stacktrace(text)
    printed = [f'  File "{f.path}", line {f.lineno}, in {f.function}\n' for f in parsed.frames]
    assert printed == frames[:50] + frames[-50:]  # the outermost and innermost, as an event


def test_in_a_long_chain_a_deep_stack_keeps_fewer_frames() -> None:
    error: BaseException | None = None
    for index in range(10):
        try:
            try:
                _ping(60)
            except ValueError as exc:
                raise RuntimeError(f"attempt {index}") from (error or exc)
        except RuntimeError as exc:
            error = exc
    assert error is not None
    text = stacktrace(error)
    parsed = parse_stacktrace(text)
    assert [e.message for e in parsed][-2:] == ["attempt 8", "attempt 9"]
    assert "frames omitted]" in text and len(parsed[0].frames) < 100  # 122 frames otherwise

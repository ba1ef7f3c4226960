"""Parsing real ``traceback.format_exception`` output back into exceptions and frames."""

from __future__ import annotations

import sys
import traceback

import pytest

from otel_sentry_bridge.convert.stacktrace import parse_stacktrace, split_type


def _text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _raise(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def _level_three() -> None:
    raise KeyError("deep")


def _level_two() -> None:
    _level_three()


def _level_one() -> None:
    _level_two()


def _chained_cause() -> BaseException:
    try:
        try:
            _level_one()
        except KeyError as exc:
            raise ValueError("wrapped") from exc
    except ValueError as outer:
        return outer
    raise AssertionError("unreachable")


def _chained_context() -> BaseException:
    try:
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            {}["missing"]
    except KeyError as outer:
        return outer
    raise AssertionError("unreachable")


def test_nested_frames_are_outermost_first_with_source_lines() -> None:
    try:
        _level_one()
    except KeyError as exc:
        parsed = parse_stacktrace(_text(exc))
    assert len(parsed) == 1
    functions = [f.function for f in parsed[0].frames]
    assert functions[-3:] == ["_level_one", "_level_two", "_level_three"]
    assert parsed[0].frames[-1].source_line == 'raise KeyError("deep")'
    assert parsed[0].frames[-1].path == __file__
    assert parsed[0].type == "KeyError"
    assert parsed[0].message == "'deep'"


def test_direct_cause_chain_is_root_cause_first() -> None:
    parsed = parse_stacktrace(_text(_chained_cause()))
    assert [p.type for p in parsed] == ["KeyError", "ValueError"]
    assert [p.chained for p in parsed] == [None, "cause"]
    assert parsed[0].frames[-1].function == "_level_three"
    assert parsed[1].frames[-1].function == "_chained_cause"


def test_during_handling_chain_is_root_cause_first() -> None:
    parsed = parse_stacktrace(_text(_chained_context()))
    assert [p.type for p in parsed] == ["ZeroDivisionError", "KeyError"]
    assert parsed[1].chained == "context"
    assert parsed[1].message == "'missing'"


def test_multiline_message_is_kept_whole() -> None:
    parsed = parse_stacktrace(_text(_raise(RuntimeError("first line\nsecond line"))))
    assert parsed[-1].message == "first line\nsecond line"


def test_qualified_type_of_a_non_builtin_exception() -> None:
    class LocalError(Exception):
        pass

    parsed = parse_stacktrace(_text(_raise(LocalError("x"))))
    assert parsed[-1].type.endswith("LocalError")
    assert split_type("pkg.mod.Error") == ("pkg.mod", "Error")
    assert split_type("ValueError") == (None, "ValueError")


def test_exception_never_raised_has_no_frames() -> None:
    parsed = parse_stacktrace(_text(RuntimeError("never raised")))
    assert len(parsed) == 1
    assert parsed[0].frames == []
    assert parsed[0].type == "RuntimeError"


def test_syntax_error_keeps_the_compiled_files_location() -> None:
    try:
        compile("x = (1 +\n", "snippet.py", "exec")
    except SyntaxError as exc:
        parsed = parse_stacktrace(_text(exc))
    assert parsed[-1].type == "SyntaxError"
    last = parsed[-1].frames[-1]
    assert last.path == "snippet.py"
    assert last.function is None


def test_recursion_error_skips_repeat_markers() -> None:
    def recurse(n: int) -> int:
        return recurse(n + 1)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(80)
    try:
        recurse(0)
    except RecursionError as exc:
        text = _text(exc)
    finally:
        sys.setrecursionlimit(limit)
    assert "Previous line repeated" in text
    parsed = parse_stacktrace(text)
    assert parsed[-1].type == "RecursionError"
    assert all(
        f.function in {"recurse", "test_recursion_error_skips_repeat_markers"}
        for f in parsed[-1].frames
    )


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are 3.11+")
def test_exception_group_members_and_nested_groups() -> None:
    def make() -> BaseException:
        errors: list[Exception] = []
        for error in (_chained_cause(), _raise(TypeError("t"))):
            assert isinstance(error, Exception)
            errors.append(error)
        nested = ExceptionGroup("inner", [OSError(2, "gone")])  # noqa: F821
        return _raise(ExceptionGroup("outer", [*errors, nested]))  # noqa: F821

    parsed = parse_stacktrace(_text(make()))
    assert len(parsed) == 1
    group = parsed[0]
    assert group.is_group and group.type == "ExceptionGroup"
    assert group.message.startswith("outer")
    assert group.frames[-1].function == "_raise"
    assert [c.type for c in group.children] == [
        "KeyError",
        "ValueError",
        "TypeError",
        "ExceptionGroup",
    ]
    assert group.children[1].chained == "cause"
    inner = group.children[3]
    assert inner.is_group
    assert [c.type for c in inner.children] == ["FileNotFoundError"]


def test_truncated_stacktrace_keeps_the_frames_that_survived() -> None:
    text = _text(_chained_cause())
    cut = text[: text.index("in _level_three") + 40]
    parsed = parse_stacktrace(cut)
    assert parsed, "frames before the cut must survive"
    assert parsed[-1].type == ""  # the exception line was cut off
    assert parsed[-1].frames[-1].function == "_level_three"


@pytest.mark.parametrize(
    "text", ["", "\n\n", "garbage without structure", '  File "x", line notanumber, in f']
)
def test_odd_input_never_raises(text: str) -> None:
    parse_stacktrace(text)

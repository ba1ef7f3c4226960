"""Parsing real ``traceback.format_exception`` output back into exceptions and frames."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

import pytest

from otel_sentry_bridge.convert.stacktrace import (
    MAX_REPEATED_FRAMES,
    ParseCache,
    Tracebacks,
    group_message,
    parse_stacktrace,
    split_type,
)


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


def test_syntax_error_keeps_the_compiled_files_location_in_its_message() -> None:
    try:
        compile("x = (1 +\n", "snippet.py", "exec")
    except SyntaxError as exc:
        error = exc
        parsed = parse_stacktrace(_text(exc))
    assert parsed[-1].type == "SyntaxError"
    # The location block is where the syntax error is, not a frame of the stack.
    assert [f.function for f in parsed[-1].frames] == [
        "test_syntax_error_keeps_the_compiled_files_location_in_its_message"
    ]
    assert parsed[-1].message == str(error)
    assert parsed[-1].message.endswith("(snippet.py, line 1)")


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


# -- what sentry-sdk reads from the traceback object, restored from the text ----------------


def _frames_of(exc: BaseException) -> list[str]:
    functions = []
    tb = exc.__traceback__
    while tb is not None:
        functions.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return functions


def test_repeated_lines_are_every_frame_of_the_stack() -> None:
    def recurse(n: int) -> int:
        return recurse(n + 1)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(120)
    try:
        recurse(0)
    except RecursionError as exc:
        error = exc
    finally:
        sys.setrecursionlimit(limit)
    text = _text(error)
    assert "Previous line repeated" in text
    (parsed,) = parse_stacktrace(text)
    assert [f.function for f in parsed.frames] == _frames_of(error)
    assert parsed.frames[-1].source_line == "return recurse(n + 1)"


# Python 3.10 (no carets) and 3.13 (carets under every line), as printed.
_REPEATED_310 = """\
Traceback (most recent call last):
  File "/srv/app/main.py", line 9, in <module>
    walk(tree)
  File "/srv/app/walk.py", line 4, in walk
    return walk(node.child)
  File "/srv/app/walk.py", line 4, in walk
    return walk(node.child)
  File "/srv/app/walk.py", line 4, in walk
    return walk(node.child)
  [Previous line repeated 6 more times]
  File "/srv/app/walk.py", line 2, in walk
    raise ValueError("leaf")
ValueError: leaf
"""
_REPEATED_313 = """\
Traceback (most recent call last):
  File "/srv/app/main.py", line 9, in <module>
    walk(tree)
    ~~~~^^^^^^
  File "/srv/app/walk.py", line 4, in walk
    return walk(node.child)
           ~~~~^^^^^^^^^^^^
  File "/srv/app/walk.py", line 4, in walk
    return walk(node.child)
           ~~~~^^^^^^^^^^^^
  File "/srv/app/walk.py", line 4, in walk
    return walk(node.child)
           ~~~~^^^^^^^^^^^^
  [Previous line repeated 6 more times]
  File "/srv/app/walk.py", line 2, in walk
    raise ValueError("leaf")
ValueError: leaf
"""


@pytest.mark.parametrize("text", [_REPEATED_310, _REPEATED_313], ids=["3.10", "3.13"])
def test_repeated_frames_in_the_middle_of_the_stack(text: str) -> None:
    (parsed,) = parse_stacktrace(text)
    assert [(f.lineno, f.function) for f in parsed.frames] == [
        (9, "<module>"),
        *[(4, "walk")] * 9,
        (2, "walk"),
    ]
    assert parsed.frames[5].source_line == "return walk(node.child)"


def test_a_repeated_frame_without_its_source_line_is_repeated_too() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/walk.py", line 4, in walk\n'
        "  [Previous line repeated 2 more times]\n"
        "RecursionError: maximum recursion depth exceeded\n"
    )
    (parsed,) = parse_stacktrace(text)
    assert [(f.lineno, f.source_line) for f in parsed.frames] == [(4, None)] * 3


def test_repeated_frames_are_bounded_per_exception() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/a.py", line 1, in a\n'
        "  [Previous line repeated 100000 more times]\n"
        '  File "/srv/app/b.py", line 2, in b\n'
        "  [Previous line repeated 100000 more times]\n"
        '  File "/srv/app/c.py", line 3, in c\n'
        "RecursionError: maximum recursion depth exceeded\n"
    )
    (parsed,) = parse_stacktrace(text)
    functions = [f.function for f in parsed.frames]
    assert len(functions) == 3 + MAX_REPEATED_FRAMES
    assert functions.count("a") == 1 + MAX_REPEATED_FRAMES
    assert functions[-2:] == ["b", "c"]  # the innermost frames are never lost


# A SyntaxError raised by an import, as 3.10 and 3.13 print it.
_SYNTAX_310 = """\
Traceback (most recent call last):
  File "/srv/app/manage.py", line 22, in <module>
    main()
  File "/srv/app/shop/apps.py", line 8, in ready
    import shop.signals
  File "/srv/app/shop/signals.py", line 3
    def on_save(sender, **kwargs:
                                ^
SyntaxError: '(' was never closed
"""
_SYNTAX_313 = """\
Traceback (most recent call last):
  File "/srv/app/manage.py", line 22, in <module>
    main()
    ~~~~^^
  File "/srv/app/shop/apps.py", line 8, in ready
    import shop.signals
  File "/srv/app/shop/signals.py", line 3
    def on_save(sender, **kwargs:
               ^
SyntaxError: '(' was never closed
"""


@pytest.mark.parametrize("text", [_SYNTAX_310, _SYNTAX_313], ids=["3.10", "3.13"])
def test_a_syntax_errors_location_is_not_a_frame(text: str) -> None:
    (parsed,) = parse_stacktrace(text)
    assert [(f.path, f.function) for f in parsed.frames] == [
        ("/srv/app/manage.py", "<module>"),
        ("/srv/app/shop/apps.py", "ready"),
    ]
    assert parsed.frames[-1].source_line == "import shop.signals"
    assert parsed.message == "'(' was never closed (signals.py, line 3)"


def test_a_chained_syntax_errors_message_is_its_str() -> None:
    try:
        try:
            compile("def f(:\n    pass\n", "/srv/app/plugin.py", "exec")
        except SyntaxError as exc:
            error = exc
            exc.add_note("while loading plugins")
            raise RuntimeError("plugin failed") from exc
    except RuntimeError as outer:
        parsed = parse_stacktrace(_text(outer))
    assert [p.type for p in parsed] == ["SyntaxError", "RuntimeError"]
    assert parsed[0].message == f"{error}\nwhile loading plugins"
    assert all(f.path != "/srv/app/plugin.py" for f in parsed[0].frames)


def test_the_cheap_stacktrace_of_a_syntax_error_has_no_location_frame() -> None:
    from otel_sentry_bridge.capture.traceback_text import stacktrace

    try:
        compile("x = = 1\n", "/srv/app/conf.py", "exec")
    except SyntaxError as exc:
        error = exc
        text = stacktrace(exc)
    (parsed,) = parse_stacktrace(text)
    assert "/srv/app/conf.py" not in [f.path for f in parsed.frames]
    assert parsed.message == str(error)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are 3.11+")
def test_an_exception_groups_message_has_no_sub_exception_count() -> None:
    inner = ExceptionGroup("inner", [OSError(2, "gone")])  # noqa: F821
    group = _raise(ExceptionGroup("outer\nsecond line", [ValueError("v"), inner]))  # noqa: F821
    (parsed,) = parse_stacktrace(_text(group))
    assert parsed.message == "outer\nsecond line"  # Python prints "(2 sub-exceptions)"
    assert parsed.children[-1].message == "inner"  # "(1 sub-exception)"
    # The event builder takes the attribute's str(group): without its count too.
    assert group_message(str(group), parsed.message) == "outer\nsecond line"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are 3.11+")
def test_an_exception_groups_notes_stay_beside_its_message() -> None:
    group = ExceptionGroup("batch failed", [ValueError("v")])  # noqa: F821
    group.add_note("batch 7 of 9")
    (parsed,) = parse_stacktrace(_text(_raise(group)))
    assert parsed.message == "batch failed\nbatch 7 of 9"
    # str(group) is "batch failed (1 sub-exception)", without the notes printed after it.
    assert group_message(str(group), parsed.message) == "batch failed\nbatch 7 of 9"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are 3.11+")
def test_an_exception_groups_event_value_is_its_message() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_sentry_bridge.convert.context import ConvertContext
    from otel_sentry_bridge.convert.event import build_events
    from otel_sentry_bridge.convert.frames import CodeLayout
    from otel_sentry_bridge.convert.spans import span_view
    from otel_sentry_bridge.setup.config import Settings
    from tests.support.relay import assert_valid_event

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("tests").start_as_current_span("batch") as span:
        inner = ExceptionGroup("inner", [KeyError("k")])  # noqa: F821
        group = ExceptionGroup("two failed", [ValueError("a"), inner])  # noqa: F821
        span.record_exception(_raise(group))
    ctx = ConvertContext(
        settings=Settings(), layout=CodeLayout.current(), read_source=lambda _path: None
    )
    ((_, event),) = build_events(span_view(exporter.get_finished_spans()[-1]), ctx)
    assert_valid_event(event)
    values = {(v["type"], v["value"]) for v in event["exception"]["values"]}
    assert values == {
        ("ExceptionGroup", "two failed"),
        ("ExceptionGroup", "inner"),
        ("ValueError", "a"),
        ("KeyError", "'k'"),
    }
    provider.shutdown()


# -- a traceback printed before, under a new message ------------------------------------------


def _order_failure(order_id: int) -> BaseException:
    def load() -> None:
        raise KeyError(str(order_id))

    try:
        try:
            load()
        except KeyError as exc:
            raise LookupError(f"order {order_id} not found\nsecond line") from exc
    except LookupError as outer:
        return outer
    raise AssertionError("unreachable")


def _texts() -> list[str]:
    texts = [
        _text(_order_failure(17)),
        _text(_chained_cause()),
        _text(_chained_context()),
        _REPEATED_310,
        _REPEATED_313,
        _SYNTAX_310,
        _SYNTAX_313,
        _text(KeyError("never raised")),
    ]
    whole = _text(_chained_cause())
    texts.append(whole[: whole.index("in _level_three") + 40])  # cut short
    return texts


@pytest.mark.parametrize("text", _texts())
def test_a_traceback_read_before_is_read_as_it_would_be_alone(text: str) -> None:
    tracebacks = Tracebacks()
    # The same traceback under other messages first (where a line ends the traceback).
    parse_stacktrace(text.replace("17", "18").replace("wrapped", "other"), tracebacks)
    alone = parse_stacktrace(text)

    assert parse_stacktrace(text, tracebacks) == alone
    assert parse_stacktrace(text, tracebacks) == alone  # and again, from the memo only


def test_the_same_traceback_under_a_new_message_shares_its_frames() -> None:
    parse = ParseCache()
    first = parse(_text(_order_failure(17)))
    second = parse(_text(_order_failure(18)))

    assert [(e.type, e.message) for e in second] == [
        ("KeyError", "'18'"),
        ("LookupError", "order 18 not found\nsecond line"),
    ]
    assert [e.frames for e in second] == [e.frames for e in first]
    assert all(
        new is old
        for exc_new, exc_old in zip(second, first, strict=True)
        for new, old in zip(exc_new.frames, exc_old.frames, strict=True)
    )


# -- what Python and the bridge write in place of what they leave out ----------------------------


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are 3.11+")
def test_members_past_max_group_depth_are_no_exception() -> None:
    group: BaseException = ValueError("the real leaf error")
    for level in range(12):
        group = ExceptionGroup(f"level {level}", [group])  # type: ignore[list-item]  # noqa: F821
    text = _text(_raise(group))
    assert "... (max_group_depth is 10)" in text
    (parsed,) = parse_stacktrace(text)
    messages = []
    while parsed.children:
        assert len(parsed.children) == 1
        (parsed,) = parsed.children
        messages.append(parsed.message)
    # As deep as the text shows: the groups Python printed, none made of the marker line.
    assert messages == [f"level {level}" for level in range(10, 1, -1)]
    assert parsed.is_group


def test_the_frames_left_out_of_a_deep_stack_are_no_frame() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/a.py", line 1, in a\n'
        '  File "/srv/app/b.py", line 2, in b\n'
        "  [2904 frames omitted]\n"
        '  File "/srv/app/c.py", line 3, in c\n'
        "ValueError: deep\n"
    )
    (parsed,) = parse_stacktrace(text)
    assert [f.function for f in parsed.frames] == ["a", "b", "c"]
    assert (parsed.type, parsed.message) == ("ValueError", "deep")


# -- a message that holds a traceback ----------------------------------------------------------


class CommandFailed(Exception):
    pass


def _fake_chain() -> BaseException:
    message = (
        "bad\n\nDuring handling of the above exception, another exception occurred:\n\n"
        'Traceback (most recent call last):\n  File "fake.py", line 1, in x\nOSError: fake'
    )
    return _raise(ValueError(message))


def _format_exc_in_message() -> BaseException:
    try:
        try:
            try:
                _level_one()
            except KeyError as exc:
                raise ValueError("inner wrap") from exc
        except ValueError:
            raise CommandFailed("batch failed, details:\n" + traceback.format_exc())  # noqa: B904
    except CommandFailed as exc:
        return exc
    raise AssertionError("unreachable")


_CHILD_STDERR = """\
Traceback (most recent call last):
  File "<string>", line 6, in <module>
  File "<string>", line 4, in query
sqlite3.OperationalError: no such table: report_rows

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "<string>", line 8, in <module>
RuntimeError: report query failed
"""


def _child_stderr_in_message() -> BaseException:
    error = _raise(CommandFailed(f"report job exited 1:\n{_CHILD_STDERR}"))
    if sys.version_info >= (3, 11):
        error.add_note("job 7")  # printed after the message
    return error


def _group_box_in_message() -> BaseException:
    """probe 2026-12-05, third round: a message that echoes a group's box drew a member."""
    try:
        raise ValueError(
            "could not parse row:\n+-+---------------- 1 ----------------\n  | RuntimeError: x"
        )
    except ValueError as exc:
        return exc


@pytest.mark.parametrize(
    ("make", "chain"),
    [
        (_fake_chain, [("ValueError", None)]),
        (
            _format_exc_in_message,
            [("KeyError", None), ("ValueError", "cause"), ("CommandFailed", "context")],
        ),
        (_child_stderr_in_message, [("CommandFailed", None)]),
    ],
)
def test_a_traceback_inside_the_raised_message_is_message(
    make: Callable[[], BaseException], chain: list[tuple[str, str | None]]
) -> None:
    from otel_sentry_bridge.capture.traceback_text import stacktrace

    error = make()
    for text in (_text(error), stacktrace(error)):  # OTel's record_exception, our own
        parsed = parse_stacktrace(text, message=str(error))
        assert parsed == ParseCache()(text, str(error))
        assert [(split_type(e.type)[1], e.chained) for e in parsed] == chain
        raised = parsed[-1]
        notes = "".join(f"\n{note}" for note in getattr(error, "__notes__", ()))
        assert raised.message == (str(error) + notes).strip("\n")
        assert raised.frames  # the raised exception keeps its own frames, and none is made up
        assert all(frame.path == __file__ for exc in parsed for frame in exc.frames)
    # The text alone reads as it always did: a chain printed by Python looks just the same.
    assert len(parse_stacktrace(_text(error))) > len(chain)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are 3.11+")
def test_a_nested_groups_own_source_lines_are_no_exception_line() -> None:
    inner = _raise(ExceptionGroup("inner", [TypeError("t")]))  # noqa: F821
    outer = _raise(ExceptionGroup("outer", [inner]))  # type: ignore[list-item]  # noqa: F821
    text = _text(outer)
    assert "    |     raise exc\n" in text  # the nested group's frame, with its source line
    (parsed,) = parse_stacktrace(text)
    (nested,) = parsed.children
    assert (nested.type, nested.message, nested.is_group) == ("ExceptionGroup", "inner", True)
    assert [(f.function, f.source_line) for f in nested.frames] == [("_raise", "raise exc")]
    assert [c.type for c in nested.children] == ["TypeError"]


def test_a_group_box_inside_the_raised_message_is_message() -> None:
    from otel_sentry_bridge.capture.traceback_text import stacktrace

    error = _group_box_in_message()
    for text in (_text(error), stacktrace(error)):
        parsed = parse_stacktrace(text, message=str(error))
        assert parsed == ParseCache()(text, str(error))
        (raised,) = parsed
        assert (raised.message, raised.is_group, raised.children) == (str(error), False, [])

"""select_events: which span events become Sentry events, and which error each one is."""

from __future__ import annotations

from typing import Any

from otel_sentry_bridge.convert.model import EventView, SpanView
from otel_sentry_bridge.convert.select import select_events

STACK = 'Traceback (most recent call last):\n  File "/app/x.py", line 3, in f\nValueError: bad\n'


def _exception(at: int, event_id: str | None = None) -> EventView:
    attributes = {"exception.type": "ValueError", "exception.message": "bad"}
    attributes["exception.stacktrace"] = STACK
    if event_id:
        attributes["sentry.event_id"] = event_id
    return EventView("exception", at, attributes)


def _span(*events: EventView) -> SpanView:
    return SpanView(trace_id=1, span_id=2, name="s", events=events)


def test_our_copy_of_an_exception_replaces_the_anonymous_one() -> None:
    (selected,) = select_events(_span(_exception(1), _exception(2, "a" * 32)))
    assert selected.identity.capture_id == "a" * 32


def test_two_captures_are_two_errors_even_with_one_signature() -> None:
    chosen = select_events(_span(_exception(1, "a" * 32), _exception(2, "b" * 32)))
    assert [s.identity.capture_id for s in chosen] == ["a" * 32, "b" * 32]


def test_log_events_count_only_when_marked_for_sending() -> None:
    breadcrumb = EventView("log", 1, {"log.message": "hello"})
    message = EventView("log", 2, {"log.message": "failed", "sentry.send": True})
    (selected,) = select_events(_span(breadcrumb, message))
    assert selected.event is message


def test_selection_is_pure_and_repeatable() -> None:
    span = _span(_exception(1), _exception(2, "a" * 32))
    assert select_events(span) == select_events(span)


def test_a_stack_trace_that_is_no_text_is_not_parsed() -> None:
    """probe 2026-12-05: an int or a list printed as text read as made-up exceptions."""
    for junk in (12345, ["Traceback (most recent call last):", "KeyError: 'x'"]):
        attributes = {"exception.type": "ValueError", "exception.message": "bad"}
        attributes["exception.stacktrace"] = junk  # type: ignore[assignment]
        (selected,) = select_events(_span(EventView("exception", 1, attributes)))
        assert selected.parsed == []


def test_a_stack_trace_too_deep_to_parse_keeps_its_event() -> None:
    """probe 2026-12-05, third round: a group nested 400 deep (another recorder's
    max_group_depth) raised RecursionError in the parser, and the event was dropped."""

    def too_deep(text: str, message: str | None = None) -> list[Any]:
        raise RecursionError

    (selected,) = select_events(_span(_exception(1)), too_deep)
    assert selected.parsed == []

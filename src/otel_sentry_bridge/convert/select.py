"""Which events of a span become Sentry events, and which error each one is. Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import attributes as attr
from .model import EventView, SpanView
from .stacktrace import ParsedException, parse_stacktrace

__all__ = ["Identity", "Selected", "Signature", "select_events", "text"]

# (exception type, message, innermost frame) identifies "the same exception" across the
# copies different recorders make of it, on one span or on a child and its parent.
Signature = tuple[str, str, str]


class Identity(NamedTuple):
    """Which error an event is. ``capture_id`` is the event id one of our captures (signal
    hook, log handler, Celery hook) gave it: two captures are two errors even when their
    signatures match (a loop logging the same template, the same exception type raised and
    caught twice). Copies recorded by other instrumentations carry no id: those are matched
    by ``signature`` to what was already reported."""

    signature: Signature
    capture_id: str | None


@dataclass(frozen=True)
class Selected:
    """A span event that becomes a Sentry event, with its parsed stack trace."""

    event: EventView
    parsed: list[ParsedException]
    identity: Identity


def text(value: Any) -> str:
    """An attribute value as text ("" for None)."""
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _innermost(parsed: list[ParsedException]) -> str:
    last = parsed[-1] if parsed else None
    if last is None or not last.frames:
        return ""
    frame = last.frames[-1]
    return f"{frame.path}:{frame.lineno}:{frame.function}"


def _signature(event: EventView, parsed: list[ParsedException]) -> Signature:
    if event.name == attr.LOG_EVENT:
        message = text(event.attributes.get(attr.LOG_MESSAGE))
        return ("log", text(event.attributes.get(attr.LOGGER)), message)
    return (
        text(event.attributes.get(attr.EXCEPTION_TYPE)),
        text(event.attributes.get(attr.EXCEPTION_MESSAGE)),
        _innermost(parsed),
    )


def _parse(stacktrace: str, message: str | None = None) -> list[ParsedException]:
    return parse_stacktrace(stacktrace, message=message)


def select_events(
    span: SpanView, parse: Callable[[str, str | None], list[ParsedException]] = _parse
) -> list[Selected]:
    """The span's events that become Sentry events, oldest first: one per capture of ours,
    and one per distinct exception recorded by anything else.

    The same exception recorded twice on one span (say our hook's copy and another
    instrumentation's ``record_exception``) is kept once, preferring the copy that carries our
    event id, so the id shown to the user is the one Sentry gets.
    """
    chosen: dict[object, Selected] = {}
    anonymous: dict[Signature, Signature] = {}  # copies without our id, by signature
    captured: set[Signature] = set()  # signatures of the captures chosen
    for event in span.events:
        if event.name == "exception":
            # The message tells where it starts in the text: one that holds a traceback
            # (a command's output, a wrapped error) is not read as more of the chain.
            stack = event.attributes.get(attr.EXCEPTION_STACKTRACE)
            try:
                parsed = parse(
                    # Only a text is a stack trace: an int or a list (an instrumentation's
                    # bug) printed as one would read as made-up exceptions.
                    stack if isinstance(stack, str) else "",
                    text(event.attributes.get(attr.EXCEPTION_MESSAGE)),
                )
            except RecursionError:  # a group nested past Python's stack: type and message
                parsed = []
        elif event.name == attr.LOG_EVENT and event.attributes.get(attr.SEND):
            parsed = []
        else:
            continue
        signature = _signature(event, parsed)
        capture_id = text(event.attributes.get(attr.EVENT_ID)) or None
        selected = Selected(event, parsed, Identity(signature, capture_id))
        if capture_id is None:
            if signature not in anonymous and signature not in captured:
                chosen[signature] = selected
                anonymous[signature] = signature
        elif capture_id not in chosen:
            if anonymous.pop(signature, None) is not None:
                del chosen[signature]  # our copy of the same exception replaces the other one
            chosen[capture_id] = selected
            captured.add(signature)
    return sorted(chosen.values(), key=lambda s: s.event.timestamp_ns)

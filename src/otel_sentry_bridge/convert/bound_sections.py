"""How each part of an event is bounded: the fields of frames, exceptions, breadcrumbs, log
entries and requests, and the handler of each kind of top-level section (:mod:`.schema`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..safe_repr import safe_repr, truncate
from .bound import (
    FRAMES_HEAD,
    FRAMES_TAIL,
    MAX_BREADCRUMBS,
    MAX_ITEMS,
    MAX_MESSAGE_CHARS,
    MAX_STRING_CHARS,
    MAX_TAG_CHARS,
    TRACE_ITEMS,
    Bound,
    Handler,
)
from .schema import SECTIONS, Kind
from .sealed import SealedFrame

__all__ = ["EVENT_FIELDS", "user_data"]

# Relay's tag key alphabet (found by probing StoreNormalizer): other keys are rejected.
_TAG_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:- ")


def _tag(key: Any, value: Any) -> tuple[str, str] | None:
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        key = safe_repr(key)
    if not isinstance(key, str) or not key or len(key) > MAX_TAG_CHARS:
        return None
    if not _TAG_KEY_CHARS.issuperset(key):
        return None
    if isinstance(value, bool):
        value = "True" if value else "False"
    elif isinstance(value, (int, float)):
        value = safe_repr(value)
    if not isinstance(value, str):
        return None  # None, containers, objects: not a tag value
    if "\n" in value:  # relay rejects newlines in tag values
        value = value.replace("\r\n", " ").replace("\n", " ")
    if not value.strip():
        return None
    return key, truncate(value, MAX_TAG_CHARS)


def _message(bound: Bound, value: Any) -> Any:
    if isinstance(value, Mapping):  # the legacy message interface is a logentry
        return logentry(bound, value)
    return bound.text(value, MAX_MESSAGE_CHARS)


def _logger(bound: Bound, value: Any) -> Any:
    if isinstance(value, str) and ("\n" in value or "\r" in value):
        # Relay rejects line breaks in a logger name (a logging.getLogger() name can hold any)
        value = value.replace("\r", " ").replace("\n", " ")
    return bound.text(value)


def _exception_text(bound: Bound, value: Any) -> Any:
    return bound.text(value, MAX_MESSAGE_CHARS)


def breadcrumbs(bound: Bound, value: Any) -> Any:
    def newest(bound: Bound, crumbs: Any) -> Any:
        if isinstance(crumbs, (list, tuple)) and len(crumbs) > MAX_BREADCRUMBS:
            crumbs = list(crumbs)[-MAX_BREADCRUMBS:]
        return bound.list_of(crumbs, crumb)

    if isinstance(value, (list, tuple)):
        return newest(bound, value)
    return bound.record(value, {"values": newest}, loose=True)


def crumb(bound: Bound, crumb: Any) -> Any:
    return bound.record(crumb, _CRUMB_FIELDS, loose=False)


def exception_value(bound: Bound, value: Any) -> Any:
    return bound.record(value, _EXCEPTION_FIELDS, loose=False)


def stacktrace(bound: Bound, value: Any) -> Any:
    return bound.record(value, _STACKTRACE_FIELDS, loose=False)


def frames(bound: Bound, frames: Any) -> Any:
    if isinstance(frames, (list, tuple)) and len(frames) > FRAMES_HEAD + FRAMES_TAIL:
        # Huge recursions: the entry points and the frames that raised tell the story.
        frames = [*frames[:FRAMES_HEAD], *frames[-FRAMES_TAIL:]]
    return bound.list_of(frames, frame)


def frame(bound: Bound, frame: Any) -> Any:
    if type(frame) is SealedFrame:  # bounded when it was made: only its vars are new
        bound.size += frame.units
        bound.budget -= frame.walked
        variables = frame.get("vars")
        if variables is None:
            return frame
        bound.size += 8  # "vars": and a comma
        new = bound.bag(variables)
        return frame if new is variables else frame.with_vars(new)
    return bound.record(frame, _FRAME_FIELDS, loose=False)


def context_lines(bound: Bound, lines: Any) -> Any:
    return bound.bag(lines, 0, MAX_STRING_CHARS, MAX_ITEMS, 1)


def contexts(bound: Bound, contexts: Any) -> Any:
    return bound.record(contexts, {"trace": trace}, loose=False, default=context)


def trace(bound: Bound, value: Any) -> Any:
    """``contexts.trace``: bounded like any context, but with an item budget of its own,
    so that a huge event walked before it can never turn it into a placeholder."""
    saved, saved_cap = bound.budget, bound.cap
    bound.budget = max(saved, TRACE_ITEMS)
    bound.cap = bound.size + TRACE_ITEMS * MAX_STRING_CHARS
    try:
        return bound.bag(value)
    finally:
        bound.budget, bound.cap = min(saved, bound.budget), saved_cap


def context(bound: Bound, value: Any) -> Any:
    """One context: a databag of its own (an object, as Sentry wants it)."""
    return bound.bag(value)


def logentry(bound: Bound, value: Any) -> Any:
    return bound.record(value, _LOGENTRY_FIELDS, loose=False)


def request(bound: Bound, value: Any) -> Any:
    return bound.record(value, _REQUEST_FIELDS, loose=False)


def tags(bound: Bound, tags: Any) -> Any:
    """Keys over 200 chars (and keys or values Sentry rejects) dropped, values cut.

    Sentry would drop a tag with an empty or odd key, or an empty, multi-line or
    non-scalar value, and flag the event: a newline becomes a space, the rest go.
    """
    if isinstance(tags, Mapping):
        pairs = list(tags.items())
    elif isinstance(tags, (list, tuple)):
        pairs = [
            (p[0], p[1]) if isinstance(p, (list, tuple)) and len(p) == 2 else (None, None)
            for p in tags
        ]
    else:
        return bound.bag(tags)
    kept: list[tuple[str, str]] = []
    unchanged = type(tags) is dict or type(tags) is list
    for key, value in pairs:
        tag = _tag(key, value)
        if tag is None:
            unchanged = False
            continue
        unchanged = unchanged and tag[0] is key and tag[1] is value
        kept.append(tag)
        bound.size += len(tag[0]) + len(tag[1]) + 6
    bound.size += 2
    if unchanged and (type(tags) is dict or all(type(p) is list for p in tags)):
        return tags
    if isinstance(tags, Mapping):
        return dict(kept)
    return [list(tag) for tag in kept]


_CRUMB_FIELDS: dict[str, Handler] = {
    "data": lambda b, v: b.bag(v),
    "message": lambda b, v: b.text(v, MAX_STRING_CHARS),
}
_FRAME_FIELDS: dict[str, Handler] = {
    "vars": lambda b, v: b.bag(v),
    "pre_context": context_lines,
    "post_context": context_lines,
}
_STACKTRACE_FIELDS: dict[str, Handler] = {"frames": frames}
_EXCEPTION_FIELDS: dict[str, Handler] = {
    "type": Bound.opaque,  # kept whole: it is what Sentry groups by
    "value": _exception_text,
    "stacktrace": stacktrace,
    "mechanism": lambda b, v: b.bag(v),
}
_LOGENTRY_FIELDS: dict[str, Handler] = {
    "message": _message,
    "formatted": _message,
    "params": lambda b, v: b.bag(v),
}
_REQUEST_FIELDS: dict[str, Handler] = {
    # A raw body is worth more than 1024 characters; nested values are ordinary data.
    "data": lambda b, v: b.text(v, MAX_MESSAGE_CHARS) if isinstance(v, str) else b.bag(v),
    "url": lambda b, v: b.text(v, MAX_MESSAGE_CHARS),
    "query_string": lambda b, v: (
        b.text(v, MAX_MESSAGE_CHARS) if isinstance(v, str) else b.bag(v, 1)
    ),
}
_USER_FIELDS: dict[str, Handler] = {"data": lambda b, v: b.bag(v)}


def user_data(bound: Bound, value: Any) -> Any:
    return bound.bag(value)


def _exceptions(bound: Bound, value: Any) -> Any:
    return bound.values(value, exception_value)


def _user(bound: Bound, value: Any) -> Any:
    return bound.record(value, _USER_FIELDS, loose=False)


# How each kind of top-level section is bounded (:mod:`.schema` says which key is which).
_BY_KIND: dict[Kind, Handler] = {
    Kind.IDENTITY: Bound.opaque,
    Kind.STRUCTURE: Bound.loose,
    Kind.LOGGER: _logger,
    Kind.MESSAGE: _message,
    Kind.LOGENTRY: logentry,
    Kind.EXCEPTIONS: _exceptions,
    Kind.BREADCRUMBS: breadcrumbs,
    Kind.REQUEST: request,
    Kind.CONTEXTS: contexts,
    Kind.USER: _user,
    Kind.TAGS: tags,
    Kind.DATA: user_data,
}
# Each declared top-level key's handler; an undeclared key is user data (``user_data``).
EVENT_FIELDS: dict[str, Handler] = {key: _BY_KIND[kind] for key, kind in SECTIONS.items()}

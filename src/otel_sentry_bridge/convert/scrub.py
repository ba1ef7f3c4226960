"""Scrub a whole Sentry event: values under sensitive keys become ``[Filtered]``.

:func:`scrub_event` never mutates its input: it returns a new event that shares every part it
did not need to change with the input (copy-on-write), or the input itself when nothing was
sensitive. Events are built from data other threads still hold (breadcrumbs live in the
capture store), so writing into them would be a data race. It runs on the worker thread for
every event: one pass, no deep copies, key decisions cached, and an object that appears in many
places scrubbed once. Which section gets which treatment is declared by :mod:`.schema`; the
text rules are :mod:`.scrubber`'s, the per-section ones :mod:`.scrub_sections`'.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..safe_repr import safe_repr
from . import scrub_sections as section
from .schema import Kind, kind_of
from .scrubber import (
    DEFAULT_DENYLIST,
    FILTERED,
    MAX_TEXT_CHARS,
    Scrubber,
    scrubber_for,
    value_text,
)

__all__ = [
    "DEFAULT_DENYLIST",
    "FILTERED",
    "MAX_TEXT_CHARS",
    "Scrubber",
    "Walk",
    "safe_repr",
    "scrub_event",
    "scrubber_for",
    "value_text",
]

_log = logging.getLogger("otel_sentry_bridge")
_CYCLE = "<cycle>"  # same placeholder json_dumps uses
_MAX_DEPTH = 20  # deeper containers are replaced by FILTERED: unscanned data must not leak


class Walk:
    """One scrub of one event: the scrubber, the containers on the current path, and what
    was already scrubbed."""

    __slots__ = ("done", "on_path", "s")

    def __init__(self, scrubber: Scrubber) -> None:
        self.s = scrubber
        self.on_path: set[int] = set()
        # id -> (object, result): data that holds one object in many places (a DAG: 50 wide
        # and 8 deep is 50**8 paths) is scrubbed, and copied, once. The object is kept so
        # that its id cannot be reused by another one during the walk.
        self.done: dict[int, tuple[Any, Any]] = {}

    def bag(self, value: Any, depth: int = 0) -> Any:
        """Any user data: sensitive keys at any depth filtered, strings checked for URLs."""
        kind = type(value)
        if kind is str:
            return self.once(value, depth, _bag_text) if "@" in value else value
        if kind is dict:
            return self.once(value, depth, _bag_mapping)
        if kind is list or kind is tuple:
            return self.once(value, depth, _bag_sequence)
        if value is None or kind is int or kind is float or kind is bool:
            return value
        if isinstance(value, str):
            return self.once(value, depth, _bag_text)
        if isinstance(value, Mapping):
            return self.once(value, depth, _bag_mapping)
        if isinstance(value, (list, tuple)):
            return self.once(value, depth, _bag_sequence)
        if isinstance(value, (set, frozenset)):
            return self.once(list(value), depth, _bag_sequence)
        if isinstance(value, (int, float)):
            return value
        # Any other object would be sent as its repr (by the size limits, after this): make
        # that text now, and scrub it ("Creds(password='x')").
        return self.s.free_text(safe_repr(value, MAX_TEXT_CHARS))

    def once(self, value: Any, depth: int, scrub: Callable[[Walk, Any, int], Any]) -> Any:
        entry = self.done.get(id(value))
        if entry is not None and entry[0] is value:
            return entry[1]
        result = scrub(self, value, depth)
        self.done[id(value)] = (value, result)
        return result

    def mapping(
        self,
        value: Mapping[Any, Any],
        depth: int,
        child: Callable[[Any, int], Any],
        *,
        sensitive: Callable[[object], bool] | None = None,
    ) -> Any:
        if depth >= _MAX_DEPTH:
            return FILTERED
        ident = id(value)
        if ident in self.on_path:
            return _CYCLE
        is_sensitive = sensitive or self.s.is_sensitive
        cache = self.s._cache if sensitive is None else {}
        plain = child == self.bag  # its strings only need the "@" check
        self.on_path.add(ident)
        try:
            out: dict[Any, Any] | None = None
            for key, item in list(value.items()):
                hit = cache.get(key) if type(key) is str else None  # the usual case, inline
                if hit if hit is not None else is_sensitive(key):
                    new = FILTERED
                elif plain and type(item) is str and "@" not in item:  # nothing to find
                    continue
                else:
                    new = child(item, depth + 1)
                if new is not item:
                    if out is None:
                        out = dict(value)
                    out[key] = new
        finally:
            self.on_path.discard(ident)
        return value if out is None else out

    def sequence(self, value: Any, depth: int, child: Callable[[Any, int], Any]) -> Any:
        if depth >= _MAX_DEPTH:
            return FILTERED
        ident = id(value)
        if ident in self.on_path:
            return _CYCLE
        self.on_path.add(ident)
        try:
            out: list[Any] | None = None
            for index, item in enumerate(list(value)):
                new = child(item, depth + 1)
                if new is not item:
                    if out is None:
                        out = list(value)
                    out[index] = new
        finally:
            self.on_path.discard(ident)
        return value if out is None else out


def _bag_text(_walk: Walk, text: str, _depth: int) -> str:
    return value_text(text)


def _bag_mapping(walk: Walk, value: Mapping[Any, Any], depth: int) -> Any:
    return walk.mapping(value, depth, walk.bag)


def _bag_sequence(walk: Walk, value: Any, depth: int) -> Any:
    return walk.sequence(value, depth, walk.bag)


# How each kind of section is scrubbed; None: passed through.
_SCRUB: dict[Kind, Callable[[Walk, Any], Any] | None] = {
    Kind.IDENTITY: None,
    Kind.STRUCTURE: None,
    Kind.LOGGER: None,
    Kind.MESSAGE: section.logentry,
    Kind.LOGENTRY: section.logentry,
    Kind.EXCEPTIONS: section.exceptions,
    Kind.BREADCRUMBS: section.breadcrumbs,
    Kind.REQUEST: section.request,
    Kind.CONTEXTS: section.contexts,
    Kind.USER: section.user,
    Kind.TAGS: Walk.bag,
    Kind.DATA: Walk.bag,
}


def scrub_event(event: dict[str, Any], scrubber: Scrubber) -> dict[str, Any]:
    """``event`` with values under sensitive keys replaced by ``[Filtered]``.

    Looks at ``request`` (headers, cookies, query string, body, env, url), ``extra``,
    breadcrumb ``data`` and ``key=value`` pairs in breadcrumb messages, the message and
    arguments of ``logentry``, exception messages and frame ``vars``, ``contexts`` (never
    ``contexts.trace``), ``user`` (never id/username/email/ip), ``tags``, and any top-level
    key that is not one of the event's own fields. Header values that are credentials
    (``Bearer …``/``Basic …``) and URL passwords or DSN keys anywhere in those places are
    filtered whatever their key.

    Never mutates ``event``: returns a new dict sharing unchanged parts, or ``event`` itself
    when nothing matched. Never raises, and fails closed: a section that cannot be scrubbed
    (hostile objects, nesting past Python's stack) is not sent as it was; an exception keeps
    only its type and scrubbed message, anything else is removed.
    """
    if not isinstance(event, dict):
        return event
    walk = Walk(scrubber)
    out: dict[str, Any] | None = None
    for name, value in list(event.items()):
        scrub = _SCRUB[kind_of(name)]
        if scrub is None or value is None:
            continue
        try:
            new = scrub(walk, value)
        except Exception:  # RecursionError too: user data can be anything
            _log.debug("otel-sentry-bridge: could not scrub %r; not sent", name, exc_info=True)
            walk.on_path.clear()
            walk.done.clear()
            new = _fallback(name, value, scrubber)
        if new is not value:
            if out is None:
                out = dict(event)
            if new is _REMOVED:
                del out[name]
            else:
                out[name] = new
    return event if out is None else out


_REMOVED: Any = object()


def _fallback(name: object, value: Any, scrubber: Scrubber) -> Any:
    """What is sent of a section whose scrubbing failed: for exceptions, each one's type and
    scrubbed message (what identifies the error); for anything else, nothing."""
    if name not in ("exception", "threads"):
        return _REMOVED
    try:
        values: Any = value.get("values") if isinstance(value, Mapping) else value
        bare = []
        for item in list(values):
            if not isinstance(item, Mapping):
                continue
            kind, text = item.get("type"), item.get("value")
            entry: dict[str, Any] = {"type": kind if isinstance(kind, str) else "Error"}
            if isinstance(text, str):
                entry["value"] = scrubber.free_text(str.__str__(text))
            bare.append(entry)
        return {"values": bare} if bare else _REMOVED
    except Exception:
        return _REMOVED

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
from .scrub_walk import Walk
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


# Sections the size limits treat as structure, but which a before_send may fill with
# anything: scrubbed all the same.
_SCRUB_BY_NAME: dict[str, Callable[[Walk, Any], Any]] = {
    "modules": Walk.bag,
    "spans": section.spans,
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
        scrub = _SCRUB_BY_NAME.get(name) if type(name) is str else None
        scrub = scrub or _SCRUB[kind_of(name)]
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

"""Truncate a Sentry event to the protocol's limits, so the server never rejects or cuts it.

:func:`enforce_limits` is pure and never mutates its input: it returns a new event sharing
every part it did not need to change (copy-on-write), or the input itself when it already fits.
It runs on the worker thread for every event, so the common case is one pass that bounds every
string and container while adding up an upper bound of the JSON size; only when that bound
exceeds ``max_bytes`` is the event actually encoded and trimmed.

The limits themselves are :mod:`.bound`'s; the order parts are given up in, :mod:`.trim`'s.
"""

from __future__ import annotations

import logging
from typing import Any

from ..deliver.envelope import json_dumps
from .bound import (
    MAX_BREADCRUMBS,
    MAX_EVENT_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_TAG_CHARS,
    MIN_ITEM_BUDGET,
    UNIT,
    Bound,
)
from .bound_sections import EVENT_FIELDS, user_data
from .trim import skeleton, trim

__all__ = [
    "ITEM_BUDGET",
    "MAX_BREADCRUMBS",
    "MAX_EVENT_BYTES",
    "MAX_MESSAGE_CHARS",
    "MAX_TAG_CHARS",
    "UNIT",
    "bound_section",
    "enforce_limits",
]

_log = logging.getLogger("otel_sentry_bridge")

# The item budget of the walk over an event within the default size limit.
ITEM_BUDGET = max(MAX_EVENT_BYTES, MIN_ITEM_BUDGET)


def enforce_limits(event: dict[str, Any], *, max_bytes: int = MAX_EVENT_BYTES) -> dict[str, Any]:
    """``event`` within Sentry's size limits (see the module docstring).

    When the bounded event still encodes to more than ``max_bytes``, parts are given up in
    this order until it fits: frame ``vars`` (innermost frames last), breadcrumbs (oldest
    first), source context lines, ``extra``, ``request.data``, ``contexts`` other than
    ``trace``; then, for odd events only, any other field. ``event_id``, ``timestamp``,
    ``level``, ``platform``, exception ``type``/``value`` and ``contexts.trace`` are always
    kept, so the result can only exceed ``max_bytes`` when those alone do.

    Never mutates ``event``; returns it unchanged when it already fits. Never raises.
    """
    if not isinstance(event, dict):
        return event
    try:
        bound = Bound(
            budget=max(max_bytes, MIN_ITEM_BUDGET), cap=4 * max(max_bytes, MAX_EVENT_BYTES)
        )
        out = bound.record(event, EVENT_FIELDS, loose=True, default=user_data)
        if bound.size * UNIT <= max_bytes:
            return out  # type: ignore[no-any-return]
        size = len(json_dumps(out))
        if size <= max_bytes:
            return out  # type: ignore[no-any-return]
        return trim(out, size, max_bytes)
    except Exception:  # user data can be anything: fall back to the bare essentials
        _log.debug("otel-sentry-bridge: could not bound the event", exc_info=True)
        return skeleton(event)


def bound_section(name: str, value: Any) -> tuple[Any, int, int]:
    """One top-level section as :func:`enforce_limits` bounds it inside an event of the
    default size limit, with its share of the walk: the size bound in units (its key
    included, not the event's braces) and the item budget it took. The same as the whole
    event's walk gives it as long as the event's total stays within the limit and the budget
    (:mod:`..deliver.section_memo` checks that). Raises what the walk raises."""
    bound = Bound(budget=ITEM_BUDGET, cap=4 * MAX_EVENT_BYTES)
    out = bound.record({name: value}, EVENT_FIELDS, loose=True, default=user_data)
    return out[name], bound.size - 2, ITEM_BUDGET - bound.budget

"""One pass over an event that bounds every string and container to Sentry's limits and adds
up an upper bound of its JSON size (:class:`Bound`). Which part of an event gets which limits
is :mod:`.bound_sections`'; giving up parts to fit the byte budget is :mod:`.trim`'s.

Limits (Sentry's, https://develop.sentry.dev/sdk/data-handling/ and relay's trimming):
``message``/``logentry`` 8192 chars, exception ``value`` 8192 chars (``type`` kept whole), tag
keys/values 200 chars, 100 breadcrumbs (the newest), databags (``extra``, ``contexts``, frame
``vars``, breadcrumb ``data``, ``request``, ``user``) with strings of 1024 chars, 50 items per
container and 5 levels, 100 frames per stacktrace (the first and last 50), 1 MiB per event.
Truncated strings end with ``...``.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ..deliver.envelope import json_dumps
from ..safe_repr import safe_repr, truncate

__all__ = [
    "FRAMES_HEAD",
    "FRAMES_TAIL",
    "MAX_BREADCRUMBS",
    "MAX_DEPTH",
    "MAX_EVENT_BYTES",
    "MAX_ITEMS",
    "MAX_MESSAGE_CHARS",
    "MAX_STRING_CHARS",
    "MAX_TAG_CHARS",
    "Bound",
    "Handler",
]

MAX_EVENT_BYTES = 1024 * 1024
MAX_MESSAGE_CHARS = 8192
MAX_TAG_CHARS = 200
MAX_BREADCRUMBS = 100
MAX_STRING_CHARS = 1024
MAX_ITEMS = 50
MAX_DEPTH = 5
FRAMES_HEAD = FRAMES_TAIL = 50

# Structural data outside the databags (sdk, modules, fingerprint, ...): bounded generously,
# only so that nothing is unbounded.
_LOOSE_STRING = 8192
_LOOSE_ITEMS = 1000
_LOOSE_DEPTH = 10
CYCLE = "<cycle>"
_TOO_LARGE = "<too large>"


# The size bound is counted in units of at most 6 bytes: one per character of a string (JSON
# writes at most 6 bytes for one, as in \u001f; UTF-8 takes at most 4; a lone surrogate
# becomes U+FFFD, 3), one per quote, brace, comma or colon. Typical events are far below 1 MiB
# even so, and counting with len() inline is what keeps the pass cheap.
UNIT = 6


Handler = Callable[["Bound", Any], Any]


class Bound:
    """One pass over one event: bounded copies where needed, plus a running size bound."""

    __slots__ = ("budget", "cap", "on_path", "size")

    def __init__(self, budget: int, cap: int) -> None:
        self.size = 0
        # Items the walk may still visit, and the size bound (in units) past which it stops
        # copying. Data that shares one object many times over (a DAG, 50 wide and 5 deep, is
        # 300 million paths) would otherwise take unbounded time and memory (a truncated copy
        # per path), and so would encoding the result to measure it. Past either, databag
        # containers become a placeholder. Both are far above what fits in an event: the
        # cap is 4 MiB of characters for a 1 MiB event, so the transient peak stays ~50 MB.
        self.budget = budget
        self.cap = cap
        self.on_path: set[int] = set()

    # -- leaves ---------------------------------------------------------------------------

    def text(self, value: Any, limit: int = MAX_STRING_CHARS) -> Any:
        """A string field: truncated; anything else is bounded as data."""
        if type(value) is str:
            if len(value) > limit:
                value = truncate(value, limit)
            self.size += len(value) + 2
            return value
        return self.bag(value)

    def opaque(self, value: Any) -> Any:
        """A protected field: never changed, only measured."""
        if type(value) is str:
            self.size += len(value) + 2
        elif value is None or type(value) in (bool, float):
            self.size += 4
        else:  # exact bytes, hence also a bound in units
            self.size += len(json_dumps(value))
        return value

    def key(self, key: Any, limit: int) -> str:
        text = truncate(key if type(key) is str else _key_text(key), limit)
        self.size += len(text) + 4  # quotes, ":" and ","
        return text

    # -- containers -------------------------------------------------------------------------

    def bag(
        self,
        value: Any,
        depth: int = 0,
        limit: int = MAX_STRING_CHARS,
        items: int = MAX_ITEMS,
        max_depth: int = MAX_DEPTH,
    ) -> Any:
        """Any data: strings cut at ``limit``, containers at ``items`` entries and
        ``max_depth`` levels (deeper ones become a short repr), odd objects become strings."""
        kind = type(value)
        if kind is str:
            return self.text(value, limit)
        if value is None or kind is bool or kind is float:
            self.size += 4  # "false"; a float's repr is at most 24 bytes
            return value
        if kind is int:
            bits = value.bit_length()
            if bits > 3000:  # json_dumps would print 900+ digits
                return self.text(f"<int with {bits} bits>", limit)
            self.size += bits // 18 + 1  # ~0.3 digits per bit, 6 bytes per unit
            return value
        if kind is dict:
            return self._mapping(value, depth, limit, items, max_depth)
        if kind is list or kind is tuple:
            return self._sequence(value, depth, limit, items, max_depth)
        if isinstance(value, Mapping):
            return self._mapping(value, depth, limit, items, max_depth)
        if isinstance(value, (list, tuple, set, frozenset)):
            return self._sequence(value, depth, limit, items, max_depth)
        if isinstance(value, (bytes, bytearray)):
            # Decoded as sentry-python's serialiser does: readable, and cheaper than a repr.
            return self.text(bytes(value[: limit * 4]).decode("utf-8", "replace"), limit)
        if isinstance(value, str):  # a str subclass: as a plain str (it may override anything)
            return self.text(str.__str__(value), limit)
        if isinstance(value, (bool, int, float)):
            return self.bag(_plain_number(value), depth, limit, items, max_depth)
        return self.text(safe_repr(value, limit), limit)

    def _mapping(
        self, value: Mapping[Any, Any], depth: int, limit: int, items: int, max_depth: int
    ) -> Any:
        if self.budget < 0 or self.size > self.cap:
            self.size += 20
            return {_TOO_LARGE: "..."}  # still an object, as Sentry may require here
        if depth >= max_depth:
            self.budget -= SHORT_REPR_ITEMS
            return self.text(_short_repr(value, limit), limit)
        if type(value) is dict and _FLAT_MIN < len(value) <= items:
            keys = _flat_size(value, limit)
            if keys >= 0:
                values = _flat_size(value.values(), limit)
                if values >= 0:  # frame vars, headers: nothing to cut
                    self.budget -= len(value)
                    self.size += keys + values + 6 * len(value) + 2
                    return value
        ident = id(value)
        if ident in self.on_path:
            return self.text(CYCLE)
        self.on_path.add(ident)
        try:
            entries = list(value.items())
            self.budget -= min(len(entries), items)
            changed = type(value) is not dict or len(entries) > items
            out: dict[str, Any] = {}
            size = 2
            for key, item in entries[:items]:
                # Short plain strings inline: they are nearly all of an event.
                if type(key) is str and len(key) <= limit:
                    size += len(key) + 4
                    new_key = key
                else:
                    new_key = self.key(key, limit)
                    changed = True
                if type(item) is str and len(item) <= limit:
                    size += len(item) + 2
                    new = item
                else:
                    new = self.bag(item, depth + 1, limit, items, max_depth)
                    changed = changed or new is not item
                out[new_key] = new
            self.size += size
        finally:
            self.on_path.discard(ident)
        return out if changed else value

    def _sequence(self, value: Any, depth: int, limit: int, items: int, max_depth: int) -> Any:
        if self.budget < 0 or self.size > self.cap:
            self.size += 15
            return [_TOO_LARGE]
        if depth >= max_depth:
            self.budget -= SHORT_REPR_ITEMS
            return self.text(_short_repr(value, limit), limit)
        if type(value) is list and _FLAT_MIN < len(value) <= items:
            flat = _flat_size(value, limit)
            if flat >= 0:  # source context lines: nothing to cut
                self.budget -= len(value)
                self.size += flat + 3 * len(value) + 2
                return value
        ident = id(value)
        if ident in self.on_path:
            return self.text(CYCLE)
        self.on_path.add(ident)
        try:
            entries = list(value)
            self.budget -= min(len(entries), items)
            # Tuples encode as lists already; sets and subclasses become plain lists.
            changed = type(value) not in (list, tuple) or len(entries) > items
            out: list[Any] = []
            size = 2
            for item in entries[:items]:
                if type(item) is str and len(item) <= limit:
                    size += len(item) + 3
                    out.append(item)
                    continue
                new = self.bag(item, depth + 1, limit, items, max_depth)
                changed = changed or new is not item
                out.append(new)
                size += 1
            self.size += size
        finally:
            self.on_path.discard(ident)
        return out if changed else value

    def loose(self, value: Any) -> Any:
        return self.bag(value, 0, _LOOSE_STRING, _LOOSE_ITEMS, _LOOSE_DEPTH)

    def record(
        self,
        value: Any,
        fields: Mapping[str, Handler],
        *,
        loose: bool,
        default: Handler | None = None,
    ) -> Any:
        """A known object: ``fields`` get their own handler, other keys ``default`` or are
        bounded as data (``loose``: with the generous structural limits)."""
        if not isinstance(value, Mapping):
            return self.loose(value) if loose else self.bag(value)
        ident = id(value)
        if ident in self.on_path:
            return self.text(CYCLE)
        self.on_path.add(ident)
        try:
            entries = list(value.items())
            changed = type(value) is not dict
            out: dict[str, Any] = {}
            limit = _LOOSE_STRING if loose else MAX_STRING_CHARS
            size = 2
            for key, item in entries:
                if type(key) is str and len(key) <= limit:
                    size += len(key) + 4
                    new_key = key
                    handler = fields.get(key, default)
                else:
                    new_key = self.key(key, limit)
                    changed = True
                    handler = default
                kind = type(item)
                if handler is not None:
                    new = handler(self, item)
                elif kind is str and len(item) <= limit:
                    size += len(item) + 2
                    new = item
                elif (
                    item is None
                    or kind is bool
                    or kind is float
                    or (kind is int and item.bit_length() < 64)
                ):  # lineno, in_app, timestamp, ...
                    size += 4
                    new = item
                elif loose:
                    new = self.loose(item)
                else:
                    new = self.bag(item, 1)
                changed = changed or new is not item
                out[new_key] = new
            self.size += size
        finally:
            self.on_path.discard(ident)
        return out if changed else value

    def values(self, value: Any, each: Handler) -> Any:
        """``{"values": [...]}`` (or a bare list): ``each`` per item."""
        if isinstance(value, (list, tuple)):
            return self.list_of(value, each)
        return self.record(value, {"values": lambda b, v: b.list_of(v, each)}, loose=True)

    def list_of(self, value: Any, each: Handler) -> Any:
        if not isinstance(value, (list, tuple)):
            return self.loose(value)
        ident = id(value)
        if ident in self.on_path:
            return self.text(CYCLE)
        self.on_path.add(ident)
        try:
            changed = type(value) not in (list, tuple)
            out: list[Any] = []
            for item in list(value):
                new = each(self, item)
                changed = changed or new is not item
                out.append(new)
            self.size += 2 + len(out)
        finally:
            self.on_path.discard(ident)
        return out if changed else value


def _flat_size(strings: Collection[Any], limit: int) -> int:
    """Total length of ``strings`` when all are plain str of at most ``limit`` chars, else -1.

    C-level loops (map, set, max): for the larger flat lists and dicts of short strings an
    event is mostly made of, cheaper than looking at each item in Python.
    """
    if not strings:
        return 0
    if set(map(type, strings)) != _ONLY_STR:
        return -1
    lengths = list(map(len, strings))
    return sum(lengths) if max(lengths) <= limit else -1


_ONLY_STR = {str}
_FLAT_MIN = 8  # below this, the Python loop is as fast as the C calls' setup
MIN_ITEM_BUDGET = 1_000_000
TRACE_ITEMS = 10_000
SHORT_REPR_ITEMS = 111  # what _shallow may look at: 1 + 10 + 10 * 10
_shallow = reprlib.Repr()
_shallow.maxlevel = 2
_shallow.maxlist = _shallow.maxtuple = _shallow.maxset = _shallow.maxdict = 10
_shallow.maxstring = _shallow.maxother = 100


def _short_repr(value: Any, limit: int) -> str:
    """A cheap repr of a container cut at the depth limit (at most ~100 nodes: shared
    sub-containers repeat, and a deep repr of each copy would cost without bound)."""
    try:
        return truncate(_shallow.repr(value), limit)
    except Exception:  # user __repr__
        return safe_repr(value, limit)


def _plain_number(value: Any) -> Any:
    """An int/float subclass (IntEnum, numpy-like) as the plain number json would print."""
    try:
        return int.__add__(value, 0) if isinstance(value, int) else float.__add__(value, 0.0)
    except Exception:  # subclasses can break anything
        return safe_repr(value)


def _key_text(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, str):
        return str.__str__(key)
    if isinstance(key, (bytes, bytearray)):
        return bytes(key[:4096]).decode("utf-8", "replace")
    return safe_repr(key)

"""Truncate a Sentry event to the protocol's limits, so the server never rejects or cuts it.

:func:`enforce_limits` is pure and never mutates its input: it returns a new event sharing
every part it did not need to change (copy-on-write), or the input itself when it already fits.
It runs on the worker thread for every event, so the common case is one pass that bounds every
string and container while adding up an upper bound of the JSON size; only when that bound
exceeds ``max_bytes`` is the event actually encoded and trimmed.

Limits (Sentry's, https://develop.sentry.dev/sdk/data-handling/ and relay's trimming):
``message``/``logentry`` 8192 chars, exception ``value`` 8192 chars (``type`` kept whole), tag
keys/values 200 chars, 100 breadcrumbs (the newest), databags (``extra``, ``contexts``, frame
``vars``, breadcrumb ``data``, ``request``, ``user``) with strings of 1024 chars, 50 items per
container and 5 levels, 100 frames per stacktrace (the first and last 50), 1 MiB per event.
Truncated strings end with ``...``.
"""

from __future__ import annotations

import logging
import reprlib
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from ..deliver.envelope import json_dumps
from ..safe_repr import safe_repr, truncate

__all__ = [
    "MAX_BREADCRUMBS",
    "MAX_EVENT_BYTES",
    "MAX_MESSAGE_CHARS",
    "MAX_TAG_CHARS",
    "enforce_limits",
    "truncate",
]

_log = logging.getLogger("otel_sentry_bridge")

MAX_EVENT_BYTES = 1024 * 1024
MAX_MESSAGE_CHARS = 8192
MAX_TAG_CHARS = 200
MAX_BREADCRUMBS = 100
MAX_STRING_CHARS = 1024
MAX_ITEMS = 50
MAX_DEPTH = 5
FRAMES_HEAD = FRAMES_TAIL = 50

# Top-level fields never changed or removed: the event's identity. (Exception type/value and
# contexts.trace are protected where they are handled.)
_PROTECTED = frozenset({"event_id", "timestamp", "level", "platform"})
# Structural data outside the databags (sdk, modules, fingerprint, ...): bounded generously,
# only so that nothing is unbounded.
_LOOSE_STRING = 8192
_LOOSE_ITEMS = 1000
_LOOSE_DEPTH = 10
_CYCLE = "<cycle>"
_TOO_LARGE = "<too large>"
# Relay's tag key alphabet (found by probing StoreNormalizer): other keys are rejected.
_TAG_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:- ")


# The size bound is counted in units of at most 6 bytes: one per character of a string (JSON
# writes at most 6 bytes for one, as in \u001f; UTF-8 takes at most 4; a lone surrogate
# becomes U+FFFD, 3), one per quote, brace, comma or colon. Typical events are far below 1 MiB
# even so, and counting with len() inline is what keeps the pass cheap.
_UNIT = 6


Handler = Callable[["_Bound", Any], Any]


class _Bound:
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
            self.budget -= _SHORT_REPR_ITEMS
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
            return self.text(_CYCLE)
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
            self.budget -= _SHORT_REPR_ITEMS
            return self.text(_short_repr(value, limit), limit)
        if type(value) is list and _FLAT_MIN < len(value) <= items:
            flat = _flat_size(value, limit)
            if flat >= 0:  # source context lines: nothing to cut
                self.budget -= len(value)
                self.size += flat + 3 * len(value) + 2
                return value
        ident = id(value)
        if ident in self.on_path:
            return self.text(_CYCLE)
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
            return self.text(_CYCLE)
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

    # -- the parts of an event ----------------------------------------------------------------

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
            return self.text(_CYCLE)
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

    def breadcrumbs(self, value: Any) -> Any:
        def newest(bound: _Bound, crumbs: Any) -> Any:
            if isinstance(crumbs, (list, tuple)) and len(crumbs) > MAX_BREADCRUMBS:
                crumbs = list(crumbs)[-MAX_BREADCRUMBS:]
            return bound.list_of(crumbs, _Bound.crumb)

        if isinstance(value, (list, tuple)):
            return newest(self, value)
        return self.record(value, {"values": newest}, loose=True)

    def crumb(self, crumb: Any) -> Any:
        return self.record(crumb, _CRUMB_FIELDS, loose=False)

    def exception_value(self, value: Any) -> Any:
        return self.record(value, _EXCEPTION_FIELDS, loose=False)

    def stacktrace(self, value: Any) -> Any:
        return self.record(value, _STACKTRACE_FIELDS, loose=False)

    def frames(self, frames: Any) -> Any:
        if isinstance(frames, (list, tuple)) and len(frames) > FRAMES_HEAD + FRAMES_TAIL:
            # Huge recursions: the entry points and the frames that raised tell the story.
            frames = [*frames[:FRAMES_HEAD], *frames[-FRAMES_TAIL:]]
        return self.list_of(frames, _Bound.frame)

    def frame(self, frame: Any) -> Any:
        return self.record(frame, _FRAME_FIELDS, loose=False)

    def context_lines(self, lines: Any) -> Any:
        return self.bag(lines, 0, MAX_STRING_CHARS, MAX_ITEMS, 1)

    def contexts(self, contexts: Any) -> Any:
        return self.record(contexts, {"trace": _Bound.trace}, loose=False, default=_Bound.context)

    def trace(self, value: Any) -> Any:
        """``contexts.trace``: bounded like any context, but with an item budget of its own,
        so that a huge event walked before it can never turn it into a placeholder."""
        saved, saved_cap = self.budget, self.cap
        self.budget = max(saved, _TRACE_ITEMS)
        self.cap = self.size + _TRACE_ITEMS * MAX_STRING_CHARS
        try:
            return self.bag(value)
        finally:
            self.budget, self.cap = min(saved, self.budget), saved_cap

    def context(self, value: Any) -> Any:
        """One context: a databag of its own (an object, as Sentry wants it)."""
        return self.bag(value)

    def logentry(self, value: Any) -> Any:
        return self.record(value, _LOGENTRY_FIELDS, loose=False)

    def request(self, value: Any) -> Any:
        return self.record(value, _REQUEST_FIELDS, loose=False)

    def tags(self, tags: Any) -> Any:
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
            return self.bag(tags)
        kept: list[tuple[str, str]] = []
        unchanged = type(tags) is dict or type(tags) is list
        for key, value in pairs:
            tag = _tag(key, value)
            if tag is None:
                unchanged = False
                continue
            unchanged = unchanged and tag[0] is key and tag[1] is value
            kept.append(tag)
            self.size += len(tag[0]) + len(tag[1]) + 6
        self.size += 2
        if unchanged and (type(tags) is dict or all(type(p) is list for p in tags)):
            return tags
        if isinstance(tags, Mapping):
            return dict(kept)
        return [list(tag) for tag in kept]


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
_MIN_ITEM_BUDGET = 1_000_000
_TRACE_ITEMS = 10_000
_SHORT_REPR_ITEMS = 111  # what _shallow may look at: 1 + 10 + 10 * 10
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


def _message(bound: _Bound, value: Any) -> Any:
    if isinstance(value, Mapping):  # the legacy message interface is a logentry
        return bound.logentry(value)
    return bound.text(value, MAX_MESSAGE_CHARS)


def _logger(bound: _Bound, value: Any) -> Any:
    if isinstance(value, str) and ("\n" in value or "\r" in value):
        # Relay rejects line breaks in a logger name (a logging.getLogger() name can hold any)
        value = value.replace("\r", " ").replace("\n", " ")
    return bound.text(value)


def _exception_text(bound: _Bound, value: Any) -> Any:
    return bound.text(value, MAX_MESSAGE_CHARS)


_CRUMB_FIELDS: dict[str, Handler] = {
    "data": lambda b, v: b.bag(v),
    "message": lambda b, v: b.text(v, MAX_STRING_CHARS),
}
_FRAME_FIELDS: dict[str, Handler] = {
    "vars": lambda b, v: b.bag(v),
    "pre_context": _Bound.context_lines,
    "post_context": _Bound.context_lines,
}
_STACKTRACE_FIELDS: dict[str, Handler] = {"frames": _Bound.frames}
_EXCEPTION_FIELDS: dict[str, Handler] = {
    "type": _Bound.opaque,  # kept whole: it is what Sentry groups by
    "value": _exception_text,
    "stacktrace": _Bound.stacktrace,
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
_EVENT_FIELDS: dict[str, Handler] = {
    **{key: _Bound.opaque for key in _PROTECTED},
    "message": _message,
    "logentry": _Bound.logentry,
    "exception": lambda b, v: b.values(v, _Bound.exception_value),
    "threads": lambda b, v: b.values(v, _Bound.exception_value),
    "tags": _Bound.tags,
    "logger": _logger,
    "breadcrumbs": _Bound.breadcrumbs,
    "extra": lambda b, v: b.bag(v),
    "contexts": _Bound.contexts,
    "request": _Bound.request,
    "user": lambda b, v: b.record(v, _USER_FIELDS, loose=False),
}


# -- trimming to the byte budget ----------------------------------------------------------------


def _size(value: Any) -> int:
    return len(json_dumps(value))


def _entry(key: str, value: Any) -> int:
    """Bytes saved by removing ``"key":value,`` from an object."""
    return _size(key) + _size(value) + 2


def _own_dict(parent: dict[str, Any], key: str) -> dict[str, Any] | None:
    """``parent[key]`` as a dict private to this call (copied once), or None."""
    value = parent.get(key)
    if not isinstance(value, dict):
        return None
    value = dict(value)
    parent[key] = value
    return value


def _own_list(parent: dict[str, Any], key: str) -> list[Any] | None:
    value = parent.get(key)
    if not isinstance(value, list):
        return None
    value = list(value)
    parent[key] = value
    return value


def _own_dicts(items: list[Any]) -> list[dict[str, Any]]:
    """Replace the dicts in ``items`` by private copies; return those copies."""
    owned = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            items[index] = item = dict(item)
            owned.append(item)
    return owned


def _own_frames(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Private copies of every frame (threads first, then exceptions root cause first),
    outermost first: the order their details are given up in."""
    frames: list[dict[str, Any]] = []
    for section in ("threads", "exception"):
        container = _own_dict(event, section)
        values = _own_list(container, "values") if container is not None else None
        for value in _own_dicts(values or []):
            stacktrace = _own_dict(value, "stacktrace")
            own = _own_list(stacktrace, "frames") if stacktrace is not None else None
            frames.extend(_own_dicts(own or []))
    return frames


def _largest_first(container: dict[str, Any], keep: frozenset[str] = frozenset()) -> Iterator[int]:
    sizes = sorted(
        ((_entry(k, v), k) for k, v in container.items() if k not in keep),
        key=lambda pair: pair[0],
        reverse=True,
    )
    for saved, key in sizes:
        del container[key]
        yield saved


def _removals(event: dict[str, Any]) -> Iterator[int]:
    """Give up parts of ``event`` in order of least value, yielding the bytes each saved."""
    frames = _own_frames(event)
    # 1. local variables, innermost frames last
    for frame in frames:
        if "vars" in frame:
            yield _entry("vars", frame.pop("vars"))
    # 2. breadcrumbs, oldest first
    crumbs = _own_dict(event, "breadcrumbs")
    values = _own_list(crumbs, "values") if crumbs is not None else _own_list(event, "breadcrumbs")
    if values is not None:
        while values:
            yield _size(values.pop(0)) + 1
        yield _entry("breadcrumbs", event.pop("breadcrumbs"))
    # 3. source context
    for frame in frames:
        for key in ("pre_context", "post_context", "context_line"):
            if key in frame:
                yield _entry(key, frame.pop(key))
    # 4. extra, the biggest entries first
    extra = _own_dict(event, "extra")
    if extra is not None:
        yield from _largest_first(extra)
        yield _entry("extra", event.pop("extra"))
    # 5. the request body
    request = _own_dict(event, "request")
    if request is not None and "data" in request:
        yield _entry("data", request.pop("data"))
    # 6. contexts other than the trace
    contexts = _own_dict(event, "contexts")
    if contexts is not None:
        yield from _largest_first(contexts, frozenset({"trace"}))
    # 7. Beyond Sentry's order, for events made of odd data: everything that is not the
    # event's identity, its exceptions or its trace; then all but the exceptions' type/value.
    yield from _largest_first(event, _PROTECTED | {"exception", "contexts"})
    container = event.get("exception")
    values = container.get("values") if isinstance(container, dict) else None
    if isinstance(values, list):  # a private copy since _own_frames
        for index in reversed(range(len(values))):
            if not isinstance(values[index], dict):  # junk: it has no type or value
                yield _size(values.pop(index)) + 1
    for exception in _exception_values(event):
        for key in [k for k in exception if k not in ("type", "value")]:
            yield _entry(key, exception.pop(key))


def _exception_values(event: dict[str, Any]) -> list[dict[str, Any]]:
    container = event.get("exception")
    values = container.get("values") if isinstance(container, dict) else None
    return [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []


def _trim(event: dict[str, Any], size: int, max_bytes: int) -> dict[str, Any]:
    event = dict(event)
    excess = size - max_bytes
    for saved in _removals(event):
        excess -= saved
        if excess <= 0:
            # The savings are exact per part, up to separators: confirm with a real encode.
            excess = _size(event) - max_bytes
            if excess <= 0:
                break
    return event


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
        bound = _Bound(
            budget=max(max_bytes, _MIN_ITEM_BUDGET), cap=4 * max(max_bytes, MAX_EVENT_BYTES)
        )
        out = bound.record(event, _EVENT_FIELDS, loose=True)
        if bound.size * _UNIT <= max_bytes:
            return out  # type: ignore[no-any-return]
        size = _size(out)
        if size <= max_bytes:
            return out  # type: ignore[no-any-return]
        return _trim(out, size, max_bytes)
    except Exception:  # user data can be anything: fall back to the bare essentials
        _log.debug("otel-sentry-bridge: could not bound the event", exc_info=True)
        return _skeleton(event)


def _skeleton(event: dict[str, Any]) -> dict[str, Any]:
    """The parts that identify the error, for when the full bounding failed: its identity,
    its exceptions' type and message, its log message and its trace."""
    try:
        out = {key: event[key] for key in _PROTECTED if key in event}
        logentry = event.get("logentry")
        if isinstance(logentry, dict):
            entry = {
                key: truncate(str.__str__(logentry[key]), MAX_MESSAGE_CHARS)
                for key in ("message", "formatted")
                if isinstance(logentry.get(key), str)
            }
            if entry:
                out["logentry"] = entry
        if isinstance(event.get("message"), str):
            out["message"] = truncate(str.__str__(event["message"]), MAX_MESSAGE_CHARS)
        values = _exception_values(event)
        if values:
            out["exception"] = {
                "values": [
                    {"type": v.get("type"), "value": truncate(str(v.get("value")), 8192)}
                    for v in values
                ]
            }
        contexts = event.get("contexts")
        if isinstance(contexts, dict) and isinstance(contexts.get("trace"), dict):
            out["contexts"] = {"trace": contexts["trace"]}
        return out
    except Exception:
        return event

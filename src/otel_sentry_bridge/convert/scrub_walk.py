"""The walk over user data that scrubbing does: sensitive keys filtered at any depth, strings
checked for URL passwords, cycles cut, shared objects scrubbed once, copy-on-write. Used by
:mod:`.scrub` (the event) and :mod:`.scrub_sections` (its parts)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..safe_repr import safe_repr
from .scrubber import FILTERED, MAX_TEXT_CHARS, Scrubber, value_text

__all__ = ["Walk"]

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
            return self.once(value, depth, _bag_text) if "@" in value or "=" in value else value
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
                elif plain and type(item) is str and "@" not in item and "=" not in item:
                    continue  # nothing to find: no URL password, no key=value pair
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


def _bag_text(walk: Walk, text: str, _depth: int) -> str:
    # "=": a query string or key=value pairs ("/a?api_key=x", "token=x"); else URLs only.
    return walk.s.free_text(text) if "=" in text else value_text(text)


def _bag_mapping(walk: Walk, value: Mapping[Any, Any], depth: int) -> Any:
    return walk.mapping(value, depth, walk.bag)


def _bag_sequence(walk: Walk, value: Any, depth: int) -> Any:
    return walk.sequence(value, depth, walk.bag)

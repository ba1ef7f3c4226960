"""Bounded text for any Python value: ``safe_repr`` and ``truncate``.

``safe_repr`` runs where the application's objects live (request threads, log handlers), so
its cost must not grow with the value: containers are walked in their own order with
``itertools.islice`` (``reprlib`` sorts a whole dict or set before trimming it: 300 ms for
500,000 keys), byte strings and big integers are cut before they are printed, and nesting is
shallow. A broken ``__repr__`` gives a placeholder. It never raises.

The only unbounded cost left is an object's own ``__repr__`` (user code), called at most once
per object shown.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

__all__ = ["safe_repr", "truncate"]

_ITEMS = 20  # entries shown per container
_DEPTH = 3  # container levels shown
_MAX_INT_BITS = 3000  # about 900 digits: more is printed as its size
_ELLIPSIS = "..."


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending with ``...`` when cut (Sentry's way)."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 0)] + _ELLIPSIS


def safe_repr(value: Any, limit: int = 512) -> str:
    """A ``repr`` of at most ``limit`` characters that never raises. A string is returned as
    it is (cut to ``limit``), not quoted."""
    try:
        if isinstance(value, str):
            return truncate(str.__str__(value), limit)
        out = _Out(limit)
        out.value(value, 0)
        return truncate(out.text(), limit)
    except Exception:
        return _placeholder(value)


def _placeholder(value: Any) -> str:
    try:
        return f"<{type(value).__name__} object (repr failed)>"
    except Exception:
        return "<unrepresentable>"


class _Out:
    """Pieces of one repr, and how many characters they hold: writing stops past the limit."""

    __slots__ = ("left", "parts")

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.left = limit + 1  # one more than shown, so that truncate() adds the "..."

    def add(self, text: str) -> None:
        if self.left > 0:
            text = text[: self.left]
            self.parts.append(text)
            self.left -= len(text)

    def text(self) -> str:
        return "".join(self.parts)

    def value(self, value: Any, depth: int) -> None:
        if self.left <= 0:
            return
        if isinstance(value, str):
            self.add(repr(str.__str__(value)[: self.left + 2]))
        elif isinstance(value, (bytes, bytearray, memoryview)):
            self.add(repr(bytes(value[: self.left + 2])))
        elif isinstance(value, bool) or value is None:
            self.add(repr(value))
        elif isinstance(value, int):
            self.add(_int_text(value))
        elif isinstance(value, float):
            self.add(float.__repr__(value))
        elif isinstance(value, dict):
            self.mapping(value, depth)
        elif isinstance(value, (list, tuple, set, frozenset)):
            self.sequence(value, depth)
        else:
            self.add(_object_text(value, self.left))

    def mapping(self, value: dict[Any, Any], depth: int) -> None:
        prefix = _prefix(value, dict)
        if depth >= _DEPTH:
            self.add(f"{prefix}{{...}}" if value else f"{prefix}{{}}")
            return
        self.add(prefix + "{")
        for index, (key, item) in enumerate(islice(dict.items(value), _ITEMS)):
            if index:
                self.add(", ")
            self.value(key, depth + 1)
            self.add(": ")
            self.value(item, depth + 1)
            if self.left <= 0:
                return
        if len(value) > _ITEMS:
            self.add(", ...")
        self.add("}" + (")" if prefix else ""))

    def sequence(self, value: Any, depth: int) -> None:
        base = next(b for b in (list, tuple, set, frozenset) if isinstance(value, b))
        open_, close = _BRACKETS[base]
        prefix = _prefix(value, base)
        if base is frozenset and not prefix:
            prefix = "frozenset("
        suffix = ")" if prefix else ""
        if not value:
            self.add(f"{prefix}{suffix}" if prefix else ("set()" if base is set else open_ + close))
            return
        if depth >= _DEPTH:
            self.add(f"{prefix}{open_}...{close}{suffix}")
            return
        self.add(prefix + open_)
        for index, item in enumerate(islice(iter(value), _ITEMS)):
            if index:
                self.add(", ")
            self.value(item, depth + 1)
            if self.left <= 0:
                return
        if len(value) > _ITEMS:
            self.add(", ...")
        elif base is tuple and len(value) == 1:
            self.add(",")
        self.add(close + suffix)


_BRACKETS: dict[type, tuple[str, str]] = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    set: ("{", "}"),
    frozenset: ("{", "}"),
}


def _prefix(value: Any, base: type) -> str:
    """``"QueryDict("`` for a subclass (shown with its name), ``""`` for the type itself."""
    kind = type(value)
    return "" if kind is base else f"{kind.__name__}("


def _int_text(value: int) -> str:
    bits = value.bit_length()
    if bits > _MAX_INT_BITS:  # printing it would cost (and may be refused by Python)
        return f"<int with {bits} bits>"
    return int.__repr__(value)


def _object_text(value: Any, limit: int) -> str:
    """The object's own ``repr`` (user code: the one cost not bounded here)."""
    try:
        text = repr(value)
    except Exception:
        return _placeholder(value)
    if not isinstance(text, str):
        return _placeholder(value)
    return str.__str__(text)[: limit + 1]

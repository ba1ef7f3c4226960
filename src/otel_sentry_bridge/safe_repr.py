"""Bounded text for any Python value: ``safe_repr`` and ``truncate``.

``safe_repr`` runs where the application's objects live (request threads, log handlers), so
its cost must not grow with the value: containers are walked in their own order with
``itertools.islice`` (``reprlib`` sorts a whole dict or set before trimming it: 300 ms for
500,000 keys), byte strings and big integers are cut before they are printed, and nesting is
shallow. A broken ``__repr__`` gives a placeholder. It never raises.

The only unbounded cost left is an object's own ``__repr__`` (user code), called at most once
per object shown.

Some objects do work when printed that the application never asked for. Django's are shown
without it (:func:`django_view`): an unevaluated ``QuerySet`` (whose ``repr`` runs its query),
a ``LazyObject`` such as ``request.user`` (evaluated by a mere ``isinstance``, which reads its
``__class__``: so every check here is made on ``type(value)``), a template ``Context`` (whose
``repr`` prints the querysets it holds).
"""

from __future__ import annotations

import sys
from itertools import islice
from typing import Any, NamedTuple

__all__ = ["DjangoView", "django_view", "safe_repr", "truncate"]

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
        if issubclass(type(value), str):
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
        kind = type(value)  # never isinstance(): it reads __class__, which a proxy evaluates
        if issubclass(kind, str):
            self.add(repr(str.__str__(value)[: self.left + 2]))
        elif issubclass(kind, (bytes, bytearray, memoryview)):
            self.add(repr(bytes(value[: self.left + 2])))
        elif kind is bool or value is None:
            self.add(repr(value))
        elif issubclass(kind, int):
            self.add(_int_text(value))
        elif issubclass(kind, float):
            self.add(float.__repr__(value))
        elif issubclass(kind, dict):
            self.mapping(value, depth)
        elif issubclass(kind, (list, tuple, set, frozenset)):
            self.sequence(value, depth)
        else:
            self.other(value, depth)

    def other(self, value: Any, depth: int) -> None:
        view = django_view(value)
        if view is None:
            self.add(_object_text(value, self.left))
        elif not view.evaluated:
            self.add(view.placeholder())
        else:
            self.add(f"<{view.label}: ")
            self.value(view.content, depth)
            self.add(">")

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
        base = next(b for b in (list, tuple, set, frozenset) if issubclass(type(value), b))
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
    if not issubclass(type(text), str):
        return _placeholder(value)
    return str.__str__(text)[: limit + 1]


class DjangoView(NamedTuple):
    """A Django object that does work when printed, as it can be shown without that work:
    what it is (``label``) and, once the application ``evaluated`` it, what it holds."""

    label: str  # "QuerySet of User", "SimpleLazyObject", "RequestContext"
    evaluated: bool
    content: Any  # the wrapped object, the cached rows, the context's dicts; None if not evaluated

    def placeholder(self) -> str:
        return f"<{self.label} (not evaluated)>"


_QUERY = "django.db.models.query"
_NOT_SET = object()


def django_view(value: Any) -> DjangoView | None:
    """``value`` seen without evaluating it, if Django would do work to print it, else None:

    - a ``LazyObject`` (``SimpleLazyObject``: ``request.user``, the CSRF token) holds its
      object only once evaluated;
    - a ``QuerySet`` or ``RawQuerySet`` holds its rows only once evaluated (its ``repr``
      would run the query; its SQL is not built either);
    - a template ``Context`` holds its dicts (its ``repr`` prints them with their querysets).

    Only ``type(value)`` and the instance's own ``__dict__`` are read. Django is never
    imported here: a Django object exists only once its module is imported."""
    kind = type(value)
    if _is_django(kind, "django.utils.functional", "LazyObject"):
        wrapped = _own_attribute(value, "_wrapped", _NOT_SET)
        empty = getattr(sys.modules.get("django.utils.functional"), "empty", _NOT_SET)
        evaluated = wrapped is not _NOT_SET and wrapped is not empty
        return DjangoView(kind.__name__, evaluated, wrapped if evaluated else None)
    if _is_django(kind, _QUERY, "QuerySet") or _is_django(kind, _QUERY, "RawQuerySet"):
        rows = _own_attribute(value, "_result_cache", None)
        return DjangoView(_queryset_label(value, kind), rows is not None, rows)
    if _is_django(kind, "django.template.context", "BaseContext"):
        return DjangoView(kind.__name__, True, _own_attribute(value, "dicts", []))
    return None


def _is_django(kind: type, module: str, name: str) -> bool:
    base = getattr(sys.modules.get(module), name, None)
    return isinstance(base, type) and issubclass(kind, base)


def _own_attribute(value: Any, name: str, default: Any) -> Any:
    """An attribute from the instance's ``__dict__``: no property, no ``__getattr__``."""
    try:
        attributes = object.__getattribute__(value, "__dict__")
    except AttributeError:
        return default
    return attributes.get(name, default) if type(attributes) is dict else default


def _queryset_label(value: Any, kind: type) -> str:
    model = _own_attribute(value, "model", None)
    name = model.__name__ if issubclass(type(model), type) else None
    return f"{kind.__name__} of {name}" if type(name) is str else kind.__name__

"""A bounded, scrubbed copy of live application data: local variables and log ``extra``.

Runs on the thread that captures (a request thread, a log call), where the objects are alive
and may change a moment later, so it copies now, and copies little:

- the structure is kept (mappings, sequences, sets become JSON objects and lists), so that a
  secret nested anywhere (``creds = {"password": ...}``, ``form = request.POST``, a
  JSON-decoded body) is filtered by its own key, not hidden inside a ``repr`` string;
- a value under a sensitive key becomes ``[Filtered]``; every string, and the ``repr`` of any
  other object, goes through the scrubber's free-text rules (``password=...``, URL passwords);
- a Django ``HttpRequest`` is shown as its method and path, without the query string;
- nothing is evaluated that the application left lazy: an unevaluated ``QuerySet`` or
  ``request.user`` (a ``SimpleLazyObject``) is a placeholder, never a database query, and
  an evaluated one shows what it already holds (:func:`..safe_repr.django_view`). Types are
  checked on ``type(value)``, never with ``isinstance``, which reads a lazy object's
  ``__class__`` and so evaluates it;
- the cost is bounded whatever the value: containers are read with ``islice`` (never sorted
  or copied whole), strings are cut before they are matched, nesting is shallow, and each
  snapshot has a budget of values it may look at.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from itertools import islice
from types import TracebackType
from typing import Any

from ..convert.scrub import FILTERED, Scrubber
from ..safe_repr import DjangoView, django_view, safe_repr, truncate

__all__ = ["frame_variables", "snapshot", "snapshot_mapping"]

MAX_ITEMS = 20  # entries per container
MAX_DEPTH = 3  # container levels; deeper ones become a short repr
MAX_CHARS = 256  # per string
MAX_VALUES = 200  # values looked at per snapshot (one frame's locals, one record's extras)
MAX_VARIABLES = 40  # locals per frame
MAX_FRAMES = 50  # innermost frames whose locals are kept (Sentry keeps the last 50 anyway)
_OUT_OF_BUDGET = "<...>"


class _Budget:
    __slots__ = ("left",)

    def __init__(self, values: int) -> None:
        self.left = values


def snapshot(value: Any, scrubber: Scrubber, *, budget: int = MAX_VALUES) -> Any:
    """``value`` as bounded, scrubbed JSON data. Never raises."""
    return _copy(value, scrubber, 0, _Budget(budget))


def snapshot_mapping(
    values: Mapping[Any, Any], scrubber: Scrubber, *, budget: int = MAX_VALUES
) -> dict[str, Any]:
    """A mapping's first ``MAX_VARIABLES`` entries, each value under a sensitive key
    ``[Filtered]`` and every other one a :func:`snapshot`. Never raises."""
    left = _Budget(budget)
    out: dict[str, Any] = {}
    try:
        for key, value in islice(values.items(), MAX_VARIABLES):
            name = key if type(key) is str else safe_repr(key, 100)
            out[name] = FILTERED if scrubber.is_sensitive(name) else _copy(value, scrubber, 0, left)
    except Exception:  # a mapping that fails while iterated: what was read so far
        pass
    return out


def frame_variables(tb: TracebackType | None, scrubber: Scrubber) -> list[dict[str, Any]]:
    """The locals of each frame of ``tb``, outermost first; only the innermost ``MAX_FRAMES``
    frames have any (the list is aligned on the innermost frame)."""
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return [snapshot_mapping(frame.f_locals, scrubber) for frame in frames[-MAX_FRAMES:]]


def _copy(value: Any, scrubber: Scrubber, depth: int, budget: _Budget) -> Any:
    if budget.left <= 0:
        return _OUT_OF_BUDGET
    budget.left -= 1
    try:
        kind = type(value)
        if value is None or kind is bool or kind is float:
            return value
        if kind is int:
            return value if value.bit_length() < 64 else safe_repr(value, MAX_CHARS)
        if issubclass(kind, str):
            return scrubber.free_text(str.__str__(value), MAX_CHARS)
        if issubclass(kind, (bytes, bytearray, memoryview)):
            text = bytes(value[: MAX_CHARS * 4]).decode("utf-8", "replace")
            return scrubber.free_text(text, MAX_CHARS)
        view = django_view(value)
        if view is not None:
            return _django_view(view, scrubber, depth, budget)
        request = _django_request_text(value)
        if request is not None:
            return scrubber.free_text(request, MAX_CHARS)
        if depth < MAX_DEPTH:
            if issubclass(kind, Mapping):
                return _mapping(value, scrubber, depth, budget)
            if issubclass(kind, (list, tuple, set, frozenset)):
                return [_copy(v, scrubber, depth + 1, budget) for v in islice(value, MAX_ITEMS)]
        return scrubber.free_text(safe_repr(value, MAX_CHARS), MAX_CHARS)
    except Exception:  # user code (iteration, __str__): what cannot be read is not sent
        return FILTERED


def _mapping(value: Mapping[Any, Any], scrubber: Scrubber, depth: int, budget: _Budget) -> Any:
    # Django's QueryDict (a MultiValueDict) holds every value of a key: .lists() shows them.
    lists = getattr(value, "lists", None)
    items = lists() if issubclass(type(value), dict) and callable(lists) else value.items()
    out: dict[str, Any] = {}
    for key, item in islice(items, MAX_ITEMS):
        name = key if type(key) is str else safe_repr(key, 100)
        name = truncate(name, MAX_CHARS)
        out[name] = (
            FILTERED if scrubber.is_sensitive(name) else _copy(item, scrubber, depth + 1, budget)
        )
    return out


def _django_view(view: DjangoView, scrubber: Scrubber, depth: int, budget: _Budget) -> Any:
    """A lazy Django object's placeholder, or what it holds once the application evaluated
    it (a queryset's rows become a list, bounded like any list)."""
    if not view.evaluated:
        return view.placeholder()
    return _copy(view.content, scrubber, depth, budget)


def _django_request_text(value: Any) -> str | None:
    """``<WSGIRequest: GET '/path'>`` for a Django request (its own repr shows the query
    string, which may carry a token), else None. Django is never imported here."""
    module = sys.modules.get("django.http.request")
    request_type = getattr(module, "HttpRequest", None)
    if not isinstance(request_type, type) or not issubclass(type(value), request_type):
        return None
    method = getattr(value, "method", None)
    path = getattr(value, "path", "")
    return f"<{type(value).__name__}: {method} {str(path)!r}>"

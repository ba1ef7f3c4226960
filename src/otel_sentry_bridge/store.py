"""Process-wide, bounded hand-over between the capturing threads and the worker.

What cannot or must not travel in span attributes goes through here, keyed so the worker can
find it again:

- *extras* by event id: user, request details, local variables (sent to Sentry only, never to
  the tracing backend);
- *annotations* by (span id, exception type, message): our event id and mechanism for an
  exception that another instrumentation will record on the span itself (so the costly
  traceback formatting happens once, not twice);
- *breadcrumbs* by trace: recent log records, so an error gets the logs that preceded it even
  when they were on another span or the trace was sampled out.

Every map is an LRU with a fixed size: a capture that is never picked up costs a bounded
amount of memory and then falls out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Hashable, Mapping
from typing import Any, Generic, TypeVar

__all__ = ["AnnotationKey", "CaptureStore", "store"]

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")
AnnotationKey = tuple[int, str, str]


class _Lru(Generic[_K, _V]):
    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[_K, _V] = OrderedDict()

    def put(self, key: _K, value: _V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def get(self, key: _K) -> _V | None:
        return self._items.get(key)

    def pop(self, key: _K) -> _V | None:
        return self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


class CaptureStore:
    def __init__(
        self, *, max_events: int = 1000, max_traces: int = 256, max_breadcrumbs: int = 100
    ) -> None:
        self._lock = threading.Lock()
        self._extras: _Lru[str, Mapping[str, Any]] = _Lru(max_events)
        self._annotations: _Lru[AnnotationKey, dict[str, Any]] = _Lru(max_events)
        self._crumbs: _Lru[int, deque[dict[str, Any]]] = _Lru(max_traces)
        self._max_breadcrumbs = max_breadcrumbs

    # -- extras --------------------------------------------------------------------------

    def put_extras(self, event_id: str, extras: Mapping[str, Any]) -> None:
        with self._lock:
            self._extras.put(event_id, extras)

    def take_extras(self, event_id: str) -> Mapping[str, Any] | None:
        with self._lock:
            return self._extras.pop(event_id)

    # -- annotations ---------------------------------------------------------------------

    def annotate(self, key: AnnotationKey, attributes: dict[str, Any]) -> None:
        with self._lock:
            self._annotations.put(key, attributes)

    def take_annotation(self, key: AnnotationKey) -> dict[str, Any] | None:
        with self._lock:
            return self._annotations.pop(key)

    # -- breadcrumbs ---------------------------------------------------------------------

    def add_breadcrumb(self, trace_key: int, crumb: dict[str, Any]) -> None:
        with self._lock:
            crumbs = self._crumbs.get(trace_key)
            if crumbs is None:
                crumbs = deque(maxlen=self._max_breadcrumbs)
                self._crumbs.put(trace_key, crumbs)
            crumbs.append(crumb)

    def breadcrumbs(self, trace_key: int, until: float) -> list[dict[str, Any]] | None:
        """Breadcrumbs of the trace up to time ``until`` (seconds), oldest first; None when
        the trace has none recorded here."""
        with self._lock:
            crumbs = self._crumbs.get(trace_key)
            if crumbs is None:
                return None
            return [c for c in crumbs if c["timestamp"] <= until]


store = CaptureStore()

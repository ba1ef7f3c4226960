"""A bridge's bounded hand-over between the capturing threads and its worker.

Each bridge owns one; hooks write into the store of every active bridge. What cannot or must
not travel in span attributes goes through here, keyed so the worker can find it again:

- *records* by event id: the :class:`~.record.CaptureRecord` of each capture of ours (level,
  logger, log entry, request, user, local variables: Sentry only, never the tracing backend);
- *expected* records by (span id, exception type, message): the record of an exception that
  another instrumentation is about to record on the span itself (the Django and Celery
  instrumentations do), so the costly traceback formatting happens once, not twice;
- *breadcrumbs* by trace: recent log records, so an error gets the logs that preceded it even
  when they were on another span or the trace was sampled out;
- *span records* by trace: compact references to the outgoing calls (HTTP, database, cache)
  that ended in the trace, turned into breadcrumbs on the worker only when an error needs them.
  They live as long as the trace does in this process: when its local root span ends, they
  are dropped, unless an error of the trace was queued, in which case they wait (in a small
  LRU) for the worker.

Every map is an LRU with a fixed size: a capture that is never picked up costs a bounded
amount of memory and then falls out. Thread-safe; nothing here blocks on I/O.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Hashable, Mapping
from typing import Any, TypeGuard, TypeVar

from ..lru import Lru
from .record import CaptureRecord

__all__ = ["CaptureStore", "ExpectedKey", "SpanRecord"]

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")
# (span id, exception type, message) as Span.record_exception writes them.
ExpectedKey = tuple[int, str, str]
# (end ns, start ns, name, SpanKind, Status, attributes): a plain tuple, the cheapest thing to
# build on the ending thread. Only the first item is read here.
SpanRecord = tuple[int, int, str, Any, Any, Mapping[str, Any]]


class CaptureStore:
    """A span record keeps the span's attributes alive (about 800 bytes): records are kept
    for at most ``max_span_traces`` unfinished traces and ``max_kept_traces`` finished traces
    with an error, ``max_breadcrumbs`` (the newest) each."""

    def __init__(
        self,
        *,
        max_events: int = 1000,
        max_traces: int = 256,
        max_breadcrumbs: int = 100,
        max_span_traces: int = 128,
        max_kept_traces: int = 64,
    ) -> None:
        self._lock = threading.Lock()
        self._records: Lru[str, CaptureRecord] = Lru(max_events)
        self._expected: Lru[ExpectedKey, CaptureRecord] = Lru(max_events)
        self._crumbs: Lru[int, deque[dict[str, Any]]] = Lru(max_traces)
        # Insertion-ordered dicts (the oldest trace goes first) and lists, not Lru and deque:
        # this runs on the ending thread for every client span.
        self._live: dict[int, list[SpanRecord]] = {}
        self._kept: dict[int, list[SpanRecord]] = {}
        self._wanted: dict[int, None] = {}  # traces with a queued error, root not yet ended
        self._max_live = max(1, max_span_traces)
        self._max_kept = max(1, max_kept_traces)
        self._max_breadcrumbs = max_breadcrumbs

    # -- records ---------------------------------------------------------------------------

    def put(self, record: CaptureRecord) -> None:
        with self._lock:
            self._records.put(record.event_id, record)

    def take(self, event_id: str) -> CaptureRecord | None:
        with self._lock:
            return self._records.pop(event_id)

    def expect(self, key: ExpectedKey, record: CaptureRecord) -> None:
        """``record`` is for the exception another instrumentation will record on a span."""
        with self._lock:
            self._expected.put(key, record)

    def take_expected(self, key: ExpectedKey) -> CaptureRecord | None:
        with self._lock:
            return self._expected.pop(key)

    def holds(self, trace_key: int) -> bool:
        """Whether any breadcrumb or span record of the trace may be here: asked before
        :meth:`breadcrumbs` and :meth:`spans` on the thread that ends a span, most traces
        holding neither (no lock: one kept meanwhile, by another thread of the trace, comes
        after what asks)."""
        return trace_key in self._crumbs or trace_key in self._live or trace_key in self._kept

    # -- breadcrumbs ---------------------------------------------------------------------

    def add_breadcrumb(self, trace_key: int, crumb: dict[str, Any]) -> None:
        """Keep ``crumb``; one whose ``timestamp`` is not a finite number of seconds (the
        callers normalise it) is not kept: it could not be ordered with the others."""
        if not _is_seconds(crumb.get("timestamp")):
            return
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
            return [c for c in crumbs if _at_or_before(c, until)]

    # -- span records ----------------------------------------------------------------------

    def add_span(self, trace_id: int, record: SpanRecord) -> None:
        """Keep a finished span's record (see :func:`..convert.spans.span_record`).
        Called on the ending thread: O(1)."""
        with self._lock:
            records = self._live.get(trace_id)
            if records is None:
                _put_bounded(self._live, trace_id, [record], self._max_live)
                return
            if len(records) >= self._max_breadcrumbs:
                del records[0]  # rare, and at most max_breadcrumbs long
            records.append(record)

    def want_spans(self, trace_id: int) -> None:
        """An error of the trace was queued: keep its records past the end of the trace."""
        with self._lock:
            _put_bounded(self._wanted, trace_id, None, self._max_live)

    def end_trace(self, trace_id: int) -> None:
        """The trace's local root span ended: drop its records, or keep them for the worker
        when an error of the trace is waiting for conversion."""
        if trace_id not in self._live and trace_id not in self._wanted:
            return  # the common case: nothing recorded, no lock
        with self._lock:
            records = self._live.pop(trace_id, None)
            wanted = trace_id in self._wanted
            if wanted:
                del self._wanted[trace_id]
            if wanted and records:
                kept = self._kept.pop(trace_id, [])  # a second local root: keep both
                kept.extend(records)
                _put_bounded(self._kept, trace_id, kept[-self._max_breadcrumbs :], self._max_kept)

    def spans(self, trace_id: int, until_ns: int) -> list[SpanRecord]:
        """Records of the trace's spans that ended at or before ``until_ns``, in end order."""
        with self._lock:
            records = [*self._kept.get(trace_id, ()), *self._live.get(trace_id, ())]
        return [r for r in records if r[0] <= until_ns]


def _is_seconds(value: object) -> TypeGuard[float]:
    """A finite float, or an int (exact types: comparing them runs no application code)."""
    if type(value) is int:
        return True
    return type(value) is float and math.isfinite(value)


def _at_or_before(crumb: Mapping[str, Any], until: float) -> bool:
    at = crumb.get("timestamp")
    return _is_seconds(at) and at <= until


def _put_bounded(items: dict[_K, _V], key: _K, value: _V, limit: int) -> None:
    """``items[key] = value``, first dropping the oldest entry when ``items`` is full."""
    if key not in items and len(items) >= limit:
        del items[next(iter(items))]
    items[key] = value

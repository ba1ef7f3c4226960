"""``Bridge``: one enabled bridge owns its settings, capture store, queues and delivery.

Made by :class:`~otel_sentry_bridge.SentrySpanProcessor` (the zero-code instrumentor makes
one of those). The span processor is the OpenTelemetry face of a bridge; the hooks (Django
signal, log handler, Celery) reach bridges through :func:`active_bridges`, the one lookup of
this package, as OpenTelemetry's own hooks reach ``get_tracer_provider()``.

- **Two bridges** (two processors, e.g. two DSNs, or a test's capturing transport next to the
  real one): each capture is offered to every active bridge, and each decides with its own
  settings (ignored types, local variables, PII, denylist) and gets its own record; the span
  event itself is recorded once.
- **A bridge shut down** leaves the lookup at once; captures go to the bridges still active.
  With none, hooks still record exceptions on the span (for the tracing backend) and send
  nothing.

Thread rules: ``on_span_end``/``submit_direct`` run on application threads and never block;
conversion runs on the bridge's worker thread, HTTP on its sender thread.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .capture.record import DirectCapture
from .capture.signal_opt_in import ExceptionSignal, exception_signal
from .capture.store import CaptureStore
from .capture.traceback_text import exception_type_name
from .capture.transactions import TransactionBatch, TransactionCollector
from .convert.filters import IgnoredTypes
from .convert.scrub import Scrubber, scrubber_for
from .convert.spans import may_record, reportable, span_events, span_record
from .deliver.http import Transport
from .deliver.pipeline import Pipeline
from .deliver.retry import Backoff
from .deliver.sender import Delivery
from .deliver.spool import Spool
from .deliver.worker import Worker
from .offload.codec import unplain
from .offload.link import HelperLink
from .offload.shipment import Shipment, TransactionShipment
from .setup.config import Settings
from .setup.dsn import Dsn
from .warn_once import WarnOnce

if TYPE_CHECKING:  # not imported by a helper process, which never sees a span
    from opentelemetry.sdk.trace import ReadableSpan, Span

    WorkItem = ReadableSpan | DirectCapture | TransactionBatch | Shipment | TransactionShipment


class Reattaching(Protocol):
    """What keeps a log handler attached (``capture.log_install.HandlerInstaller``)."""

    def ensure(self) -> None: ...


__all__ = ["HAND_OVER_S", "Bridge", "active_bridges", "newest_settings"]

_log = logging.getLogger("otel_sentry_bridge")
# How long a request thread steps aside when the queue is half full: long enough for the worker
# (rather than the sender thread) to take the GIL.
HAND_OVER_S = 0.0002
_MAX_KNOWN_TYPES = 1024
# The lookup: bridges that accept events, oldest first. Weak: a bridge lives as long as the
# processor that made it. Changed only under the lock; read as a snapshot.
_active: list[weakref.ref[Bridge]] = []
_active_lock = threading.Lock()


def active_bridges() -> list[Bridge]:
    """The bridges that accept events now, newest first."""
    bridges = [ref() for ref in list(_active)]
    return [b for b in reversed(bridges) if b is not None and b.enabled]


def newest_settings() -> Settings | None:
    """The settings of the newest active bridge (thresholds of a log handler made without
    settings of its own), or None."""
    bridges = active_bridges()
    return bridges[0].settings if bridges else None


class Bridge:
    """Settings, capture store, conversion worker and delivery of one DSN (or transport).

    ``transport`` None makes a disabled bridge (no DSN, or an invalid one): it accepts
    nothing and starts no thread.
    """

    def __init__(
        self,
        settings: Settings,
        dsn: Dsn | None,
        transport: Transport | None,
        *,
        backoff: Backoff | None = None,
        offload: bool | Literal["auto"] = False,
    ) -> None:
        self.settings = settings
        self.enabled = transport is not None
        self.store = CaptureStore()
        self.warn = WarnOnce(_log)
        self.ignored = IgnoredTypes(settings.ignored_exceptions)
        # Exception class -> ignored: the answer for a class never changes (a request thread
        # asks on every capture). Written by any thread: a dict item set is atomic.
        self._ignored_types: dict[type[BaseException], bool] = {}
        self._signal: ExceptionSignal | None = None
        # Our own generator (never the `random` module's, which an application may seed).
        self._reseed()
        reseed = weakref.WeakMethod(self._reseed)
        os.register_at_fork(after_in_child=lambda: (m := reseed()) is not None and m())
        self.scrubber: Scrubber = scrubber_for(settings.denylist, settings.send_default_pii)
        # Set by the zero-code instrumentor: how the log handler is kept attached.
        self.log_installer: Reattaching | None = None
        delivery = Delivery(
            transport or _NullTransport(),
            spool=_spool(settings) if self.enabled else None,
            # Encoded envelopes (a few KB) are smaller than finished spans: hold more of them;
            # the byte cap (32 MiB) bounds the memory.
            max_pending=10 * settings.queue_size,
            here_max_waiting=max(1, settings.queue_size * 3 // 4),
            backoff=backoff,
            dsn_header={"dsn": dsn.public_dsn} if dsn is not None else None,
        )
        self.pipeline = Pipeline(settings, dsn, delivery, self.store, self.warn)
        self._worker: Worker[WorkItem] = Worker(
            self._handle, maxsize=settings.queue_size, name="otel-sentry-bridge"
        )
        self.pipeline.waiting = self._worker.__len__
        # None (the default) keeps transactions at zero cost per span.
        self._transactions = (
            TransactionCollector(settings.traces_sample_rate, record_loss=self._record_loss)
            if settings.traces_sample_rate > 0 and self.enabled
            else None
        )
        self._yield_at = max(1, settings.queue_size // 2)
        # How a request thread steps aside for the worker (a seam for tests: time.sleep).
        self.step_aside: Callable[[float], None] = time.sleep
        self._shut_down = False
        # With helper_process on (or "auto"): the helper's end of the pipe, else None (all
        # in-process).
        self.link = (
            HelperLink(settings, self.warn, auto=offload == "auto")
            if offload and self.enabled
            else None
        )
        if self.enabled:
            with _active_lock:
                _active.append(weakref.ref(self))

    def new_event_id(self) -> str:
        """A fresh random event id, made without leaving the GIL: ``os.urandom`` gives it up
        for its system call, and in a busy process a request thread then waits for the
        bridge's own threads to hand it back. Seeded from the OS, again in a forked child."""
        return f"{self._ids.getrandbits(128):032x}"

    def _reseed(self) -> None:
        self._ids = random.Random(os.urandom(32))

    @property
    def exception_signal(self) -> ExceptionSignal:
        """``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN``, read at this bridge's first capture and
        kept, as OpenTelemetry reads its opt-ins once (not on every capture)."""
        signal = self._signal
        if signal is None:
            signal = self._signal = exception_signal()
        return signal

    def ignores(self, exc: BaseException) -> bool:
        """Whether this bridge never sends ``exc`` (Http404, ``ignored_exceptions``)."""
        kind = type(exc)
        known = self._ignored_types.get(kind)
        if known is None:
            known = self.ignored.matches(exception_type_name(kind))
            if len(self._ignored_types) >= _MAX_KNOWN_TYPES:
                self._ignored_types.clear()  # classes made on the fly: stay bounded
            self._ignored_types[kind] = known
        return known

    # -- on application threads ----------------------------------------------------------

    def on_span_start(self, span: Span) -> None:
        transactions = self._transactions
        if transactions is not None:
            transactions.on_start(span)

    def on_span_end(self, span: ReadableSpan) -> None:
        """A scan of the span's events and a queue append; for a client span a record in
        the store; with transactions on, a list append. Never blocks."""
        if not self.enabled:
            return
        # Most spans have no event, and most are not calls: neither looked at further.
        events = span_events(span)
        if events and reportable(events):
            self._submit(span)
        if may_record(span.kind):
            record = span_record(span)
            if record is not None:
                self.store.add_span(span.context.trace_id, record)
        parent = span.parent
        if parent is None or parent.is_remote:  # the trace's local root: it is over here
            self.store.end_trace(span.context.trace_id)
        transactions = self._transactions
        if transactions is not None:
            batch = transactions.on_end(span)
            if batch is not None:
                self._submit_transaction(batch)

    def submit_direct(self, capture: DirectCapture) -> bool:
        """Queue a capture made outside any recording span. Never blocks."""
        return self.enabled and self._submit(capture)

    def _submit(self, item: ReadableSpan | DirectCapture) -> bool:
        link = self.link
        if link is not None and link.taking():
            # Read here (the span, our records, the trace's breadcrumbs) into plain data and
            # shipped to the helper; what it does not take (a full pipe, an odd value) is
            # converted here.
            try:
                parcel = self.pipeline.parcel(item)
            except Exception:
                self.pipeline.record_loss("internal_sdk_error")
                return False
            if link.ship(parcel):
                return True
            return self._queue(unplain(parcel))
        if not isinstance(item, DirectCapture):
            # Read on the worker, maybe after the trace ended here: keep its span records.
            # (A shipment above holds what it needs of them already.)
            self.store.want_spans(item.context.trace_id)
        return self._queue(item)

    def _queue(self, item: WorkItem) -> bool:
        if self._worker.submit(item):
            if len(self._worker) >= self._yield_at:
                # A burst of errors outruns the worker: a CPU-bound request thread lets it
                # have the GIL only every switch interval (5 ms), and the worker loses it
                # again at each zlib call. Stepping aside here, only while half the queue is
                # waiting, lets it convert about one span per failing request (measured:
                # +0.7 ms per such request, no loss in a 5,000-error burst).
                self.step_aside(HAND_OVER_S)
            return True
        self.pipeline.record_loss("queue_overflow")
        return False

    def _submit_transaction(self, batch: TransactionBatch) -> None:
        # Transactions may take half of the queue at most: errors must still find room.
        if len(self._worker) < self.settings.queue_size // 2 and self._worker.submit(batch):
            return
        self.pipeline.record_loss("queue_overflow", category="transaction")

    def _handle(self, item: WorkItem) -> None:
        """On the worker thread: convert and send ``item``; with a helper, a transaction is
        only read into views here (many spans: not on a request thread) and shipped."""
        link = self.link
        if isinstance(item, TransactionBatch) and link is not None and link.taking():
            shipment = self.pipeline.transaction_shipment(item)
            if link.ship(shipment):
                return
            item = shipment
        self.pipeline(item)

    def _record_loss(self, reason: str, category: str, quantity: int) -> None:
        self.pipeline.record_loss(reason, quantity, category)

    # -- flush and shutdown (any thread) ---------------------------------------------------

    @property
    def collects_transactions(self) -> bool:
        """Whether spans are collected into transactions (``traces_sample_rate`` > 0)."""
        return self._transactions is not None

    @property
    def pending(self) -> int:
        """Items waiting for the worker."""
        return len(self._worker)

    @property
    def queued(self) -> int:
        """Items ever queued for the worker (spans, direct captures, transactions)."""
        return self._worker.submitted

    def flush_conversion(self, timeout: float) -> bool:
        """Wait until everything queued so far has been converted and handed to delivery
        (not necessarily sent)."""
        return self._worker.flush(timeout)

    def flush(self, timeout: float) -> bool:
        """Wait until every event queued so far has been sent, spooled or given up on."""
        deadline = time.monotonic() + timeout
        if not self._worker.flush(timeout):
            return False
        if not self.pipeline.delivery.flush(max(0.0, deadline - time.monotonic())):
            return False
        link = self.link
        return link is None or link.flush(max(0.0, deadline - time.monotonic()))

    def shutdown(self) -> None:
        """Leave the lookup, send what is queued within ``shutdown_timeout`` seconds, spool or
        count the rest, then stop. Idempotent."""
        if self._shut_down:
            return
        self._shut_down = True
        self.enabled = False
        with _active_lock:
            _active[:] = [ref for ref in _active if ref() not in (self, None)]
        # From now on envelopes wait in the outbox (and go to the spool at the deadline)
        # rather than being sent one by one on the worker, or on this thread for the rescue.
        self.pipeline.waiting = _not_here
        try:
            timeout = self.settings.shutdown_timeout
            deadline = time.monotonic() + timeout
            link = self.link
            if link is not None:  # the helper drains and sends meanwhile, on its own core
                link.finish(deadline)
            if not self._worker.shutdown(timeout):
                self._rescue(self._worker.drain_pending())
            self.pipeline.delivery.shutdown(max(0.0, deadline - time.monotonic()))
            self.pipeline.close()
            if link is not None:
                link.wait(max(0.0, deadline - time.monotonic()))
        except Exception:
            _log.debug("otel-sentry-bridge: error during shutdown", exc_info=True)

    def _rescue(self, pending: list[WorkItem]) -> None:
        """Spans the worker had no time for: converted here and spooled while the spool
        takes them (nothing else can keep them), else counted as lost, as without a spool:
        converting them at exit is wasted once the spool refuses. Transactions are never
        spooled: counted as lost."""
        transactions = sum(isinstance(item, TransactionBatch) for item in pending)
        if transactions:
            self.pipeline.record_loss("network_error", transactions, category="transaction")
            pending = [item for item in pending if not isinstance(item, TransactionBatch)]
        converted = 0
        for item in pending:
            if not self.pipeline.delivery.can_spool:
                break
            converted += 1
            try:
                self.pipeline(item)
            except Exception:
                self.pipeline.record_loss("network_error")
        left = len(pending) - converted
        if left:
            self.pipeline.record_loss("network_error", left)
            _log.warning("otel-sentry-bridge: %d event(s) not sent before shutdown", left)


def _not_here() -> None:
    return None


def _spool(settings: Settings) -> Spool | None:
    if not settings.spool_dir:
        return None
    return Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes)


class _NullTransport:
    """Used while disabled: nothing is ever queued, so nothing is sent."""

    def send(self, envelope: bytes) -> Any:
        raise RuntimeError("disabled")

    def close(self) -> None:
        return None

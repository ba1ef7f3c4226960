"""``SentrySpanProcessor``: turns exception span events into Sentry events, off the request path.

``on_end`` runs on the thread that ends the span (often the request thread): it only checks
whether the span holds an exception (or an error log event) and, if so, hands the finished
span to a bounded queue. A client span (HTTP, database, cache call) also leaves a compact
record in the capture store, for the breadcrumbs of a later error in its trace. With
``traces_sample_rate`` > 0, the spans of sampled traces are collected and, when the local
root ends, queued as one transaction. Parsing, formatting, JSON, gzip and HTTP all happen on
the worker thread. Nothing here raises into the host application.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Iterator
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .capture.api import DirectCapture, current_settings, set_active_settings
from .capture.store import store
from .capture.transactions import TransactionBatch, TransactionCollector
from .convert.spans import has_reportable_event, span_record
from .deliver.http import HttpTransport, Transport
from .deliver.pipeline import Pipeline
from .deliver.retry import Backoff
from .deliver.sender import Delivery
from .deliver.spool import Spool
from .deliver.worker import Worker
from .errors import InvalidDsn
from .setup.config import Settings, load_settings
from .setup.dsn import Dsn

__all__ = ["SentrySpanProcessor", "active_processors"]

_log = logging.getLogger("otel_sentry_bridge")
_processors: weakref.WeakSet[SentrySpanProcessor] = weakref.WeakSet()
# How long a request thread steps aside when the queue is half full: long enough for the worker
# (rather than the sender thread) to take the GIL.
_HAND_OVER_S = 0.0002


def active_processors() -> Iterator[SentrySpanProcessor]:
    """Processors that accept events, for captures made outside any recording span."""
    return (p for p in list(_processors) if p.enabled)


class SentrySpanProcessor(SpanProcessor):
    """Sends every exception recorded on a span to Sentry, linked to the span's trace.

    ``dsn`` defaults to ``SENTRY_DSN``. Other keyword options are the fields of
    :class:`~otel_sentry_bridge.Settings`. A malformed ``dsn`` argument raises
    :class:`~otel_sentry_bridge.InvalidDsn`; a malformed ``SENTRY_DSN`` is logged and leaves
    the processor disabled. ``transport`` replaces the HTTP transport (tests, custom I/O);
    ``backoff`` the retry policy.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        transport: Transport | None = None,
        settings: Settings | None = None,
        backoff: Backoff | None = None,
        **options: Any,
    ) -> None:
        if settings is None:
            settings = load_settings({**options, **({"dsn": dsn} if dsn is not None else {})})
        self.settings = settings
        parsed: Dsn | None = None
        if settings.dsn:
            try:
                parsed = Dsn.parse(settings.dsn)
            except InvalidDsn as exc:
                if dsn is not None:
                    raise
                _log.error("otel-sentry-bridge: SENTRY_DSN is invalid (%s); disabled", exc)
        if transport is None and parsed is not None:
            try:
                transport = HttpTransport(parsed, timeout=settings.http_timeout, gzip=settings.gzip)
            except Exception as exc:
                # Defence in depth (Dsn.parse refuses what requests refuses): only the type is
                # named, as requests quotes a refused header, the key, in its message.
                problem = f"requests cannot send to {parsed}: {type(exc).__name__}"
                if dsn is not None:
                    raise InvalidDsn(f"Sentry DSN is unusable ({problem})") from None
                _log.error("otel-sentry-bridge: SENTRY_DSN is invalid (%s); disabled", problem)
        self.enabled = transport is not None
        if not self.enabled and not settings.dsn:
            _log.info("otel-sentry-bridge: no SENTRY_DSN; errors are not sent to Sentry")
        delivery = Delivery(
            transport or _NullTransport(),
            spool=_spool(settings) if self.enabled else None,
            # Encoded envelopes (a few KB) are smaller than finished spans: hold more of them;
            # the byte cap (32 MiB) bounds the memory.
            max_pending=10 * settings.queue_size,
            backoff=backoff,
            dsn_header={"dsn": parsed.public_dsn} if parsed is not None else None,
        )
        self.pipeline = Pipeline(settings, parsed, delivery)
        self._worker: Worker[ReadableSpan | DirectCapture | TransactionBatch] = Worker(
            self.pipeline, maxsize=settings.queue_size, name="otel-sentry-bridge"
        )
        # None (the default) keeps transactions at zero cost per span.
        self._transactions = (
            TransactionCollector(settings.traces_sample_rate, record_loss=self._record_loss)
            if settings.traces_sample_rate > 0 and self.enabled
            else None
        )
        self._yield_at = max(1, settings.queue_size // 2)
        self._shut_down = False
        _processors.add(self)
        if self.enabled:
            set_active_settings(settings)

    # -- SpanProcessor -------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        transactions = self._transactions
        if transactions is not None:
            try:
                transactions.on_start(span)
            except Exception:  # never into the host application
                pass

    def on_end(self, span: ReadableSpan) -> None:
        """Called on the ending thread: a scan of the span's events and a queue append; for
        a client span a record in the store; with transactions on, a list append."""
        try:
            if not self.enabled:
                return
            trace_id = span.context.trace_id
            if has_reportable_event(span):
                self._submit(span)
                store.want_spans(trace_id)
            record = span_record(span)
            if record is not None:
                store.add_span(trace_id, record)
            parent = span.parent
            if parent is None or parent.is_remote:  # the trace's local root: it is over here
                store.end_trace(trace_id)
            transactions = self._transactions
            if transactions is not None:
                batch = transactions.on_end(span)
                if batch is not None:
                    self._submit_transaction(batch)
        except Exception:  # never into the host application
            pass

    def capture(self, capture: DirectCapture) -> bool:
        """Queue a capture made outside any recording span. Never blocks."""
        return self.enabled and self._submit(capture)

    def _submit(self, item: ReadableSpan | DirectCapture) -> bool:
        if self._worker.submit(item):
            if len(self._worker) >= self._yield_at:
                # A burst of errors outruns the worker: a CPU-bound request thread lets it
                # have the GIL only every switch interval (5 ms), and the worker loses it
                # again at each zlib call. Stepping aside here, only while half the queue is
                # waiting, lets it convert about one span per failing request (measured:
                # +0.7 ms per such request, no loss in a 5,000-error burst).
                time.sleep(_HAND_OVER_S)
            return True
        self.pipeline.record_loss("queue_overflow")
        return False

    def _submit_transaction(self, batch: TransactionBatch) -> None:
        # Transactions may take half of the queue at most: errors must still find room.
        if len(self._worker) < self.settings.queue_size // 2 and self._worker.submit(batch):
            return
        self.pipeline.record_loss("queue_overflow", category="transaction")

    def _record_loss(self, reason: str, category: str, quantity: int) -> None:
        self.pipeline.record_loss(reason, quantity, category)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait until every event queued so far has been sent, spooled or given up on."""
        deadline = time.monotonic() + timeout_millis / 1000.0
        if not self._worker.flush(timeout_millis / 1000.0):
            return False
        return self.pipeline.delivery.flush(max(0.0, deadline - time.monotonic()))

    def shutdown(self) -> None:
        """Send what is queued within ``shutdown_timeout`` seconds, spool or count the rest,
        then stop. Idempotent."""
        if self._shut_down:
            return
        self._shut_down = True
        self.enabled = False
        if current_settings() is self.settings:
            set_active_settings(None)
        try:
            timeout = self.settings.shutdown_timeout
            deadline = time.monotonic() + timeout
            if not self._worker.shutdown(timeout):
                self._rescue(self._worker.drain_pending())
            self.pipeline.delivery.shutdown(max(0.0, deadline - time.monotonic()))
            self.pipeline.close()
        except Exception:
            _log.debug("otel-sentry-bridge: error during shutdown", exc_info=True)

    def _rescue(self, pending: list[ReadableSpan | DirectCapture | TransactionBatch]) -> None:
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


def _enabled_processors() -> int:
    return max(1, len([p for p in list(_processors) if p.enabled]))


# Each processor converts the spans it is given and takes what the hooks left in the store
# for them: an entry stays until every processor has had it.
store.readers = _enabled_processors

"""``SentrySpanProcessor``: the OpenTelemetry face of a :class:`~otel_sentry_bridge.bridge.Bridge`.

``on_end`` runs on the thread that ends the span (often the request thread): it only checks
whether the span holds an exception (or an error log event) and, if so, hands the finished
span to the bridge's bounded queue. A client span (HTTP, database, cache call) also leaves a
compact record in the bridge's capture store, for the breadcrumbs of a later error in its
trace. With ``traces_sample_rate`` > 0, the spans of sampled traces are collected and, when
the local root ends, queued as one transaction. Parsing, formatting, JSON, gzip and HTTP all
happen on the bridge's threads. Nothing here raises into the host application.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .capture.record import DirectCapture
from .deliver.http import Transport
from .deliver.pipeline import Pipeline
from .deliver.retry import Backoff
from .setup.config import Settings, load_settings
from .setup.opening import open_bridge

__all__ = ["SentrySpanProcessor"]


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
        self.bridge = open_bridge(settings, transport, backoff=backoff, dsn_given=dsn is not None)
        # Only a bridge collecting transactions looks at a starting span (fixed when it opens):
        # without one, the SDK's call for every span of the application returns at once.
        self._sees_starts = self.bridge.collects_transactions

    @property
    def settings(self) -> Settings:
        return self.bridge.settings

    @property
    def enabled(self) -> bool:
        return self.bridge.enabled

    @property
    def pipeline(self) -> Pipeline:
        return self.bridge.pipeline

    # -- SpanProcessor -------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if not self._sees_starts:
            return
        try:
            self.bridge.on_span_start(span)
        except Exception:  # never into the host application
            pass

    def on_end(self, span: ReadableSpan) -> None:
        """Called on the ending thread; never blocks, never raises."""
        try:
            self.bridge.on_span_end(span)
        except Exception:  # never into the host application
            pass

    def capture(self, capture: DirectCapture) -> bool:
        """Queue a capture made outside any recording span. Never blocks."""
        return self.bridge.submit_direct(capture)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait until every event queued so far has been sent, spooled or given up on."""
        return self.bridge.flush(timeout_millis / 1000.0)

    def shutdown(self) -> None:
        """Send what is queued within ``shutdown_timeout`` seconds, spool or count the rest,
        then stop. Idempotent."""
        self.bridge.shutdown()

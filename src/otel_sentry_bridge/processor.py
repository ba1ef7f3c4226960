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

import logging
import os
from typing import Any, Literal

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .bridge import Bridge
from .capture.record import DirectCapture
from .deliver.http import HttpTransport, Transport
from .deliver.pipeline import Pipeline
from .deliver.retry import Backoff
from .errors import InvalidDsn
from .offload.link import HELPER_MARKER
from .setup.config import Settings, load_settings
from .setup.dsn import Dsn

__all__ = ["SentrySpanProcessor"]

_log = logging.getLogger("otel_sentry_bridge")


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
        offload = _offload(settings, custom_transport=transport is not None)
        parsed, transport = _open(settings, transport, dsn_given=dsn is not None)
        if transport is None and not settings.dsn:
            _log.info("otel-sentry-bridge: no SENTRY_DSN; errors are not sent to Sentry")
        self.bridge = Bridge(settings, parsed, transport, backoff=backoff, offload=offload)

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


def _offload(settings: Settings, *, custom_transport: bool) -> bool | Literal["auto"]:
    """Whether conversion and delivery go to a helper process (``helper_process``: True,
    False or "auto", at storms only): not with a transport or a ``before_send`` of the
    application's, which run in this process (said only when it was asked for explicitly)."""
    mode = settings.helper_process
    if not mode:
        return False
    if os.environ.get(HELPER_MARKER):  # this is a helper: it never starts one of its own
        return False
    if custom_transport or settings.before_send is not None:
        if mode is True:
            _log.warning(
                "otel-sentry-bridge: helper_process is ignored with %s (it runs in this "
                "process); errors are converted here",
                "a custom transport" if custom_transport else "before_send",
            )
        return False
    return mode


def _open(
    settings: Settings, transport: Transport | None, *, dsn_given: bool
) -> tuple[Dsn | None, Transport | None]:
    """The parsed DSN and the transport to send with. A bad DSN given as an argument raises
    InvalidDsn; one from SENTRY_DSN is logged, and the bridge stays off (no transport)."""
    parsed: Dsn | None = None
    if settings.dsn:
        try:
            parsed = Dsn.parse(settings.dsn)
        except InvalidDsn as exc:
            if dsn_given:
                raise
            _log.error("otel-sentry-bridge: SENTRY_DSN is invalid (%s); disabled", exc)
    if transport is None and parsed is not None:
        try:
            transport = HttpTransport(parsed, timeout=settings.http_timeout, gzip=settings.gzip)
        except Exception as exc:
            # Defence in depth (Dsn.parse refuses what requests refuses): only the type is
            # named, as requests quotes a refused header, the key, in its message.
            problem = f"requests cannot send to {parsed}: {type(exc).__name__}"
            if dsn_given:
                raise InvalidDsn(f"Sentry DSN is unusable ({problem})") from None
            _log.error("otel-sentry-bridge: SENTRY_DSN is invalid (%s); disabled", problem)
    return parsed, transport

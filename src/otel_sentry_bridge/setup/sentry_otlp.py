"""Sentry as an OpenTelemetry backend: traces and logs to Sentry's OTLP endpoints.

Sentry ingests OTLP/HTTP at
``{scheme}://{host}[:port]{path}/api/{project_id}/integration/otlp/v1/traces`` and
``.../v1/logs``, authenticated by ``x-sentry-auth: sentry sentry_key=<public key>``. It drops
span events at ingestion, so errors keep travelling as the bridge's own envelopes; this
module only adds the traces and the logs, beside whatever exporters the application has.

- :func:`otlp_endpoints` and :func:`otlp_headers`: pure, from a DSN.
- :func:`sentry_span_exporter` and :func:`sentry_log_exporter`: OpenTelemetry's own OTLP/HTTP
  exporters pointed there, for applications that configure OpenTelemetry by hand; each span
  and log record is scrubbed before it leaves (:mod:`~..convert.otlp_scrub`), with the
  bridge's denylist and ``send_default_pii``.
- :func:`install_sentry_otlp`: what ``OTEL_SENTRY_OTLP_SIGNALS`` installs in zero-code mode.

The exports run on the batch processors' threads: a slow, failing or unreachable endpoint
never delays the application and never touches the bridge's error delivery. Nothing of the
bridge's out-of-band data (local variables, request details, the user) is added to them.
Only these exporters scrub: the application's own (a collector, Jaeger) get the SDK's data as
it is.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import unquote

import requests
from opentelemetry._logs import get_logger_provider
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

from ..convert.otlp_scrub import scrub_log_records, scrub_spans
from ..convert.scrubber import Scrubber, scrubber_for
from .config import Settings, load_settings
from .dsn import Dsn
from .sentry_logs import HandlerUpkeep, SentryLogRecords, SentryLogsHandler, handler_feeding

__all__ = [
    "EXPORT_TIMEOUT",
    "SentryLogsHandler",
    "install_sentry_otlp",
    "otlp_endpoints",
    "otlp_headers",
    "sentry_log_exporter",
    "sentry_span_exporter",
    "uninstall_sentry_otlp",
]

_log = logging.getLogger("otel_sentry_bridge")

# Seconds one export may take, retries included (the exporter's own deadline); the default
# of the exporters below. Exports run on the batch processors' threads, never on the
# application's; only an explicit force_flush() or the flush at exit waits for them.
EXPORT_TIMEOUT = 10.0

# Headers the exporter sets itself; never removed from a request (see _WithoutEnvHeaders).
_PROTOCOL_HEADERS = frozenset({"content-type", "content-encoding", "user-agent"})
_ENV_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
_TRACES_ENV_HEADERS = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
_LOGS_ENV_HEADERS = "OTEL_EXPORTER_OTLP_LOGS_HEADERS"


# -- pure helpers ------------------------------------------------------------------------------


def _parsed(dsn: str | Dsn) -> Dsn:
    return dsn if isinstance(dsn, Dsn) else Dsn.parse(dsn)


def otlp_endpoints(dsn: str | Dsn) -> tuple[str, str]:
    """``(traces_url, logs_url)`` of the DSN's project:
    ``{scheme}://{host}[:port]{path}/api/{project_id}/integration/otlp/v1/{traces,logs}``.

    A string is parsed first (:class:`~otel_sentry_bridge.InvalidDsn` when malformed).
    """
    parsed = _parsed(dsn)
    base = f"{parsed.scheme}://{parsed.netloc}{parsed.path}/api/{parsed.project_id}"
    return f"{base}/integration/otlp/v1/traces", f"{base}/integration/otlp/v1/logs"


def otlp_headers(dsn: str | Dsn) -> dict[str, str]:
    """The authentication header Sentry's OTLP endpoints take (the public key only)."""
    return {"x-sentry-auth": f"sentry sentry_key={_parsed(dsn).public_key}"}


# -- exporters ---------------------------------------------------------------------------------


def sentry_span_exporter(
    dsn: str | Dsn, *, settings: Settings | None = None, **options: Any
) -> OTLPSpanExporter:
    """OpenTelemetry's ``OTLPSpanExporter`` sending to the DSN's OTLP traces endpoint, scrubbing
    each span before it leaves (:func:`~..convert.otlp_scrub.scrub_span`) with ``settings``'
    ``denylist`` and ``send_default_pii``; without ``settings``, the bridge's as the
    environment and the Django setting give them (``OTEL_SENTRY_DENYLIST``,
    ``SENTRY_SEND_DEFAULT_PII``).

    ``options`` are the exporter's own keyword arguments (``timeout``, ``compression``,
    ``headers``, ``session``, ``certificate_file``, ...), except ``endpoint``, which comes from
    the DSN. Defaults: ``timeout`` :data:`EXPORT_TIMEOUT`, gzip compression. Use it as
    ``BatchSpanProcessor(sentry_span_exporter(dsn))``.

    The ``OTEL_EXPORTER_OTLP_*`` variables describe the application's own collector, not
    Sentry: unless a ``session`` is given, the headers they name are removed from each request
    (they may be the collector's credentials) and their CA and client certificates are not used
    (pass ``certificate_file`` and the client certificate arguments to set them for Sentry).
    """
    parsed = _parsed(dsn)
    kwargs, session = _exporter_kwargs(parsed, options, _TRACES_ENV_HEADERS)
    scrubber, send_default_pii = _scrubbing(settings)
    exporter = _ScrubbingSpanExporter(
        scrubber, send_default_pii, endpoint=otlp_endpoints(parsed)[0], **kwargs
    )
    _forget_env_certificates(session, kwargs)
    return exporter


def sentry_log_exporter(
    dsn: str | Dsn, *, settings: Settings | None = None, **options: Any
) -> OTLPLogExporter:
    """OpenTelemetry's ``OTLPLogExporter`` sending to the DSN's OTLP logs endpoint, scrubbing
    each log record before it leaves (:func:`~..convert.otlp_scrub.scrub_log_record`);
    ``settings`` and options as for :func:`sentry_span_exporter`. Use it as
    ``BatchLogRecordProcessor(...)``."""
    parsed = _parsed(dsn)
    kwargs, session = _exporter_kwargs(parsed, options, _LOGS_ENV_HEADERS)
    scrubber, send_default_pii = _scrubbing(settings)
    exporter = _ScrubbingLogExporter(
        scrubber, send_default_pii, endpoint=otlp_endpoints(parsed)[1], **kwargs
    )
    _forget_env_certificates(session, kwargs)
    return exporter


def _ignore(_message: str) -> None:
    """Problems in the environment are the bridge's to report, when it loads its settings."""


def _scrubbing(settings: Settings | None) -> tuple[Scrubber, bool]:
    if settings is None:
        try:
            settings = load_settings(warn=_ignore)
        except Exception:  # fail closed: the default words, no PII
            settings = Settings()
    return scrubber_for(tuple(settings.denylist), bool(settings.send_default_pii)), bool(
        settings.send_default_pii
    )


class _ScrubbingSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` that sends each batch scrubbed. A span that cannot be scrubbed is
    not sent; a batch that fails to scrub or export is a failed export, never an exception
    (the batch processor's thread, or the application's ``force_flush``)."""

    def __init__(self, scrubber: Scrubber, send_default_pii: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scrubber = scrubber
        self.send_default_pii = send_default_pii

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            clean = scrub_spans(spans, self.scrubber, self.send_default_pii)
            if spans and not clean:
                return SpanExportResult.SUCCESS  # nothing left that may be sent
            return super().export(clean)
        except Exception:
            _log.debug("otel-sentry-bridge: OTLP span export failed", exc_info=True)
            return SpanExportResult.FAILURE


class _ScrubbingLogExporter(OTLPLogExporter):
    """``OTLPLogExporter`` that sends each batch scrubbed, as :class:`_ScrubbingSpanExporter`."""

    def __init__(self, scrubber: Scrubber, send_default_pii: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scrubber = scrubber
        self.send_default_pii = send_default_pii

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        try:
            clean = scrub_log_records(batch, self.scrubber, self.send_default_pii)
            if batch and not clean:
                return LogRecordExportResult.SUCCESS
            return super().export(clean)
        except Exception:
            _log.debug("otel-sentry-bridge: OTLP log export failed", exc_info=True)
            return LogRecordExportResult.FAILURE


class _WithoutEnvHeaders(requests.auth.AuthBase):
    """Removes from each request the headers that ``OTEL_EXPORTER_OTLP_[SIGNAL_]HEADERS`` made
    the exporter add: they are meant for the application's collector, often as credentials."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        for name in self.names:
            request.headers.pop(name, None)  # a case-insensitive dict
        return request


def _env_header_names(signal_variable: str) -> set[str]:
    """The (lower-case) names the exporter reads from the environment, as it does: the
    signal's variable, else the generic one; ``name=value`` pairs, comma-separated."""
    raw = os.environ.get(signal_variable) or os.environ.get(_ENV_HEADERS) or ""
    names = set()
    for item in raw.split(","):
        name, separator, _ = item.partition("=")
        name = unquote(name).strip().lower()
        if separator and name:
            names.add(name)
    return names


def _exporter_kwargs(
    dsn: Dsn, options: dict[str, Any], headers_variable: str
) -> tuple[dict[str, Any], requests.Session | None]:
    if "endpoint" in options:
        raise TypeError("the endpoint comes from the DSN: do not pass endpoint=")
    kwargs = dict(options)
    headers = {str(k).lower(): str(v) for k, v in dict(kwargs.pop("headers", None) or {}).items()}
    headers.update(otlp_headers(dsn))
    kwargs["headers"] = headers
    kwargs.setdefault("timeout", EXPORT_TIMEOUT)
    kwargs.setdefault("compression", Compression.Gzip)
    session: requests.Session | None = None
    if kwargs.get("session") is None:
        session = requests.Session()
        dropped = _env_header_names(headers_variable) - set(headers) - _PROTOCOL_HEADERS
        if dropped:
            session.auth = _WithoutEnvHeaders(dropped)
        kwargs["session"] = session
    return kwargs, session


def _forget_env_certificates(session: requests.Session | None, kwargs: dict[str, Any]) -> None:
    """The exporter's transport put ``OTEL_EXPORTER_OTLP_[TRACES_|LOGS_]CERTIFICATE`` and the
    client certificate variables on our session: the collector's, not Sentry's."""
    if session is None:
        return
    if not kwargs.get("certificate_file"):
        session.verify = True
    if not kwargs.get("client_certificate_file"):
        session.cert = None


# -- zero-code installation --------------------------------------------------------------------


class _Skip(Exception):
    """A signal that cannot be installed, for a reason worth one warning."""


# What is installed is kept by the objects it is installed on, not here: a provider that has
# our processor carries _HAS_OURS, a logger provider we made carries _OURS, and our handlers
# are found on the loggers they are attached to.
_HAS_OURS = "_otel_sentry_bridge_has_sentry_otlp"
_OURS = "_otel_sentry_bridge_own_provider"
_install_lock = threading.Lock()


def _marked(target: Any, mark: str) -> bool:
    return bool(getattr(target, mark, False))


def _mark(target: Any, mark: str) -> None:
    setattr(target, mark, True)


def _our_handlers() -> list[SentryLogsHandler]:
    """The handlers of ours attached anywhere (the root logger, non-propagating loggers)."""
    found: list[SentryLogsHandler] = []
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if isinstance(handler, SentryLogsHandler) and handler not in found:
                found.append(handler)
    return found


def install_sentry_otlp(
    settings: Settings,
    dsn: str | Dsn,
    tracer_provider: Any,
    logger_provider: Any = None,
) -> list[str]:
    """Send ``settings.otlp_signals`` to the DSN's OTLP endpoints too; returns what was
    installed, one phrase per signal, for a log line. Never raises: a signal that cannot be
    installed is skipped with a warning.

    - ``traces``: a ``BatchSpanProcessor(sentry_span_exporter(...))`` on ``tracer_provider``,
      beside its other processors (the application's exporters keep getting every span).
    - ``logs``: a ``BatchLogRecordProcessor(sentry_log_exporter(...))`` on ``logger_provider``;
      by default on the global SDK ``LoggerProvider`` when the application's own OTel logging
      handler feeds it (``OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED=true``), else on a
      ``LoggerProvider`` of our own with ``tracer_provider``'s resource, never made global (so
      the application's log exporters get nothing new). Then, unless a handler already feeds
      that provider, a :class:`SentryLogsHandler` at ``settings.log_level`` on the root logger
      (and on loggers that do not propagate), so that Python log records reach Sentry with the
      trace and span ids of the span they were logged in.

    Both exporters scrub what they send with ``settings``' denylist and ``send_default_pii``
    (:mod:`~..convert.otlp_scrub`). Once per provider: installing again on the same provider
    adds nothing.
    """
    installed: list[str] = []
    try:
        signals = tuple(settings.otlp_signals)
        if not signals:
            return installed
        parsed = _parsed(dsn)
        options = {"compression": Compression.Gzip if settings.gzip else Compression.NoCompression}
    except Exception as exc:
        _log.warning("otel-sentry-bridge: not sending to Sentry's OTLP endpoints: %s", exc)
        return installed
    if "traces" in signals and settings.traces_sample_rate > 0:
        _log.warning(
            "otel-sentry-bridge: traces go to Sentry both over OTLP and as transactions "
            "(SENTRY_TRACES_SAMPLE_RATE > 0): Sentry gets those spans twice; choose one"
        )
    for signal in signals:
        try:
            with _install_lock:
                if signal == "traces":
                    done = _install_traces(parsed, settings, tracer_provider, options)
                elif signal == "logs":
                    done = _install_logs(
                        parsed, settings, tracer_provider, logger_provider, options
                    )
                else:
                    raise _Skip(f"unknown signal {signal!r}")
        except _Skip as exc:
            _log.warning(
                "otel-sentry-bridge: %s not sent to Sentry's OTLP endpoint: %s", signal, exc
            )
            continue
        except Exception:
            _log.warning(
                "otel-sentry-bridge: could not send %s to Sentry's OTLP endpoint; skipped",
                signal,
                exc_info=True,
            )
            continue
        if done:
            installed.append(done)
    return installed


def _install_traces(
    dsn: Dsn, settings: Settings, tracer_provider: Any, options: dict[str, Any]
) -> str | None:
    if not hasattr(tracer_provider, "add_span_processor"):
        raise _Skip(f"no OpenTelemetry SDK tracer provider (got {type(tracer_provider).__name__})")
    if _marked(tracer_provider, _HAS_OURS):
        return None
    exporter = sentry_span_exporter(dsn, settings=settings, **options)
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    _mark(tracer_provider, _HAS_OURS)
    return f"traces to {otlp_endpoints(dsn)[0]}"


def _install_logs(
    dsn: Dsn,
    settings: Settings,
    tracer_provider: Any,
    logger_provider: Any,
    options: dict[str, Any],
) -> str | None:
    provider = _logs_provider(tracer_provider, logger_provider)
    added = False
    if not _marked(provider, _HAS_OURS):
        exporter = sentry_log_exporter(dsn, settings=settings, **options)
        provider.add_log_record_processor(SentryLogRecords(exporter, settings.log_level))
        _mark(provider, _HAS_OURS)
        added = True
    ours = any(handler.logger_provider is provider for handler in _our_handlers())
    if not ours and handler_feeding(provider) is None:
        handler = SentryLogsHandler(
            settings.log_level, provider, scrubber_for(settings.denylist, settings.send_default_pii)
        )
        upkeep = HandlerUpkeep(handler)
        upkeep.install()
        handler.upkeep = upkeep
        added = True
    if not added:
        return None
    level = logging.getLevelName(settings.log_level)
    return f"logs ({level} and above) to {otlp_endpoints(dsn)[1]}"


def _logs_provider(tracer_provider: Any, logger_provider: Any) -> LoggerProvider:
    if logger_provider is not None:
        if not isinstance(logger_provider, LoggerProvider):
            raise _Skip(
                f"not an OpenTelemetry SDK LoggerProvider (got {type(logger_provider).__name__})"
            )
        return logger_provider
    current = get_logger_provider()
    if isinstance(current, LoggerProvider) and handler_feeding(current) is not None:
        return current  # the application's own OTel logging: Sentry's processor rides along
    for handler in _our_handlers():
        if _marked(handler.logger_provider, _OURS):
            return handler.logger_provider
    resource = getattr(tracer_provider, "resource", None)
    own = LoggerProvider(resource=resource) if resource is not None else LoggerProvider()
    _mark(own, _OURS)
    return own


def uninstall_sentry_otlp() -> None:
    """Remove the logging handlers and shut down the logger provider of our own. A span or
    log processor added to the application's provider stays there (OpenTelemetry cannot
    remove one); it stops with its provider. Mostly for tests."""
    with _install_lock:
        handlers = _our_handlers()
        for handler in handlers:
            if handler.upkeep is not None:
                handler.upkeep.remove()
    owned = {id(h.logger_provider): h.logger_provider for h in handlers}
    for provider in owned.values():
        if _marked(provider, _OURS):
            provider.shutdown()

"""Sentry as an OpenTelemetry backend: traces and logs to Sentry's OTLP endpoints.

Sentry ingests OTLP/HTTP at
``{scheme}://{host}[:port]{path}/api/{project_id}/integration/otlp/v1/traces`` and
``.../v1/logs``, authenticated by ``x-sentry-auth: sentry sentry_key=<public key>``. It drops
span events at ingestion, so errors keep travelling as the bridge's own envelopes; this
module only adds the traces and the logs, beside whatever exporters the application has.

- :func:`otlp_endpoints` and :func:`otlp_headers`: pure, from a DSN.
- :func:`sentry_span_exporter` and :func:`sentry_log_exporter`: OpenTelemetry's own OTLP/HTTP
  exporters pointed there, for applications that configure OpenTelemetry by hand.
- :func:`install_sentry_otlp`: what ``OTEL_SENTRY_OTLP_SIGNALS`` installs in zero-code mode.

The exports run on the batch processors' threads: a slow, failing or unreachable endpoint
never delays the application and never touches the bridge's error delivery. Nothing of the
bridge's out-of-band data (local variables, request details, the user) is added to them.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import warnings
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import requests
from opentelemetry._logs import get_logger_provider
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from ..capture.log_install import HandlerInstaller
from ..convert.scrubber import Scrubber, scrubber_for
from .config import Settings
from .dsn import Dsn

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import ReadWriteLogRecord

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

# Loggers whose records never go to Sentry's logs: the bridge, OpenTelemetry (the exporter
# itself logs its failures) and the HTTP stack under the exporter. Feedback loops otherwise.
_FEEDBACK_ROOTS = frozenset({"otel_sentry_bridge", "opentelemetry", "urllib3", "requests"})
# Headers the exporter sets itself; never removed from a request (see _WithoutEnvHeaders).
_PROTOCOL_HEADERS = frozenset({"content-type", "content-encoding", "user-agent"})
_ENV_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
_TRACES_ENV_HEADERS = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
_LOGS_ENV_HEADERS = "OTEL_EXPORTER_OTLP_LOGS_HEADERS"
# LogRecord's own attributes; anything else on a record came from ``extra=`` (or a record
# factory) and is not exported (see SentryLogsHandler).
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


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


def sentry_span_exporter(dsn: str | Dsn, **options: Any) -> OTLPSpanExporter:
    """OpenTelemetry's ``OTLPSpanExporter`` sending to the DSN's OTLP traces endpoint.

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
    exporter = OTLPSpanExporter(endpoint=otlp_endpoints(parsed)[0], **kwargs)
    _forget_env_certificates(session, kwargs)
    return exporter


def sentry_log_exporter(dsn: str | Dsn, **options: Any) -> OTLPLogExporter:
    """OpenTelemetry's ``OTLPLogExporter`` sending to the DSN's OTLP logs endpoint; options as
    for :func:`sentry_span_exporter`. Use it as ``BatchLogRecordProcessor(...)``."""
    parsed = _parsed(dsn)
    kwargs, session = _exporter_kwargs(parsed, options, _LOGS_ENV_HEADERS)
    exporter = OTLPLogExporter(endpoint=otlp_endpoints(parsed)[1], **kwargs)
    _forget_env_certificates(session, kwargs)
    return exporter


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


# -- logs: the handler and the processor ------------------------------------------------------


def _feedback_logger(name: str) -> bool:
    return name.partition(".")[0] in _FEEDBACK_ROOTS


def _not_feedback(record: logging.LogRecord) -> bool:
    return not _feedback_logger(record.name)


def _exported(record: logging.LogRecord, scrubber: Scrubber) -> logging.LogRecord:
    """A copy of the record as it may leave: without its ``extra=`` values (the bridge scrubs
    those for Sentry events; here they would go out as they are), and with its message
    formatted and scrubbed as free text (``token=...``, URL passwords), as breadcrumbs are."""
    fields = {k: v for k, v in vars(record).items() if k in _RECORD_FIELDS}
    try:
        message = record.getMessage()
    except Exception:  # bad %-args: what logging itself would show is the template
        message = str(record.msg)
    fields["msg"] = scrubber.free_text(message)
    fields["args"] = None
    return logging.makeLogRecord(fields)


@functools.cache
def _bridge_handler_types() -> tuple[type[logging.Handler], ...]:
    try:
        from ..logging import SpanEventHandler
    except ImportError:  # pragma: no cover - the public path is kept on purpose
        return ()
    return (SpanEventHandler,)


class SentryLogsHandler(LoggingHandler):
    """OpenTelemetry's ``LoggingHandler`` as the bridge attaches it for Sentry's logs.

    Records below ``threshold`` are skipped, and so are those of the bridge's own,
    OpenTelemetry's, ``urllib3``'s and ``requests``' loggers (feedback loops). What is exported
    is the record without its ``extra=`` values (the bridge scrubs those for Sentry events;
    here they would go out as they are): message, level, logger, code location, exception
    type, message and traceback text, and the trace and span ids of the current span.

    The handler's own level stays NOTSET: like ``SpanEventHandler`` it stands in for
    ``logging.lastResort``, so that an application without logging configuration still prints
    its warnings once a handler of ours is on the root logger. ``emit`` never raises and
    never does I/O (the batch processor exports on its own thread).
    """

    def __init__(
        self, threshold: int, logger_provider: LoggerProvider, scrubber: Scrubber | None = None
    ) -> None:
        with warnings.catch_warnings():
            # The SDK's LoggingHandler is deprecated in favour of a handler in
            # opentelemetry-instrumentation-logging, which this package does not depend on.
            warnings.simplefilter("ignore", DeprecationWarning)
            super().__init__(level=logging.NOTSET, logger_provider=logger_provider)
        self.threshold = threshold
        self.logger_provider = logger_provider
        self.scrubber = scrubber or scrubber_for()
        self.addFilter(_not_feedback)
        self._local = threading.local()

    def handle(self, record: logging.LogRecord) -> bool:
        last_resort = logging.lastResort
        if last_resort is not None and record.levelno >= last_resort.level:
            self._stand_in_for_last_resort(record, last_resort)
        if record.levelno < self.threshold:
            return False
        return bool(super().handle(record))

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._local, "busy", False):
            return
        self._local.busy = True
        try:
            super().emit(_exported(record, self.scrubber))
        except Exception:  # logging must never break the caller
            pass
        finally:
            self._local.busy = False

    def _stand_in_for_last_resort(self, record: logging.LogRecord, last: logging.Handler) -> None:
        """Print ``record`` as logging would have, when no handler but ours (and the bridge's
        ``SpanEventHandler``, which defers to this one) is on its way up."""
        try:
            ours = _bridge_handler_types()
            logger: Any = logging.Logger.manager.loggerDict.get(record.name)
            if not isinstance(logger, logging.Logger):  # the root, or a hand-made record
                logger = logging.getLogger()
            while logger is not None:
                for handler in logger.handlers:
                    if handler is not self and not isinstance(handler, ours):
                        return
                logger = logger.parent if logger.propagate else None
            last.handle(record)
        except Exception:  # logging must never break the caller
            pass


def _severity_floor(level: int) -> int:
    """The lowest OpenTelemetry severity number of a Python record at ``level`` or above, as
    the SDK's handler maps levels: 10 DEBUG -> 5, 20 INFO -> 9, 30 WARNING -> 13, 40 ERROR ->
    17, 50 CRITICAL -> 21, up to 3 more for levels just above those; below 10, unspecified."""
    if level < logging.DEBUG:
        return 0
    if level > 53:
        return 24
    decade, rest = divmod(level, 10)
    return 4 * decade + 1 + min(rest, 3)


class _SentryLogRecords(LogRecordProcessor):
    """The batch processor exporting to Sentry, behind a gate for records that reach the
    provider some other way than our handler (the application's own OTel logging handler,
    other instrumentations): below the level, or from a feedback-loop logger, they stay out."""

    def __init__(self, exporter: OTLPLogExporter, level: int) -> None:
        self.batch = BatchLogRecordProcessor(exporter)
        self._floor = _severity_floor(level)

    def _wanted(self, item: Any) -> bool:
        scope = getattr(item, "instrumentation_scope", None)
        if _feedback_logger(str(getattr(scope, "name", "") or "")):
            return False
        severity = getattr(getattr(item, "log_record", None), "severity_number", None)
        return int(getattr(severity, "value", 0) or 0) >= self._floor

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        try:
            if self._wanted(log_record):
                self.batch.on_emit(log_record)
        except Exception:  # never into the application
            pass

    def emit(self, log_data: Any) -> None:
        """The name older SDKs call (with a ``LogData``)."""
        forward = getattr(self.batch, "emit", None)
        try:
            if forward is not None and self._wanted(log_data):
                forward(log_data)
        except Exception:  # never into the application
            pass

    def shutdown(self) -> None:
        self.batch.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.batch.force_flush(timeout_millis))


class _HandlerUpkeep:
    """Keeps a handler where the bridge keeps ``SpanEventHandler`` (the root logger and every
    logger that does not propagate, see :class:`~..capture.log_install.HandlerInstaller`); a
    Django ``LOGGING`` (``dictConfig``) may remove it, so every request start puts it back."""

    def __init__(self, handler: SentryLogsHandler) -> None:
        self.handler = handler
        self._installer = HandlerInstaller(handler, skip=_feedback_logger)
        self._dispatch_uid = f"otel_sentry_bridge.otlp_logs_upkeep.{id(handler)}"

    def install(self) -> None:
        self._installer.install()
        try:
            from django.core.signals import request_started
        except ImportError:
            return  # not a Django process: the root logger is all we can do
        request_started.connect(self._on_request, weak=False, dispatch_uid=self._dispatch_uid)

    def _on_request(self, **_: Any) -> None:
        try:
            self._installer.ensure()
        except Exception:  # never into the request
            pass

    def ensure(self) -> None:
        self._installer.ensure()

    def remove(self) -> None:
        try:
            from django.core.signals import request_started

            request_started.disconnect(dispatch_uid=self._dispatch_uid)
        except ImportError:
            pass
        self._installer.uninstall()


def _handler_feeding(provider: Any) -> logging.Handler | None:
    """An OpenTelemetry logging handler on the root logger that emits into ``provider``."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_logger_provider", None) is provider:
            return handler
    return None


# -- zero-code installation --------------------------------------------------------------------


class _Skip(Exception):
    """A signal that cannot be installed, for a reason worth one warning."""


_install_lock = threading.Lock()
_traced: weakref.WeakSet[Any] = weakref.WeakSet()  # tracer providers with our processor
_logged: weakref.WeakSet[Any] = weakref.WeakSet()  # logger providers with our processor
_upkeeps: list[_HandlerUpkeep] = []
_own_providers: list[LoggerProvider] = []


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

    Once per provider: installing again on the same provider adds nothing.
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
                    done = _install_traces(parsed, tracer_provider, options)
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


def _install_traces(dsn: Dsn, tracer_provider: Any, options: dict[str, Any]) -> str | None:
    if not hasattr(tracer_provider, "add_span_processor"):
        raise _Skip(f"no OpenTelemetry SDK tracer provider (got {type(tracer_provider).__name__})")
    if tracer_provider in _traced:
        return None
    tracer_provider.add_span_processor(BatchSpanProcessor(sentry_span_exporter(dsn, **options)))
    _traced.add(tracer_provider)
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
    if provider not in _logged:
        exporter = sentry_log_exporter(dsn, **options)
        provider.add_log_record_processor(_SentryLogRecords(exporter, settings.log_level))
        _logged.add(provider)
        added = True
    ours = any(upkeep.handler.logger_provider is provider for upkeep in _upkeeps)
    if not ours and _handler_feeding(provider) is None:
        handler = SentryLogsHandler(settings.log_level, provider, scrubber_for(settings.denylist))
        upkeep = _HandlerUpkeep(handler)
        upkeep.install()
        _upkeeps.append(upkeep)
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
    if isinstance(current, LoggerProvider) and _handler_feeding(current) is not None:
        return current  # the application's own OTel logging: Sentry's processor rides along
    if _own_providers:
        return _own_providers[0]
    resource = getattr(tracer_provider, "resource", None)
    own = LoggerProvider(resource=resource) if resource is not None else LoggerProvider()
    _own_providers.append(own)
    return own


def uninstall_sentry_otlp() -> None:
    """Remove the logging handlers and shut down the logger provider of our own. A span or
    log processor added to the application's provider stays there (OpenTelemetry cannot
    remove one); it stops with its provider. Mostly for tests."""
    with _install_lock:
        upkeeps = list(_upkeeps)
        owned = list(_own_providers)
        _upkeeps.clear()
        _own_providers.clear()
        for provider in owned:
            _logged.discard(provider)
    for upkeep in upkeeps:
        upkeep.remove()
    for provider in owned:
        provider.shutdown()

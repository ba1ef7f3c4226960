"""``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN``: where our own hooks record the exceptions they
capture, for the tracing and logs backends.

The semantic conventions ask instrumentations that record exceptions as span events to offer
this variable: ``logs`` records them as log records only, ``logs/dup`` as both, and anything
else (the default) keeps span events. :func:`exception_signal` reads it;
:func:`emit_exception_log` writes one capture of ours as an OTel log record: the
``exception.*`` attributes (the cheap traceback text, as on our span events), our
``sentry.event_id`` (so :class:`~.log_records.SentryLogRecordProcessor` never sends it a second
time, and the logs backend shows the id Sentry has), an event name of its own (not the generic
``exception``), in the current trace context.

``capture/api.py`` (``_deliver``) calls it for every exception captured while the opt-in says
``logs`` or ``logs/dup``. The Sentry event itself never depends on this: it goes through the
bridge as before.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry._logs import (
    LogRecord,
    NoOpLogger,
    NoOpLoggerProvider,
    SeverityNumber,
    get_logger_provider,
)

from .. import attributes as attr
from .._version import __version__
from .traceback_text import exception_message, exception_type_name, stacktrace

__all__ = [
    "ENV_VAR",
    "ExceptionSignal",
    "emit_exception_log",
    "event_name",
    "exception_signal",
    "severity_for",
]

_log = logging.getLogger("otel_sentry_bridge")

ENV_VAR = "OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN"
ExceptionSignal = Literal["spans", "logs", "both"]
# The instrumentation scope of our records: this package (SentryLogRecordProcessor and the
# Sentry OTLP log export both leave records of this scope alone).
SCOPE = "otel_sentry_bridge"
_SEVERITIES = {
    "fatal": SeverityNumber.FATAL,
    "critical": SeverityNumber.FATAL,
    "error": SeverityNumber.ERROR,
    "warning": SeverityNumber.WARN,
    "info": SeverityNumber.INFO,
    "debug": SeverityNumber.DEBUG,
}


def exception_signal(environ: Mapping[str, str] | None = None) -> ExceptionSignal:
    """``spans`` (the default), ``logs`` (``logs``) or ``both`` (``logs/dup``). Like the other
    ``OTEL_SEMCONV_*_OPT_IN`` variables, a comma-separated list: ``logs/dup`` wins over
    ``logs``; unknown values are ignored."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "")
    if not value:  # the common case, on every capture: nothing to parse
        return "spans"
    options = {part.strip().lower() for part in value.split(",")}
    if "logs/dup" in options:
        return "both"
    if "logs" in options:
        return "logs"
    return "spans"


def event_name(mechanism: str) -> str:
    """The event name of a capture by ``mechanism`` (``django``, ``logging``, ``celery``):
    ``otel_sentry_bridge.django.exception``. Never the generic ``exception``: the record says
    which hook captured it, and backends that treat ``exception`` events specially (as span
    events) are not confused by a copy."""
    kind = "".join(c if c.isalnum() or c in "._" else "_" for c in mechanism) or "generic"
    return f"{SCOPE}.{kind}.exception"


def severity_for(level: str, handled: bool = True) -> SeverityNumber:
    """The severity of a capture at Sentry ``level``; an unhandled exception is ERROR at
    least (FATAL stays FATAL)."""
    severity = _SEVERITIES.get(level.lower(), SeverityNumber.ERROR)
    if not handled and severity.value < SeverityNumber.ERROR.value:
        return SeverityNumber.ERROR
    return severity


def emit_exception_log(
    exc: BaseException,
    event_id: str,
    severity: SeverityNumber,
    attributes: Mapping[str, Any] | None = None,
    *,
    mechanism: str = "generic",
    body: str | None = None,
    logger_provider: Any = None,
) -> bool:
    """Emit ``exc``, captured under ``event_id``, as an OTel log record in the current
    context (its trace and span ids) through the global (or the given) logger provider.
    ``attributes`` are added (they must be OTel attribute values, and nothing secret: the
    logs backend gets them). Returns whether a record was emitted (False with no logger
    provider, or on failure). Never raises; costs what a span event costs (the cheap
    traceback text, no source lines)."""
    try:
        provider = logger_provider if logger_provider is not None else get_logger_provider()
        if isinstance(provider, NoOpLoggerProvider) or type(provider).__name__.startswith("Proxy"):
            return False  # no logger provider set: nothing would be emitted
        logger = provider.get_logger(SCOPE, __version__)
        if isinstance(logger, NoOpLogger):
            return False  # OTEL_SDK_DISABLED
        record_attributes: dict[str, Any] = {
            attr.EXCEPTION_TYPE: exception_type_name(type(exc)),
            attr.EXCEPTION_MESSAGE: exception_message(exc),
            attr.EXCEPTION_STACKTRACE: stacktrace(exc),
            **(attributes or {}),
            attr.EVENT_ID: event_id,
        }
        name = event_name(mechanism)
        try:
            record = LogRecord(
                severity_number=severity,
                severity_text=severity.name,
                body=body,
                attributes=record_attributes,
                event_name=name,
            )
        except TypeError:  # an API before event names (and contexts) on records: 1.27-1.34
            context = trace.get_current_span().get_span_context()
            record_attributes["event.name"] = name
            record = LogRecord(
                trace_id=context.trace_id,
                span_id=context.span_id,
                trace_flags=context.trace_flags,
                severity_number=severity,
                severity_text=severity.name,
                body=body,
                attributes=record_attributes,
            )
        logger.emit(record)
        return True
    except Exception:
        _log.debug("otel-sentry-bridge: could not emit the exception log record", exc_info=True)
        return False

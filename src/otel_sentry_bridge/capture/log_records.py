"""``SentryLogRecordProcessor``: OpenTelemetry log records that carry an exception, or an
error message, become Sentry events, as exceptions recorded on spans do.

OpenTelemetry is moving exceptions from span events to log records (semantic conventions:
``exception.type``/``exception.message``/``exception.stacktrace`` on a log record, whatever its
event name). This processor, on an SDK ``LoggerProvider``, hands each such record to every
active bridge (:func:`~otel_sentry_bridge.bridge.active_bridges`):

- a record with an exception: one Sentry error event, at any severity;
- a record at or above a bridge's ``event_level`` without one: a message event;
- anything else: nothing.

The event gets the record's own trace and span ids (a record outside any trace gets new
ones, as :mod:`.api` does), so a sampled-out trace still gives its error. On the emitting
thread it costs a few checks and a queue append (a :class:`~.record.DirectCapture` and, per
bridge, a :class:`~.record.CaptureRecord` in the bridge's store); parsing, building,
scrubbing, limits, the ignore list, sampling, ``before_send`` and delivery happen on the
bridge's threads, as for span events.

**One event per error across both signals.** The same ``logger.exception(...)`` often reaches
both OpenTelemetry's ``LoggingHandler`` (a log record) and our ``SpanEventHandler`` (a span
event); an exception our Django or Celery hook captured is logged again by the framework.
OpenTelemetry's handlers keep neither the exception object nor the ``logging.LogRecord`` on
the OTel record, and write ``exception.type`` as the bare class name and
``exception.message`` as ``str(args[0])``, where the span copies have the qualified name and
``str(exc)``: a signature match between the two copies is unreliable, and the copy queued
first (the log record, queued at once, while the span waits for its end) would win over our
capture. So the processor goes by identity first:

1. When the record was made by a ``logging`` handler on this thread, the ``logging.LogRecord``
   is found on the call stack (the ``logging.Handler.handle`` frame below the OTel handler).
   If a ``SpanEventHandler`` on the record's way up reports it as an event, that handler's
   capture is the event and the log record adds nothing.
2. The exception object (``exc_info`` of that ``logging.LogRecord``, or the SDK record's own
   ``exception`` from ``Logger.emit(exception=...)``): if one of our hooks already captured it
   (``already_captured``), nothing is added; otherwise the record is captured under a new
   event id and the exception is marked with it, so a later hook returns that id instead of
   sending it again.
3. A record with only the ``exception.*`` text (no object reachable: a record from another
   thread, a hand-built one) is sent as an *anonymous* copy, like an exception another
   instrumentation recorded on a span: the pipeline keeps one event per (trace, signature).
   Its type and message are first rewritten as ``Span.record_exception`` writes them (read
   from the traceback text), so that the signatures match. Such a copy needs the pipeline to
   treat a direct capture with ``exception.*`` attributes and no exception object as an
   exception (see docs/exceptions-as-log-records.md); until then it arrives as a message
   event naming the exception.

Records of this package, ``opentelemetry.*``, ``urllib3.*`` and ``requests.*``, records made
on the bridge's own threads, and records our own hooks emitted (they carry
``sentry.event_id``) are ignored. ``on_emit`` never raises.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry._logs import get_logger_provider
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor

from .. import attributes as attr
from ..bridge import Bridge, active_bridges
from ..convert.scrubber import scrubber_for
from ..deliver.worker import is_worker_thread
from .api import (
    already_captured,
    mark_captured,
    new_event_id,
    queue_direct,
    record_for,
    sentry_level,
)
from .log_handler import ignored_logger
from .record import CaptureRecord, Details, DirectCapture, Mechanism
from .snapshot import snapshot_mapping

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import ReadWriteLogRecord

from .log_record_reading import (  # what the records say
    _as_recorded,
    _attribute_logger,
    _exception_of,
    _extra,
    _log_entry,
    _logging_record,
    _reported_by_span_event_handler,
    _text,
)

__all__ = [
    "SentryLogRecordProcessor",
    "install_log_record_processor",
    "python_level",
]

_log = logging.getLogger("otel_sentry_bridge")

_EXCEPTION_KEYS = (attr.EXCEPTION_TYPE, attr.EXCEPTION_MESSAGE, attr.EXCEPTION_STACKTRACE)
# Python level of the first severity number of each band: TRACE 1-4, DEBUG 5-8, INFO 9-12,
# WARN 13-16, ERROR 17-20, FATAL 21-24 (ERROR2 is 41, as the SDK's handler maps 41 to ERROR2).
_BAND_LEVELS = (5, logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
_TEXT_LEVELS = {
    "TRACE": 5,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "CRITICAL": logging.CRITICAL,
}


def python_level(severity_number: Any, severity_text: Any = None) -> int:
    """The Python ``logging`` level of an OTel severity: ERROR (17) -> 40, ERROR2 -> 41,
    WARN (13) -> 30, FATAL (21) -> 50, ...; the severity text when there is no number; 0 when
    neither says anything."""
    number = getattr(severity_number, "value", severity_number)
    if type(number) is int and 1 <= number <= 24:
        band, step = divmod(number - 1, 4)
        return _BAND_LEVELS[band] + step
    if isinstance(severity_text, str):
        return _TEXT_LEVELS.get(severity_text.strip().upper().rstrip("1234"), 0)
    return 0


class SentryLogRecordProcessor(LogRecordProcessor):
    """Sends the exceptions (and error messages) of OpenTelemetry log records to Sentry.

    >>> logger_provider.add_log_record_processor(SentryLogRecordProcessor())

    It has no settings or delivery of its own: each record goes to the active bridges, made by
    a :class:`~otel_sentry_bridge.SentrySpanProcessor` (or by the zero-code instrumentor,
    which also installs this processor on the SDK ``LoggerProvider``); with none, records are
    left alone. Each bridge applies its own settings (``event_level``, ignored exceptions,
    local variables, denylist, sampling, ``before_send``).

    ``force_flush`` waits for the active bridges to send what is queued; ``shutdown`` stops
    this processor only (the bridges belong to their span processors).
    """

    def __init__(self) -> None:
        self._shut_down = False

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Called on the emitting thread: a few checks and a queue append; never raises."""
        if self._shut_down:
            return
        try:
            _capture(log_record)
        except Exception:  # never into the application
            _log.debug("otel-sentry-bridge: log record capture failed", exc_info=True)

    def emit(self, log_data: Any) -> None:
        """The name older SDKs call (with a ``LogData``: ``log_record`` and
        ``instrumentation_scope``, the resource on the record)."""
        self.on_emit(log_data)

    def shutdown(self) -> None:
        self._shut_down = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait until every event the active bridges have queued so far has been sent,
        spooled or given up on."""
        deadline = time.monotonic() + timeout_millis / 1000.0
        flushed = True
        for bridge in active_bridges():
            flushed = bridge.flush(max(0.0, deadline - time.monotonic())) and flushed
        return flushed


_install_lock = threading.Lock()
_installed: weakref.WeakSet[Any] = weakref.WeakSet()  # logger providers with our processor


def install_log_record_processor(logger_provider: Any = None) -> bool:
    """Add a :class:`SentryLogRecordProcessor` to ``logger_provider`` (default: the global
    one) when it is an SDK ``LoggerProvider``; once per provider. True when the provider has
    our processor (now or from before), False when there is no SDK provider (the API's proxy
    until the application or the SDK configurator sets one). Never raises."""
    try:
        provider = logger_provider if logger_provider is not None else get_logger_provider()
        if not isinstance(provider, LoggerProvider):
            return False
        with _install_lock:
            if provider not in _installed:
                provider.add_log_record_processor(SentryLogRecordProcessor())
                _installed.add(provider)
        return True
    except Exception:
        _log.warning("otel-sentry-bridge: could not add the log record processor", exc_info=True)
        return False


# -- on the emitting thread ---------------------------------------------------------------


def _capture(data: Any) -> None:
    record = data.log_record
    attributes: Mapping[str, Any] = record.attributes or {}
    bridges = active_bridges()
    if not bridges or attr.EVENT_ID in attributes:
        return  # no bridge, or a record one of our hooks emitted
    has_exception = any(key in attributes for key in _EXCEPTION_KEYS)
    levelno = python_level(record.severity_number, record.severity_text)
    if not has_exception and levelno < min(b.settings.event_level for b in bridges):
        return  # the common case: an INFO line
    if is_worker_thread():
        return
    scope = getattr(data, "instrumentation_scope", None)
    scope_name = str(getattr(scope, "name", "") or "")
    logger_name = scope_name or _attribute_logger(attributes)
    if ignored_logger(scope_name) or ignored_logger(logger_name):
        return
    source = _logging_record(logger_name)
    if source is not None and _reported_by_span_event_handler(source):
        return  # our handler's capture of this very call is the event
    exc = _exception_of(source, record)
    if exc is None and not has_exception:
        if logger_name == "django.request":
            return  # a 4xx/5xx the view returned on purpose (as SpanEventHandler skips it)
        _capture_message(data, bridges, levelno, logger_name, source)
    elif exc is not None:
        _capture_exception(data, bridges, exc, levelno, logger_name, source)
    else:
        _send_anonymous(data, bridges, levelno, logger_name)


def _capture_exception(
    data: Any,
    bridges: list[Bridge],
    exc: BaseException,
    levelno: int,
    logger_name: str,
    source: logging.LogRecord | None,
) -> None:
    if already_captured(exc):
        return  # one of our hooks (or an earlier record) has it: that event is the one
    takers = [bridge for bridge in bridges if not bridge.ignores(exc)]
    if not takers:
        return
    event_id = new_event_id(takers)
    mark_captured(exc, event_id)
    record = data.log_record
    capture, fresh = _direct_capture(data, {attr.EVENT_ID: event_id}, logger_name, exc)
    base = CaptureRecord(
        event_id,
        mechanism=Mechanism("logging", True),
        level=sentry_level(levelno or logging.ERROR),
        logger=logger_name or None,
        logentry=_log_entry(source, record.body, getattr(record, "event_name", None)),
    )
    _deliver(takers, base, capture, fresh, record.attributes, exc)


def _capture_message(
    data: Any,
    bridges: list[Bridge],
    levelno: int,
    logger_name: str,
    source: logging.LogRecord | None,
) -> None:
    takers = [bridge for bridge in bridges if levelno >= bridge.settings.event_level]
    record = data.log_record
    entry = _log_entry(source, record.body, getattr(record, "event_name", None))
    if not takers or entry is None:
        return
    event_id = new_event_id(takers)
    level = sentry_level(levelno)
    attributes: dict[str, Any] = {
        attr.EVENT_ID: event_id,
        attr.SEND: True,
        attr.LEVEL: level,
        attr.LOG_MESSAGE: entry.formatted,
    }
    if logger_name:
        attributes[attr.LOGGER] = logger_name
    capture, fresh = _direct_capture(data, attributes, logger_name, None)
    base = CaptureRecord(event_id, level=level, logger=logger_name or None, logentry=entry)
    _deliver(takers, base, capture, fresh, record.attributes, None)


def _send_anonymous(data: Any, bridges: list[Bridge], levelno: int, logger_name: str) -> None:
    """Only the ``exception.*`` text: a copy like another instrumentation's span event, with
    no event id (the pipeline keeps one event per trace and signature) and no record."""
    attributes: Mapping[str, Any] = data.log_record.attributes
    stacktrace = _text(attributes.get(attr.EXCEPTION_STACKTRACE))
    type_name, message = _as_recorded(
        _text(attributes.get(attr.EXCEPTION_TYPE)),
        _text(attributes.get(attr.EXCEPTION_MESSAGE)),
        stacktrace,
    )
    event: dict[str, Any] = {
        attr.EXCEPTION_TYPE: type_name,
        attr.EXCEPTION_MESSAGE: message,
        attr.EXCEPTION_STACKTRACE: stacktrace,
        attr.MECHANISM_TYPE: "logging",
        attr.MECHANISM_HANDLED: True,
        attr.LEVEL: sentry_level(levelno or logging.ERROR),
        # The pipeline reads the exception.* text above; these say what the tracing backend
        # would show of the record.
        attr.SEND: True,
        attr.LOG_MESSAGE: f"{type_name}: {message}" if message else (type_name or "exception"),
    }
    if logger_name:
        event[attr.LOGGER] = logger_name
    capture, _ = _direct_capture(data, event, logger_name, None)
    for bridge in bridges:
        bridge.submit_direct(capture)


def _deliver(
    takers: list[Bridge],
    base: CaptureRecord,
    capture: DirectCapture,
    fresh_ids: bool,
    attributes: Mapping[str, Any] | None,
    exc: BaseException | None,
) -> None:
    """Each bridge's record (the record's attributes as ``extra``, scrubbed with its words;
    the request a middleware lends; local variables) into its store, then the capture onto
    its queue, as :mod:`.api` does for a direct capture."""
    extra = _extra(attributes)
    source = (
        (
            lambda settings: Details(
                extra=snapshot_mapping(
                    extra, scrubber_for(settings.denylist, settings.send_default_pii)
                )
            )
        )
        if extra
        else None
    )
    tb = exc.__traceback__ if exc is not None else None
    records = [(bridge, record_for(bridge, base, source, tb)) for bridge in takers]
    queue_direct(records, capture, in_trace=not fresh_ids)


def _direct_capture(
    data: Any, attributes: dict[str, Any], name: str, exc: BaseException | None
) -> tuple[DirectCapture, bool]:
    """The capture, with the record's trace and span ids (new ones outside any trace: the
    second item is then True); a recording span that logged it lends its name, kind and
    attributes (route, URL), as it does to a direct capture of :mod:`.api`."""
    record = data.log_record
    trace_id = record.trace_id or 0
    span_id = record.span_id or 0
    fresh = not trace_id
    if fresh:
        trace_id = secrets.randbits(128) or 1
    if not span_id or fresh:
        span_id = secrets.randbits(64) or 1
    capture = DirectCapture(
        trace_id=trace_id,
        span_id=span_id,
        timestamp_ns=record.timestamp or record.observed_timestamp or time.time_ns(),
        attributes=attributes,
        exception=exc,
        name=name or "log",
        resource=_resource(data),
    )
    span = trace.get_current_span(getattr(record, "context", None))
    if span.is_recording() and span.get_span_context().span_id == span_id:
        capture.name = str(getattr(span, "name", capture.name))
        capture.span_attributes = dict(getattr(span, "attributes", None) or {})
        capture.span_kind = getattr(getattr(span, "kind", None), "name", "INTERNAL")
    return capture, fresh


def _resource(data: Any) -> Mapping[str, Any] | None:
    """The log record's resource under the tracer provider's (environment, release, service
    tags: those of this process's span events win)."""
    own = getattr(data, "resource", None) or getattr(data.log_record, "resource", None)
    traced = getattr(trace.get_tracer_provider(), "resource", None)
    merged: dict[str, Any] = {}
    for resource in (own, traced):
        values = getattr(resource, "attributes", None)
        if isinstance(values, Mapping):
            merged.update(values)
    return merged or None

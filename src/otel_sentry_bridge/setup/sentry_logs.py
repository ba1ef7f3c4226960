"""Python log records to Sentry Logs over OTLP: the logging handler and the log record
processor that :func:`~.sentry_otlp.install_sentry_otlp` installs for the ``logs`` signal.

What leaves: the message formatted and scrubbed as free text, level, logger, code location,
exception type, message and traceback text, and the trace and span ids of the current span;
never the record's ``extra=`` values. Records of the bridge's own, OpenTelemetry's and the
HTTP stack's loggers never go (feedback loops). The exporter then scrubs every record it sends,
whoever made it (:mod:`~..convert.otlp_scrub`: the exception message and traceback text among
the attributes too).
"""

from __future__ import annotations

import logging
import threading
import warnings
from typing import TYPE_CHECKING, Any

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

from ..capture.log_handler import (
    IGNORED_LOGGERS,
    RECORD_FIELDS,
    SpanEventHandler,
    print_if_no_other_handler,
)
from ..capture.log_install import HandlerInstaller
from ..convert.scrubber import Scrubber, scrubber_for

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import ReadWriteLogRecord

__all__ = [
    "HandlerUpkeep",
    "SentryLogRecords",
    "SentryLogsHandler",
    "feedback_logger",
    "severity_floor",
]

# Loggers whose records never go to Sentry's logs: those the bridge's own handler ignores
# (the bridge, OpenTelemetry, whose exporter logs its failures, and the HTTP stack under the
# exporter): feedback loops otherwise. (django.server's request lines do go: they are logs.)
_FEEDBACK_ROOTS = frozenset(IGNORED_LOGGERS)


# -- logs: the handler and the processor ------------------------------------------------------


def feedback_logger(name: str) -> bool:
    return name.partition(".")[0] in _FEEDBACK_ROOTS


def _not_feedback(record: logging.LogRecord) -> bool:
    return not feedback_logger(record.name)


def _exported(record: logging.LogRecord, scrubber: Scrubber) -> logging.LogRecord:
    """A copy of the record as it may leave: without its ``extra=`` values (the bridge scrubs
    those for Sentry events; here they would go out as they are), and with its message
    formatted and scrubbed as free text (``token=...``, URL passwords), as breadcrumbs are."""
    fields = {k: v for k, v in vars(record).items() if k in RECORD_FIELDS}
    try:
        message = record.getMessage()
    except Exception:  # bad %-args: what logging itself would show is the template
        message = str(record.msg)
    fields["msg"] = scrubber.free_text(message)
    fields["args"] = None
    return logging.makeLogRecord(fields)


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
        self.upkeep: HandlerUpkeep | None = None  # what keeps it attached (set on install)
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
        print_if_no_other_handler(
            record,
            last,
            lambda handler: handler is not self and not isinstance(handler, SpanEventHandler),
        )


def severity_floor(level: int) -> int:
    """The lowest OpenTelemetry severity number of a Python record at ``level`` or above, as
    the SDK's handler maps levels: 10 DEBUG -> 5, 20 INFO -> 9, 30 WARNING -> 13, 40 ERROR ->
    17, 50 CRITICAL -> 21, up to 3 more for levels just above those; below 10, unspecified."""
    if level < logging.DEBUG:
        return 0
    if level > 53:
        return 24
    decade, rest = divmod(level, 10)
    return 4 * decade + 1 + min(rest, 3)


class SentryLogRecords(LogRecordProcessor):
    """The batch processor exporting to Sentry, behind a gate for records that reach the
    provider some other way than our handler (the application's own OTel logging handler,
    other instrumentations): below the level, or from a feedback-loop logger, they stay out."""

    def __init__(self, exporter: OTLPLogExporter, level: int) -> None:
        self.batch = BatchLogRecordProcessor(exporter)
        self._floor = severity_floor(level)

    def _wanted(self, item: Any) -> bool:
        scope = getattr(item, "instrumentation_scope", None)
        if feedback_logger(str(getattr(scope, "name", "") or "")):
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


class HandlerUpkeep:
    """Keeps a handler where the bridge keeps ``SpanEventHandler`` (the root logger and every
    logger that does not propagate, see :class:`~..capture.log_install.HandlerInstaller`); a
    Django ``LOGGING`` (``dictConfig``) may remove it, so every request start puts it back."""

    def __init__(self, handler: SentryLogsHandler) -> None:
        self.handler = handler
        self._installer = HandlerInstaller(handler, skip=feedback_logger)
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


def handler_feeding(provider: Any) -> logging.Handler | None:
    """An OpenTelemetry logging handler on the root logger that emits into ``provider``."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_logger_provider", None) is provider:
            return handler
    return None

"""``SpanEventHandler``: log records become OTel span events, and through them Sentry events.

- ERROR and above with ``exc_info``: an ``exception`` span event (mechanism ``logging``) ->
  a Sentry exception event with ``logger``, ``level`` and ``logentry``.
- ERROR and above without ``exc_info``: a ``log`` span event marked for sending -> a Sentry
  message event.
- INFO/WARNING (the breadcrumb level and above): a ``log`` span event, visible in Jaeger, and a
  breadcrumb for a later Sentry event of the same trace.

Records of this package, ``opentelemetry.*``, ``urllib3.*`` and ``requests.*``, and anything
logged on the bridge's worker thread, are ignored: that is where feedback loops start.
``emit`` never raises and never blocks on I/O.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from itertools import islice
from typing import Any

from opentelemetry import trace

from .. import attributes as attr
from ..bridge import active_bridges, newest_settings
from ..convert.bound import MAX_ITEMS
from ..convert.scrub import scrubber_for
from ..deliver.worker import is_worker_thread
from ..safe_repr import safe_repr
from ..setup.config import Settings, load_settings
from .api import (
    already_captured,
    breadcrumb_key,
    capture_exception,
    capture_message,
    sentry_level,
)
from .record import Details, DetailsSource
from .snapshot import snapshot_mapping

__all__ = [
    "IGNORED_LOGGERS",
    "MAX_PARAMS",
    "RECORD_FIELDS",
    "SpanEventHandler",
    "ignored_logger",
    "log_params",
    "print_if_no_other_handler",
]

IGNORED_LOGGERS: tuple[str, ...] = ("otel_sentry_bridge", "opentelemetry", "urllib3", "requests")
# Django's development server logs every 5xx response line at ERROR: the exception itself is
# already captured by the signal hook, so that line would be a second event.
_IGNORED_EXACT = frozenset({"django.server"})

# LogRecord's own attributes; anything else on a record came from ``extra=``.
RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
_MAX_PARAM_CHARS = 512
# Arguments of one log call read: Sentry keeps the first MAX_ITEMS of ``logentry.params``.
MAX_PARAMS = MAX_ITEMS
# Nanoseconds since the epoch fit a signed 64-bit integer (OTLP, the SDK) up to here.
_LATEST_SECONDS = 2**63 / 1e9


class SpanEventHandler(logging.Handler):
    """A ``logging.Handler`` recording records as span events on the current span.

    ``event_level`` (default ERROR) and ``breadcrumb_level`` (default INFO) set the thresholds;
    ``max_log_events_per_span`` caps the ``log`` events one span gets, so that a burst of log
    lines never pushes an exception event out of the SDK's span event limit. Defaults come
    from the environment (``OTEL_SENTRY_*``) or the given ``settings``.
    """

    def __init__(
        self,
        level: int = logging.NOTSET,
        *,
        event_level: int | None = None,
        breadcrumb_level: int | None = None,
        max_log_events_per_span: int | None = None,
        settings: Settings | None = None,
    ) -> None:
        super().__init__(level)
        base = settings or newest_settings() or load_settings()
        self.event_level = base.event_level if event_level is None else event_level
        self.breadcrumb_level = (
            base.breadcrumb_level if breadcrumb_level is None else breadcrumb_level
        )
        self.max_log_events_per_span = (
            base.max_log_events_per_span
            if max_log_events_per_span is None
            else max_log_events_per_span
        )
        self._local = threading.local()
        self._span_counts: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self._counts_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        last_resort = logging.lastResort
        if last_resort is not None and record.levelno >= last_resort.level:
            self._stand_in_for_last_resort(record, last_resort)
        if record.levelno < min(self.event_level, self.breadcrumb_level):
            return
        if getattr(self._local, "busy", False) or ignored_logger(record.name):
            return
        if record.name == "django.request" and not record.exc_info:
            # Django's log line for a 4xx/5xx response the view returned on purpose (written
            # after the request span ended): the response is not an error to report.
            return
        if is_worker_thread():
            return
        self._local.busy = True
        try:
            self._emit(record)
        except Exception:  # logging must never break the caller
            pass
        finally:
            self._local.busy = False

    def _stand_in_for_last_resort(self, record: logging.LogRecord, last: logging.Handler) -> None:
        """Logging prints a WARNING+ record that meets no handler on stderr (``lastResort``);
        this handler counts as one, so an application without logging configuration would
        lose its error output (and see none of our warnings) once we are attached."""
        print_if_no_other_handler(record, last, lambda handler: handler is not self)

    def _emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and already_captured(exc):
            return  # e.g. django.request's copy of what the signal hook captured
        formatted = _formatted(record)
        level = sentry_level(record.levelno)
        if record.levelno >= self.event_level:
            template = _template(record.msg)
            params = log_params(record.args)
            details = _extra_details(record)
            if exc is not None:
                capture_exception(
                    exc,
                    mechanism="logging",
                    handled=True,
                    level=level,
                    logger=record.name,
                    logentry=(template, params, formatted),
                    details=details,
                    name=record.name,
                )
            else:
                capture_message(
                    formatted,
                    level=level,
                    logger=record.name,
                    template=template,
                    params=params,
                    details=details,
                    on_span=self._take_span_budget(),
                )
            return
        self._breadcrumb(record, formatted, level)

    def _breadcrumb(self, record: logging.LogRecord, message: str, level: str) -> None:
        span = trace.get_current_span()
        created = _created_seconds(record.created)
        crumb = {
            "type": "default",
            "category": record.name,
            "level": level,
            "message": message,
            "timestamp": created,
        }
        key = breadcrumb_key(span.get_span_context())
        for bridge in active_bridges():
            bridge.store.add_breadcrumb(key, crumb)
        if span.is_recording() and self._take_span_budget(span):
            span.add_event(
                attr.LOG_EVENT,
                {attr.LOG_MESSAGE: message, attr.LEVEL: level, attr.LOGGER: record.name},
                timestamp=int(created * 1e9),
            )

    def _take_span_budget(self, span: Any = None) -> bool:
        """Count one more log event on the current span; False once its budget is spent."""
        span = span if span is not None else trace.get_current_span()
        if not span.is_recording():
            return False
        with self._counts_lock:
            count = self._span_counts.get(span, 0)
            if count >= self.max_log_events_per_span:
                return False
            self._span_counts[span] = count + 1
        return True


def _extra_details(record: logging.LogRecord) -> DetailsSource:
    """The record's ``extra=`` values, copied now (they are live objects) as bounded data
    scrubbed with each bridge's denylist (Sentry only): nested mappings keep their structure,
    so a secret inside them is filtered by its key. A key need not be a str (``extra={1: v}``):
    the snapshot shows its repr. Extras that cannot be read give none, never a lost event."""
    values = record.__dict__
    try:
        if values.keys() <= RECORD_FIELDS:
            return None  # most records: one subset test in C, no set made
        fields = {
            key: value
            for key, value in values.items()
            if key not in RECORD_FIELDS and not (isinstance(key, str) and str.startswith(key, "_"))
        }
    except Exception:  # a key whose __eq__ raises, a filter changing the record meanwhile
        return None
    if not fields:
        return None
    return lambda settings: Details(
        extra=snapshot_mapping(fields, scrubber_for(settings.denylist, settings.send_default_pii))
    )


def print_if_no_other_handler(
    record: logging.LogRecord, last: logging.Handler, counts: Callable[[logging.Handler], bool]
) -> None:
    """Hand ``record`` to ``last`` (``logging.lastResort``) when no handler that ``counts`` is
    on its way up: print it as logging would have without our handlers. Never raises."""
    try:
        logger: Any = logging.Logger.manager.loggerDict.get(record.name)
        if not isinstance(logger, logging.Logger):  # the root, or a hand-made record
            logger = logging.getLogger()
        while logger is not None:
            for handler in logger.handlers:
                if counts(handler):
                    return
            logger = logger.parent if logger.propagate else None
        last.handle(record)
    except Exception:  # logging must never break the caller
        pass


_IGNORED_ROOTS = frozenset(IGNORED_LOGGERS)


def ignored_logger(name: str) -> bool:
    return name.partition(".")[0] in _IGNORED_ROOTS or name in _IGNORED_EXACT


def _template(msg: Any) -> str:
    if isinstance(msg, str):
        return msg
    try:
        text = str(msg)
    except Exception:  # a message object whose __str__ raises: keep its (safe) repr
        return safe_repr(msg)
    return text if isinstance(text, str) else safe_repr(msg)


def _formatted(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # bad %-args: keep the template rather than lose the record
        return safe_repr(record.msg)


def _created_seconds(created: Any) -> float:
    """``LogRecord.created`` as seconds since the epoch. A filter or ``makeLogRecord`` may put
    anything there: a ``datetime`` is read as its time, anything else that is not a plausible
    time (a string, NaN, a negative or far-future number) is now. Never raises."""
    try:
        value = created.timestamp() if isinstance(created, datetime) else created
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and 0.0 <= value < _LATEST_SECONDS
        ):
            return float(value)
    except Exception:  # a datetime out of the platform's range, a number subclass that raises
        pass
    return time.time()


def log_params(args: Any) -> tuple[str, ...]:
    """The ``%``-arguments of a log call as bounded strings: the values of a mapping, the
    items of a tuple, else the one value (as ``logging`` reads them; falsy ``args`` are none).
    At most ``MAX_PARAMS`` are read, so the cost does not grow with the arguments; arguments
    that cannot be read (a mapping that cannot be iterated) give none. Never raises."""
    try:
        if not args:
            return ()
        values: Iterable[Any]
        if type(args) is tuple:  # nearly always: logger.error("... %s", value)
            values = args
        elif isinstance(args, Mapping):
            values = args.values()
        elif isinstance(args, tuple):
            values = args
        else:
            values = (args,)
        return tuple(_param(value) for value in islice(values, MAX_PARAMS))
    except Exception:  # user code: __len__, __iter__, __getitem__ of a mapping
        return ()


def _param(value: Any) -> str:
    kind = type(value)
    if kind is str and len(value) <= _MAX_PARAM_CHARS:
        return str(value)
    if kind is float or kind is bool or (kind is int and value.bit_length() < 64):
        return repr(value)  # exact types, small: their repr is safe and short
    return safe_repr(value, _MAX_PARAM_CHARS)

"""What an OTel log record says, and which error it is: reading a record for
:mod:`.log_records` (the Python ``logging.LogRecord`` behind it, its exception object, the
type and message as ``record_exception`` writes them, its logger, template and arguments).
Pure but for the one look up the stack for the ``logging.LogRecord`` being handled."""

from __future__ import annotations

import builtins
import logging
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..safe_repr import safe_repr
from .log_handler import SpanEventHandler, log_params
from .record import LogEntry

if TYPE_CHECKING:
    pass

__all__: list[str] = []  # used by log_records only

_MAX_FRAMES = 12
# logging.Handler.handle(self, record): the frame that holds the logging.LogRecord an OTel
# logging handler is translating. A few frames below on_emit (SDK Logger.emit, the
# multi-processor, the handler's emit, a subclass's handle); never searched further.
_HANDLE_CODE = logging.Handler.handle.__code__
_MAX_HEADER_TRIES = 8
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
# Attributes that name a logger when the instrumentation scope does not.
_LOGGER_KEYS = ("logger.name", "code.namespace")
# Attributes that are not the application's own ``extra`` values.
_NOT_EXTRA_PREFIXES = ("exception.", "code.", "sentry.", "otel")


# -- which error is it --------------------------------------------------------------------


def _logging_record(name: str) -> logging.LogRecord | None:
    """The ``logging.LogRecord`` an OTel logging handler is translating on this thread, if
    that is where this record comes from (its logger name is the scope name)."""
    frame = sys._getframe(2)
    for _ in range(_MAX_FRAMES):
        if frame.f_code is _HANDLE_CODE:
            found = frame.f_locals.get("record")
            return found if isinstance(found, logging.LogRecord) and found.name == name else None
        back = frame.f_back
        if back is None:
            return None
        frame = back
    return None


def _reported_by_span_event_handler(record: logging.LogRecord) -> bool:
    """Whether a ``SpanEventHandler`` on the record's way up makes it an event (it then
    captures it itself, before or after this record, whatever the handlers' order)."""
    logger: Any = logging.Logger.manager.loggerDict.get(record.name)
    if not isinstance(logger, logging.Logger):  # the root, or a hand-made record
        logger = logging.getLogger()
    levelno = record.levelno
    while logger is not None:
        for handler in logger.handlers:
            if (
                isinstance(handler, SpanEventHandler)
                and levelno >= handler.level
                and levelno >= handler.event_level
            ):
                return True
        logger = logger.parent if logger.propagate else None
    return False


def _exception_of(source: logging.LogRecord | None, record: Any) -> BaseException | None:
    if source is not None and source.exc_info:
        exc = source.exc_info[1]
        if isinstance(exc, BaseException):
            return exc
    exc = getattr(record, "exception", None)  # Logger.emit(exception=...) (SDK 1.35+)
    return exc if isinstance(exc, BaseException) else None


def _as_recorded(type_name: str, message: str, stacktrace: str) -> tuple[str, str]:
    """``exception.type`` and ``exception.message`` as ``Span.record_exception`` writes them
    (qualified name, ``str(exc)``), read from the raised exception's line of the traceback
    text; OTel's logging handlers write the bare class name and ``str(args[0])``. What cannot
    be read without doubt is left as it is."""
    if not type_name or not stacktrace:
        return type_name, message
    header = _printed_header(stacktrace, type_name)
    if header is None:
        return type_name, message
    printed, end = header
    head = printed.partition(".")[0]
    if not hasattr(builtins, head) and head not in sys.modules:
        # Python prints a class of __main__ without its module (as convert/filters.py reads it)
        printed = f"__main__.{printed}"
    if not stacktrace.startswith(": ", end):
        return printed, ""  # Python prints the bare name when str(exc) is empty
    rest = stacktrace[end + 2 :].rstrip("\n")
    if message and (rest == message or rest.startswith(message + "\n")):
        return printed, message  # the message itself (and the exception's notes)
    return printed, rest if "\n" not in rest else message


def _printed_header(text: str, type_name: str) -> tuple[str, int] | None:
    """The name of the raised exception as Python printed it at the start of its line
    (``pkg.mod.Error`` for ``Error``) and where it ends in ``text``; the last such line."""
    end = len(text)
    for _ in range(_MAX_HEADER_TRIES):
        at = text.rfind(type_name, 0, end)
        if at < 0:
            return None
        stop = at + len(type_name)
        line_start = text.rfind("\n", 0, at) + 1
        prefix = text[line_start:at]
        follows = text[stop : stop + 2]
        if (follows in ("", "\n") or follows == ": ") and (
            not prefix or (prefix.endswith(".") and _DOTTED.fullmatch(prefix[:-1]) is not None)
        ):
            return prefix + type_name, stop
        end = stop - 1
    return None


# -- what the record says ------------------------------------------------------------------


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else safe_repr(value))


def _attribute_logger(attributes: Mapping[str, Any]) -> str:
    for key in _LOGGER_KEYS:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _log_entry(source: logging.LogRecord | None, body: Any, event_name: Any) -> LogEntry | None:
    """The message: from the ``logging.LogRecord`` when there is one (its template groups the
    events in Sentry), else the record's body (or event name)."""
    if source is not None:
        template = source.msg if isinstance(source.msg, str) else _text(source.msg)
        try:
            formatted = source.getMessage()
        except Exception:  # bad %-args: the template rather than nothing
            formatted = template
        # The arguments as SpanEventHandler reads them: bounded, and none when unreadable.
        return LogEntry(template, log_params(source.args), formatted)
    text = _text(body) or (event_name if isinstance(event_name, str) else "")
    return LogEntry(text, (), text) if text else None


def _extra(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """The record's own attributes (``extra=`` of a logging call, attributes given to
    ``Logger.emit``), without the exception, code location and our own keys."""
    if not attributes:
        return {}
    return {
        key: value
        for key, value in attributes.items()
        if isinstance(key, str) and not key.startswith(_NOT_EXTRA_PREFIXES)
    }

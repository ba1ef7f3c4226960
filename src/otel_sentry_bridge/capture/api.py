"""Record an exception or an error message as an OTel span event, for Sentry and for Jaeger.

Runs on the request thread, so it does the least it can: stamp an event id, put the event on
the current span (what ``record_exception`` writes, with the event id) and leave one typed
:class:`~.record.CaptureRecord` (level, logger, request details, local variables: Sentry
only) in the store of every active bridge, each made with that bridge's settings. When no
span is recording (sampled out, or no span at all), the capture goes straight to the bridges'
queues with the current trace context, so sampling never loses an error. Never raises.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

from opentelemetry import trace

from .. import attributes as attr
from ..bridge import Bridge, active_bridges
from ..convert.filters import IgnoredTypes
from ..setup.config import DEFAULT_IGNORED_EXCEPTIONS, Settings
from .record import (
    CaptureRecord,
    Details,
    DetailsSource,
    DirectCapture,
    LogEntry,
    Mechanism,
    resolve_details,
)
from .signal_opt_in import emit_exception_log, exception_signal, severity_for
from .snapshot import frame_variables
from .store import ExpectedKey
from .template_frames import template_frame
from .traceback_text import exception_message, exception_type_name, stacktrace

__all__ = [
    "REQUEST_DETAILS",
    "already_captured",
    "breadcrumb_key",
    "capture_exception",
    "capture_message",
    "captured_event_id",
    "expected_key",
    "mark_captured",
    "new_event_id",
    "queue_direct",
    "record_for",
    "sentry_level",
]

_log = logging.getLogger("otel_sentry_bridge")
_MARK = "__otel_sentry_event_id__"
# Set by the Django middleware while it serves a request: that request's Sentry details for a
# bridge's settings, computed only when a capture needs them.
REQUEST_DETAILS: ContextVar[Callable[[Settings], Details] | None] = ContextVar(
    "otel_sentry_bridge_request_details", default=None
)


def already_captured(exc: BaseException) -> bool:
    return captured_event_id(exc) is not None


def captured_event_id(exc: BaseException) -> str | None:
    """The event id ``exc`` was captured under in this occurrence of it, else None.

    An occurrence is the exception in the current trace: logged, then re-raised and caught
    by a hook further out (its traceback grown by the frames it went through), or logged
    again by a framework (``django.request``, a server's error log, once the request's span
    has ended too), it is one event. The same object raised or logged in another trace (a
    cached error, a failed future awaited by the next request) is a new occurrence, with an
    event of its own. Outside any trace (a script, a thread without a span) it is always
    the same occurrence."""
    mark = getattr(exc, _MARK, None)
    if type(mark) is not tuple or len(mark) != 2:
        return None
    event_id, key = mark
    context = trace.get_current_span().get_span_context()
    if context.is_valid and breadcrumb_key(context) != key:
        return None
    return event_id if isinstance(event_id, str) else None


def mark_captured(
    exc: BaseException, event_id: str = "", *, context: trace.SpanContext | None = None
) -> None:
    """Mark this occurrence of ``exc`` as dealt with (``captured_event_id``): a later capture
    of it (e.g. the log line a framework writes about it) returns ``event_id`` instead of
    sending it again. Empty for an exception deliberately not sent. ``context``: the current
    span's, when the caller has it already."""
    if context is None:
        context = trace.get_current_span().get_span_context()
    key = breadcrumb_key(context)
    try:
        # Plain values only: the exception may be pickled (a Celery task's result to its
        # parent process, which then sees its copy as captured).
        setattr(exc, _MARK, (event_id, key))
    except Exception:  # exceptions with __slots__ or read-only attributes
        pass


def sentry_level(levelno: int) -> str:
    if levelno >= logging.CRITICAL:
        return "fatal"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


def expected_key(span_id: int, exc: BaseException) -> ExpectedKey:
    """How the worker finds the record a hook left for ``exc`` when another instrumentation
    records it on the span: (span id, type and message as ``Span.record_exception`` writes
    them)."""
    return (span_id, exception_type_name(type(exc)), exception_message(exc))


def _ignored_by_default(exc: BaseException) -> bool:
    """Without any bridge, exceptions still go on the span (for the tracing backend), except
    those no default configuration reports (Http404 and friends)."""
    return IgnoredTypes(DEFAULT_IGNORED_EXCEPTIONS).matches(exception_type_name(type(exc)))


def new_event_id(bridges: Sequence[Bridge] = ()) -> str:
    """A fresh event id: from the first of ``bridges`` (see ``Bridge.new_event_id``), else
    from the OS. Never from the `random` module, which an application may reseed."""
    return bridges[0].new_event_id() if bridges else os.urandom(16).hex()


def breadcrumb_key(context: trace.SpanContext) -> int:
    """Breadcrumbs are kept per trace; outside any trace, per thread."""
    return context.trace_id if context.is_valid else -threading.get_ident()


def capture_exception(
    exc: BaseException | None = None,
    *,
    mechanism: str = "generic",
    handled: bool = True,
    level: str = "error",
    logger: str | None = None,
    logentry: tuple[str, Sequence[str], str] | None = None,
    details: DetailsSource = None,
    recorded_elsewhere: bool = False,
    name: str = "capture",
) -> str | None:
    """Record ``exc`` (default: the one being handled) for Sentry; return its event id.

    Returns None when there is nothing to capture, every active bridge ignores its type, or
    capturing failed. The same exception object captured twice keeps its first event id
    (raven's ``skip_error_for_logging``: the ``django.request`` log of an exception the signal
    already captured is not sent again). ``details`` (or a function of a bridge's settings
    giving them) is what the framework knows: request, user, transaction, task.
    """
    try:
        if exc is None:
            exc = sys.exc_info()[1]
        if exc is None:
            return None
        previous = captured_event_id(exc)
        if previous is not None:
            return previous
        bridges = active_bridges()
        takers = [bridge for bridge in bridges if not bridge.ignores(exc)]
        if bridges and not takers:
            return None
        if not bridges and _ignored_by_default(exc):
            return None
        event_id = new_event_id(takers)
        span = trace.get_current_span()
        mark_captured(exc, event_id, context=span.get_span_context())
        base = CaptureRecord(
            event_id,
            mechanism=Mechanism(mechanism, handled),
            level=level,
            logger=logger,
            logentry=LogEntry(logentry[0], tuple(logentry[1]), logentry[2]) if logentry else None,
            template_frame=template_frame(exc),
        )
        records = [
            (bridge, record_for(bridge, base, details, exc.__traceback__)) for bridge in takers
        ]
        _deliver(records, exc, {attr.EVENT_ID: event_id}, name, recorded_elsewhere, span=span)
        return event_id
    except Exception:
        _log.debug("otel-sentry-bridge: capture failed", exc_info=True)
        return None


def capture_message(
    message: str,
    *,
    level: str = "error",
    logger: str | None = None,
    template: str | None = None,
    params: Sequence[str] = (),
    details: DetailsSource = None,
    on_span: bool = True,
) -> str | None:
    """Record an error message (no exception) that becomes a Sentry message event.

    ``on_span=False`` sends it without adding a span event (the span's event budget is spent).
    """
    try:
        bridges = active_bridges()
        event_id = new_event_id(bridges)
        base = CaptureRecord(
            event_id,
            level=level,
            logger=logger,
            logentry=LogEntry(
                template if template is not None else message, tuple(params), message
            ),
        )
        records = [(b, record_for(b, base, details, None)) for b in bridges]
        # On the span, what the tracing backend shows of a log line; the rest is the record's.
        attributes: dict[str, Any] = {
            attr.EVENT_ID: event_id,
            attr.SEND: True,
            attr.LEVEL: level,
            attr.LOG_MESSAGE: message,
        }
        if logger:
            attributes[attr.LOGGER] = logger
        _deliver(records, None, attributes, logger or "capture", False, on_span=on_span)
        return event_id
    except Exception:
        _log.debug("otel-sentry-bridge: capture failed", exc_info=True)
        return None


def record_for(
    bridge: Bridge, base: CaptureRecord, source: DetailsSource, tb: Any
) -> CaptureRecord:
    """``base`` completed with what ``bridge``'s settings ask for: details (and the request the
    web framework lends, when the hook knows none), local variables."""
    settings = bridge.settings
    lent = REQUEST_DETAILS.get()
    with_locals = tb is not None and settings.include_local_variables
    if source is None and lent is None and not with_locals:
        return base  # nothing to add (this runs for every capture: no copy for nothing)
    details = resolve_details(source, settings)
    if details.request is None and lent is not None:
        details = details.over(resolve_details(lent, settings))
    frame_vars = tuple(frame_variables(tb, bridge.scrubber)) if with_locals else ()
    return base.completed(details, frame_vars)


def _deliver(
    records: list[tuple[Bridge, CaptureRecord]],
    exc: BaseException | None,
    attributes: dict[str, Any],
    name: str,
    recorded_elsewhere: bool,
    *,
    on_span: bool = True,
    span: trace.Span | None = None,
) -> None:
    """Put the event on the current span and each record in its bridge's store; without a
    recording span (or with ``on_span`` False), queue a direct capture to each bridge.

    Under ``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN=logs`` (or ``logs/dup``) an exception is also
    emitted as an OTel log record (with its event id: the log record processor does not send
    it again); with ``logs`` it is then not added to the span, and goes to the bridges as a
    direct capture with the span's context instead. ``span``: the current span, when the
    caller has it already."""
    if exc is not None:
        signal = records[0][0].exception_signal if records else exception_signal()
        if signal != "spans":
            first = records[0][1] if records else None
            emit_exception_log(
                exc,
                attributes[attr.EVENT_ID],
                severity_for(first.level, first.mechanism.handled) if first else severity_for(""),
                mechanism=first.mechanism.type if first else "generic",
            )
            if signal == "logs" and not recorded_elsewhere:
                on_span = False
    if span is None:
        span = trace.get_current_span()
    context = span.get_span_context()
    if on_span and span.is_recording():
        if exc is not None and recorded_elsewhere:
            # The Django (or Celery) instrumentation records this very exception on this span
            # when the response goes out: its record waits for that copy.
            key = expected_key(context.span_id, exc)
            for bridge, record in records:
                bridge.store.expect(key, record)
            return
        for bridge, record in records:
            bridge.store.put(record)
        if exc is None:
            span.add_event(attr.LOG_EVENT, attributes)
        else:
            # What Span.record_exception writes, with the cheap stacktrace text, and without
            # ``exception.escaped``, which the semantic conventions have made obsolete.
            attributes[attr.EXCEPTION_TYPE] = exception_type_name(type(exc))
            attributes[attr.EXCEPTION_MESSAGE] = exception_message(exc)
            attributes[attr.EXCEPTION_STACKTRACE] = stacktrace(exc)
            span.add_event("exception", attributes)
        return
    if not records:
        return
    trace_id, span_id = (context.trace_id, context.span_id) if context.is_valid else _new_ids()
    capture = DirectCapture(
        trace_id=trace_id,
        span_id=span_id,
        timestamp_ns=time.time_ns(),
        attributes=attributes,
        exception=exc,
        name=name,
        resource=_provider_resource(),
    )
    if span.is_recording():  # on_span=False: its details still describe the request
        capture.name = str(getattr(span, "name", name))
        capture.span_attributes = dict(getattr(span, "attributes", None) or {})
        capture.span_kind = getattr(getattr(span, "kind", None), "name", "INTERNAL")
    queue_direct(records, capture, in_trace=context.is_valid)


def queue_direct(
    records: list[tuple[Bridge, CaptureRecord]], capture: DirectCapture, *, in_trace: bool
) -> None:
    """Each record into its bridge's store, then ``capture`` onto that bridge's queue. Outside
    any trace there is no trace to look breadcrumbs up by later: a record takes this
    thread's now."""
    for bridge, record in records:
        if not in_trace:
            key = breadcrumb_key(trace.INVALID_SPAN_CONTEXT)  # this thread's
            crumbs = bridge.store.breadcrumbs(key, until=time.time())
            if crumbs:
                record = replace(record, breadcrumbs=tuple(crumbs))
        bridge.store.put(record)
        bridge.submit_direct(capture)


def _new_ids() -> tuple[int, int]:
    return secrets.randbits(128) or 1, secrets.randbits(64) or 1


def _provider_resource() -> Mapping[str, Any] | None:
    resource = getattr(trace.get_tracer_provider(), "resource", None)
    attributes = getattr(resource, "attributes", None)
    return attributes if isinstance(attributes, Mapping) else None

"""Celery signal hooks: a task that fails for good becomes one Sentry event.

``task_failure`` (raven's hook) fires only for a final failure: a ``Retry`` goes through
``task_retry`` instead, so a task that retries and then fails is reported once, with its
retry count. It fires in the process that ran the task, inside the task's span when
opentelemetry-instrumentation-celery is active; that span's trace is the one of the web request
that enqueued the task (the instrumentation carries it in the message headers).

- Exceptions listed in ``task.throws`` are expected: not sent (Celery itself logs them at INFO
  without a traceback, which makes them breadcrumbs). The copy the OTel instrumentation
  records on the span anyway is annotated ``sentry.send=False``.
- When the OTel instrumentation is about to record the exception on the task span (it
  records in its own ``task_failure`` receiver), the hook only annotates it, so Sentry gets
  exactly one event, with mechanism ``celery``/unhandled and the task data.
- An exception that does not pickle (an attribute holding a lock, a connection) reaches
  ``task_failure`` as a pickleable stand-in Celery made to send it across the pool's pipe
  (``UnpickleableExceptionWrapper``, or an instance of its nearest base class that pickles),
  and the OTel instrumentation records that stand-in. The hook reports the exception the task
  raised instead (its type, message, chain and frames; ``throws`` and ``ignored_exceptions``
  apply to it) and keeps the stand-in's copy on the span for tracing only.
- ``SoftTimeLimitExceeded`` is grouped per task, as raven did. ``Reject``/``Ignore``/``Retry``
  steer Celery and are not errors.
- Failures the worker's main process reports (hard time limit, lost child) have no span; the
  trace context is then read from the task's message headers when they are at hand.

Everything else about a worker is kept working: the log handler is re-attached after Celery
takes over the root logger, and pool children flush what they queued before they exit.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from contextvars import Token
from typing import Any

from celery import signals
from celery.exceptions import Ignore, Reject, Retry, SoftTimeLimitExceeded
from celery.utils.serialization import UnpickleableExceptionWrapper
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagate import extract
from opentelemetry.propagators.textmap import Getter

from ..bridge import active_bridges
from ..convert.scrub import scrubber_for
from ..setup.config import Settings
from .api import already_captured, capture_exception, expected_key, mark_captured
from .celery_task import parameter_names, soft_time_limit_fingerprint, task_extras
from .log_handler import SpanEventHandler
from .record import CaptureRecord, Details

__all__ = ["install", "uninstall"]

_log = logging.getLogger("otel_sentry_bridge")
_UID = "otel_sentry_bridge.celery."
# How a task steers Celery, not errors (Celery >= 5.5 sends task_failure for a Reject).
_CONTROL_FLOW = (Retry, Ignore, Reject)

try:  # billiard >= 4.0.1 wraps exceptions that cross the pool's pipe
    from billiard.einfo import ExceptionWithTraceback
except ImportError:  # pragma: no cover - older billiard
    ExceptionWithTraceback = None


def _connections() -> list[tuple[Any, Callable[..., None], str]]:
    return [
        (signals.task_failure, _on_task_failure, "task_failure"),
        # Celery's worker empties the root logger's handlers while it sets up logging, and
        # a pool child may run code that reconfigures logging: put the handler back.
        (signals.after_setup_logger, _keep_log_handler, "after_setup_logger"),
        (signals.after_setup_task_logger, _attach_to_task_logger, "after_setup_task_logger"),
        (signals.worker_process_init, _keep_log_handler, "worker_process_init"),
        (signals.task_prerun, _keep_log_handler, "task_prerun"),
        (signals.worker_process_shutdown, _flush_before_exit, "worker_process_shutdown"),
    ]


def install() -> None:
    """Connect the hooks, and keep Celery's own log line of a reported failure out of the
    root logger's :class:`SpanEventHandler`. Idempotent."""
    for signal, receiver, name in _connections():
        signal.connect(receiver, weak=False, dispatch_uid=_UID + name)
    _filter_failure_logs()


def uninstall() -> None:
    for signal, receiver, name in _connections():
        signal.disconnect(receiver, dispatch_uid=_UID + name)
    for handler in _root_span_event_handlers():
        handler.removeFilter(_not_reported_failure)


def _warn_once(what: str) -> None:
    """Each problem once per bridge (a broken hook fails for every task alike)."""
    bridges = active_bridges()
    if bridges:
        bridges[0].warn(f"celery: {what}", "otel-sentry-bridge: %s", what, exc_info=True)
    else:
        _log.debug("otel-sentry-bridge: %s", what, exc_info=True)


# -- task_failure ------------------------------------------------------------------------------


def _on_task_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: Any = None,
    kwargs: Any = None,
    einfo: Any = None,
    **_: Any,
) -> None:
    try:
        _report(sender, task_id, _unwrap(exception, einfo), args, kwargs)
    except Exception:  # never into Celery's failure handling
        _warn_once("could not report a Celery task failure")


def _unwrap(exception: Any, einfo: Any) -> BaseException | None:
    exc = exception if exception is not None else getattr(einfo, "exception", None)
    if ExceptionWithTraceback is not None and isinstance(exc, ExceptionWithTraceback):
        exc = exc.exc
    return exc if isinstance(exc, BaseException) else None


def _report(
    task: Any, task_id: str | None, exc: BaseException | None, args: Any, kwargs: Any
) -> None:
    if exc is None:
        return
    raised = _raised(exc)
    if isinstance(raised, _CONTROL_FLOW):
        return
    span = trace.get_current_span()
    recorded = _recorded_by_otel(task, task_id, span)
    expected = _expected(task, raised)
    if recorded and (expected or raised is not exc):
        # The OTel instrumentation records ``exc`` on the span whatever it is (its own
        # ``throws`` check looks at billiard's wrapper, not at the exception): tell the
        # pipeline that copy is for tracing only when the error is expected (an answer of the
        # task), or when it is Celery's stand-in for the exception captured below.
        key = expected_key(span.get_span_context().span_id, exc)
        for bridge in active_bridges():
            bridge.store.expect(key, CaptureRecord("", send=False))
    if expected:
        _mark_stand_in(exc, raised, None)
        return
    name = str(getattr(task, "name", None) or "celery.task")
    request = _request_of(task, task_id)
    retries = getattr(request, "retries", None)
    names = parameter_names(getattr(task, "run", None) or task)
    fingerprint = (
        soft_time_limit_fingerprint(name) if isinstance(exc, SoftTimeLimitExceeded) else None
    )

    def details(settings: Settings) -> Details:
        # The arguments are copied now, on the task's thread, filtered with each bridge's words.
        extras = task_extras(
            task_name=name,
            task_id=task_id,
            retries=retries,
            args=args,
            kwargs=kwargs,
            names=names,
            is_sensitive=scrubber_for(settings.denylist, settings.send_default_pii).is_sensitive,
            fingerprint=fingerprint,
        )
        return Details(
            transaction=extras["transaction"],
            tags=extras["tags"],
            contexts=extras["contexts"],
            fingerprint=tuple(extras["fingerprint"]) if extras.get("fingerprint") else None,
        )

    token = None
    if not span.get_span_context().is_valid and request is not None:
        token = _attach_producer_context(request)
    try:
        event_id = capture_exception(
            raised,
            mechanism="celery",
            handled=False,
            details=details,
            # A stand-in's copy on the span is not this exception: record it ourselves.
            recorded_elsewhere=recorded and raised is exc,
            name=name,
        )
    finally:
        if token is not None:
            otel_context.detach(token)
    _mark_stand_in(exc, raised, event_id)


def _raised(exc: BaseException) -> BaseException:
    """The exception the task raised, for ``exc`` as ``task_failure`` hands it over.

    One that does not pickle reaches the signal as a stand-in Celery made for the pool's pipe
    (``get_pickleable_exception``): an ``UnpickleableExceptionWrapper`` or an instance of the
    nearest base class that pickles, given the original's traceback. Celery sends the signal
    while it handles the task's exception, so the original is the exception being handled: the
    one whose traceback the stand-in carries.
    """
    handled = sys.exc_info()[1]
    if (
        handled is not None
        and handled is not exc
        and exc.__traceback__ is not None
        and handled.__traceback__ is exc.__traceback__
    ):
        return handled
    if isinstance(exc, UnpickleableExceptionWrapper):
        # Sent outside the handling of the original: rebuild its module, class name and
        # arguments (``restore``) on the original's frames.
        try:
            restored: BaseException = exc.restore()
            return restored.with_traceback(exc.__traceback__)
        except Exception:
            pass
    return exc


def _mark_stand_in(exc: BaseException, raised: BaseException, event_id: str | None) -> None:
    """Celery logs the failure ("raised unexpected", at ERROR with a traceback even for an
    expected error, since its ``throws`` check sees the stand-in) with the stand-in, not with
    the exception the hook dealt with: mark the stand-in as captured, so that the log handler
    does not make that line an event of the stand-in's type. An expected or ignored error has
    no event id: the mark is then empty (still "dealt with")."""
    if exc is not raised:  # else capture_exception marked it when it sent it
        mark_captured(exc, event_id or "")


def _expected(task: Any, exc: BaseException) -> bool:
    throws = getattr(task, "throws", None) or ()
    if isinstance(throws, type):  # ``throws=MyError`` rather than a tuple
        throws = (throws,)
    try:
        return isinstance(exc, tuple(throws))
    except TypeError:  # not classes: nothing is expected
        return False


def _request_of(task: Any, task_id: str | None) -> Any:
    """The task's request context, if it is the failed one (the main process reports a hard
    time limit without pushing it)."""
    request = getattr(task, "request", None)
    if request is None or task_id is None or getattr(request, "id", None) != task_id:
        return None
    return request


def _recorded_by_otel(task: Any, task_id: str | None, span: trace.Span) -> bool:
    """True when opentelemetry-instrumentation-celery records this failure on ``span``: its
    ``task_failure`` receiver does so for the span it opened for the task, if recording."""
    if task_id is None or not span.is_recording():
        return False
    try:
        from opentelemetry.instrumentation.celery import utils
    except ImportError:
        return False
    try:
        opened = utils.retrieve_context(task, task_id)
    except Exception:
        return False
    return opened is not None and opened[0] is span


class _RequestGetter(Getter[Any]):
    """Trace headers of a Celery request: message headers become attributes of it."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        value = getattr(carrier, key, None)
        if value is None:
            headers = getattr(carrier, "headers", None)
            value = headers.get(key) if isinstance(headers, dict) else None
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Any) -> list[str]:
        return []


def _attach_producer_context(request: Any) -> Token[Context] | None:
    context = extract(request, getter=_RequestGetter())
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return otel_context.attach(context)


# -- worker upkeep -----------------------------------------------------------------------------


def _not_reported_failure(record: logging.LogRecord) -> bool:
    """A log filter: drops Celery's own log line of a failure ``task_failure`` already
    reported. The main process logs "Task handler raised error" with billiard's wrapper
    around the very exception the hook captured, which would otherwise be a second event.
    (Log lines of the task's process carry the exception itself and are recognised without
    help.)"""
    exc = record.exc_info[1] if record.exc_info else None
    if ExceptionWithTraceback is not None and isinstance(exc, ExceptionWithTraceback):
        return not already_captured(exc.exc)
    return True


def _root_span_event_handlers() -> list[SpanEventHandler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, SpanEventHandler)]


def _filter_failure_logs() -> None:
    for handler in _root_span_event_handlers():
        if _not_reported_failure not in handler.filters:
            handler.addFilter(_not_reported_failure)


def _keep_log_handler(**_: Any) -> None:
    try:
        for bridge in active_bridges():  # only the zero-code mode installs the handler
            if bridge.log_installer is not None:
                bridge.log_installer.ensure()
        _filter_failure_logs()
    except Exception:
        _warn_once("could not re-attach the log handler")


def _attach_to_task_logger(logger: Any = None, **_: Any) -> None:
    """Celery's task logger (``get_task_logger``) does not propagate to the root logger: give
    it the handler the root logger has."""
    try:
        if not isinstance(logger, logging.Logger) or logger.propagate:
            return
        for handler in _root_span_event_handlers():
            if handler not in logger.handlers:
                logger.addHandler(handler)
    except Exception:
        _warn_once("could not attach the log handler to Celery's task logger")


def _flush_before_exit(**_: Any) -> None:
    """Pool children leave through ``os._exit``: no atexit hook runs, so send now what the
    tracer provider still holds (spans for the tracing backend too), then shut each bridge
    down as at any exit: what it cannot send within ``shutdown_timeout`` goes to the spool,
    or is counted and warned about (a flush alone left it in memory, lost without a word)."""
    try:
        bridges = active_bridges()
        timeout = max((b.settings.shutdown_timeout for b in bridges), default=2.0)
        deadline = time.monotonic() + timeout
        flush = getattr(trace.get_tracer_provider(), "force_flush", None)
        if callable(flush):
            flush(_millis_until(deadline))
        for bridge in bridges:
            bridge.shutdown()
    except Exception:
        _warn_once("could not flush before a worker process exit")


def _millis_until(deadline: float) -> int:
    return max(0, int((deadline - time.monotonic()) * 1000))

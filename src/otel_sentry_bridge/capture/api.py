"""Record an exception or an error message as an OTel span event, for Sentry and for Jaeger.

Runs on the request thread, so it does the least it can: stamp an event id, put the event on
the current span (``record_exception``) and leave anything Sentry-only (user, request
details, local variables) in the :mod:`store`. When no span is recording (sampled out, or no
span at all), the capture goes straight to the processors' queues with the current trace
context, so sampling never loses an error. Never raises.
"""

from __future__ import annotations

import logging
import secrets
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from opentelemetry import trace

from .. import attributes as attr
from ..convert.filters import IgnoredTypes
from ..convert.scrub import scrubber_for
from ..safe_repr import safe_repr
from ..setup.config import Settings, load_settings
from .snapshot import frame_variables
from .store import AnnotationKey, store
from .traceback_text import stacktrace

__all__ = [
    "REQUEST_DETAILS",
    "DirectCapture",
    "already_captured",
    "annotation_key",
    "breadcrumb_key",
    "capture_exception",
    "capture_message",
    "current_settings",
    "exception_type_name",
    "mark_captured",
    "sentry_level",
]

_log = logging.getLogger("otel_sentry_bridge")
_MARK = "__otel_sentry_event_id__"
_fallback_settings: Settings | None = None
# Set by the Django middleware while it serves a request: that request's Sentry details
# (``request``, ``user``, ``transaction``), computed only when a capture needs them.
REQUEST_DETAILS: ContextVar[Callable[[], Mapping[str, Any]] | None] = ContextVar(
    "otel_sentry_bridge_request_details", default=None
)


@dataclass
class DirectCapture:
    """A capture that is not a span event (no span recording, or its log event budget is
    spent); the worker turns it into an event."""

    trace_id: int
    span_id: int
    timestamp_ns: int
    attributes: dict[str, Any]
    # Kept so that its traceback is formatted on the worker, not on the request thread.
    exception: BaseException | None = None
    name: str = "capture"
    # The tracer provider's resource (environment, release, service tags), which a sampled-out
    # span does not carry, and what a recording span already holds (route, URL, kind).
    resource: Mapping[str, Any] | None = None
    span_attributes: Mapping[str, Any] | None = None
    span_kind: str = "INTERNAL"

    def stacktrace_attributes(self) -> dict[str, Any]:
        """``exception.*`` attributes, computed on the worker thread."""
        exc = self.exception
        if exc is None:
            return {}
        try:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        except Exception:
            text = ""
        return {
            attr.EXCEPTION_TYPE: exception_type_name(type(exc)),
            attr.EXCEPTION_MESSAGE: _message(exc),
            attr.EXCEPTION_STACKTRACE: text,
        }


_active_settings: Settings | None = None


def set_active_settings(settings: Settings | None) -> None:
    """Called by processors as they start and stop: captures use the newest one's settings."""
    global _active_settings
    _active_settings = settings


def current_settings() -> Settings:
    """The settings of the newest active processor, else those of the environment."""
    global _active_settings, _fallback_settings
    settings = _active_settings
    if settings is not None:
        return settings
    from ..processor import active_processors

    for processor in active_processors():
        _active_settings = processor.settings
        return processor.settings
    if _fallback_settings is None:
        _fallback_settings = load_settings()
    return _fallback_settings


def already_captured(exc: BaseException) -> bool:
    return isinstance(getattr(exc, _MARK, None), str)


def exception_type_name(exc_type: type[BaseException]) -> str:
    """The ``exception.type`` OTel's ``record_exception`` writes for this class."""
    module = exc_type.__module__
    qualname = exc_type.__qualname__
    return f"{module}.{qualname}" if module and module != "builtins" else qualname


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


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return safe_repr(exc)


def mark_captured(exc: BaseException, event_id: str = "") -> None:
    """Mark ``exc`` as dealt with (``already_captured``): a later capture of the same object
    (e.g. the log line a framework writes about it) returns ``event_id`` instead of sending
    it again. Empty for an exception deliberately not sent."""
    try:
        setattr(exc, _MARK, event_id)
    except Exception:  # exceptions with __slots__ or read-only attributes
        pass


def annotation_key(span_id: int, exc: BaseException) -> AnnotationKey:
    """How the worker finds what a hook left for ``exc`` when another instrumentation records
    it on the span: (span id, type and message as ``Span.record_exception`` writes them)."""
    return (span_id, exception_type_name(type(exc)), _message(exc))


@lru_cache(maxsize=8)
def _ignored_types(names: tuple[str, ...]) -> IgnoredTypes:
    return IgnoredTypes(names)


def _ignored(exc: BaseException, settings: Settings) -> bool:
    return _ignored_types(settings.ignored_exceptions).matches(exception_type_name(type(exc)))


def new_event_id() -> str:
    # From the OS, not `random`: an application that reseeds `random` must not repeat ids.
    return f"{secrets.randbits(128):032x}"


def breadcrumb_key(context: trace.SpanContext) -> int:
    """Breadcrumbs are kept per trace; outside any trace, per thread."""
    return context.trace_id if context.is_valid else -threading.get_ident()


def _new_ids() -> tuple[int, int]:
    return secrets.randbits(128) or 1, secrets.randbits(64) or 1


def _submit_direct(capture: DirectCapture) -> bool:
    from ..processor import active_processors

    return any([processor.capture(capture) for processor in active_processors()])


def _capture(
    attributes: dict[str, Any],
    exc: BaseException | None,
    extras: Mapping[str, Any] | None,
    *,
    name: str,
    recorded_elsewhere: bool,
    on_span: bool = True,
) -> None:
    event_id = attributes[attr.EVENT_ID]
    span = trace.get_current_span()
    context = span.get_span_context()
    if not context.is_valid:
        # No trace to look breadcrumbs up by later: take this thread's now.
        crumbs = store.breadcrumbs(breadcrumb_key(context), until=time.time())
        if crumbs:
            extras = {**(extras or {}), "breadcrumbs": {"values": crumbs}}
    if not (extras and "request" in extras):
        # The web framework's own view of the request it is serving here, when it lends one:
        # better than the span's attributes (which a sampled-out trace does not have, and
        # which lack the path under the stable HTTP conventions).
        details = REQUEST_DETAILS.get()
        if details is not None:
            extras = {**_safe_details(details), **(extras or {})}
    if extras:
        store.put_extras(event_id, extras)
    if on_span and span.is_recording():
        if exc is None:
            span.add_event(attr.LOG_EVENT, attributes)
            return
        if recorded_elsewhere:
            # The Django instrumentation records this very exception on this span when the
            # response goes out; tell the worker which event id and mechanism it carries.
            store.annotate(annotation_key(context.span_id, exc), attributes)
            return
        # What Span.record_exception writes, with the cheap stacktrace text (see formatting).
        span.add_event(
            "exception",
            {
                attr.EXCEPTION_TYPE: exception_type_name(type(exc)),
                attr.EXCEPTION_MESSAGE: _message(exc),
                attr.EXCEPTION_STACKTRACE: stacktrace(exc),
                "exception.escaped": "False",
                **attributes,
            },
        )
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
    _submit_direct(capture)


def _safe_details(details: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any]:
    try:
        return details()
    except Exception:  # a half-built request must not cost the event
        return {}


def _provider_resource() -> Mapping[str, Any] | None:
    resource = getattr(trace.get_tracer_provider(), "resource", None)
    attributes = getattr(resource, "attributes", None)
    return attributes if isinstance(attributes, Mapping) else None


def capture_exception(
    exc: BaseException | None = None,
    *,
    mechanism: str = "generic",
    handled: bool = True,
    level: str = "error",
    logger: str | None = None,
    logentry: tuple[str, Sequence[str], str] | None = None,
    extras: Mapping[str, Any] | None = None,
    recorded_elsewhere: bool = False,
    name: str = "capture",
) -> str | None:
    """Record ``exc`` (default: the one being handled) for Sentry; return its event id.

    Returns None when there is nothing to capture, the type is ignored, or capturing failed.
    The same exception object captured twice keeps its first event id (raven's
    ``skip_error_for_logging``: the ``django.request`` log of an exception the signal already
    captured is not sent again).
    """
    try:
        if exc is None:
            exc = sys.exc_info()[1]
        if exc is None:
            return None
        previous = getattr(exc, _MARK, None)
        if isinstance(previous, str):
            return previous
        settings = current_settings()
        if _ignored(exc, settings):
            return None
        event_id = new_event_id()
        mark_captured(exc, event_id)
        # On the span only what Jaeger users need and the worker's key (the event id): each
        # span attribute costs validation on this thread. The rest travels out of band.
        attributes: dict[str, Any] = {attr.EVENT_ID: event_id}
        all_extras: dict[str, Any] = dict(extras or {})
        all_extras["mechanism"] = {"type": mechanism, "handled": handled}
        if level != "error":
            all_extras["level"] = level
        if logger:
            all_extras["logger"] = logger
        if logentry is not None:
            template, params, formatted = logentry
            all_extras["logentry"] = {
                "message": template,
                "params": list(params),
                "formatted": formatted,
            }
        if settings.include_local_variables:
            scrubber = scrubber_for(settings.denylist)
            all_extras["frame_vars"] = frame_variables(exc.__traceback__, scrubber)
        _capture(attributes, exc, all_extras, name=name, recorded_elsewhere=recorded_elsewhere)
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
    extras: Mapping[str, Any] | None = None,
    on_span: bool = True,
) -> str | None:
    """Record an error message (no exception) that becomes a Sentry message event.

    ``on_span=False`` sends it without adding a span event (the span's event budget is spent).
    """
    try:
        event_id = new_event_id()
        attributes: dict[str, Any] = {
            attr.EVENT_ID: event_id,
            attr.SEND: True,
            attr.LEVEL: level,
            attr.LOG_MESSAGE: message,
            attr.LOGENTRY_MESSAGE: template if template is not None else message,
            attr.LOGENTRY_PARAMS: list(params),
        }
        if logger:
            attributes[attr.LOGGER] = logger
        _capture(
            attributes,
            None,
            extras,
            name=logger or "capture",
            recorded_elsewhere=False,
            on_span=on_span,
        )
        return event_id
    except Exception:
        _log.debug("otel-sentry-bridge: capture failed", exc_info=True)
        return None

"""Adapters from the OpenTelemetry SDK's ``ReadableSpan`` to the plain :class:`SpanView`."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan

from . import attributes as attr
from .convert.model import EventView, SpanView

__all__ = ["has_reportable_event", "span_view"]


def has_reportable_event(span: ReadableSpan) -> bool:
    """Cheap test run on the ending thread: does the span hold anything for Sentry?"""
    for event in span.events:
        name = event.name
        if name == "exception":
            return True
        if name == attr.LOG_EVENT and event.attributes and event.attributes.get(attr.SEND):
            return True
    return False


def span_view(span: ReadableSpan) -> SpanView:
    """Copy what the conversion needs out of a finished span (worker thread)."""
    context = span.context
    parent = span.parent
    status = span.status
    scope = span.instrumentation_scope
    return SpanView(
        trace_id=context.trace_id if context else 0,
        span_id=context.span_id if context else 0,
        parent_span_id=parent.span_id if parent is not None else None,
        name=span.name,
        kind=span.kind.name,
        status_code=status.status_code.name,
        status_description=status.description,
        attributes=dict(span.attributes or {}),
        resource=dict(span.resource.attributes) if span.resource else {},
        events=tuple(
            EventView(e.name, e.timestamp or 0, dict(e.attributes or {})) for e in span.events
        ),
        start_time_ns=span.start_time,
        end_time_ns=span.end_time,
        scope_name=scope.name if scope else None,
    )

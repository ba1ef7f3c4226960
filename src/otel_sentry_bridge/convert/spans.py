"""Adapters from the OpenTelemetry SDK's ``ReadableSpan`` to the plain :class:`SpanView`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.trace import SpanKind

from .. import attributes as attr
from ..capture.store import SpanRecord
from .model import EventView, SpanView

if TYPE_CHECKING:  # not imported by a helper process, which never sees a span
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = [
    "attribute_dict",
    "has_reportable_event",
    "held_attributes",
    "record_view",
    "span_record",
    "span_view",
]

_CLIENT = SpanKind.CLIENT
_INTERNAL = SpanKind.INTERNAL


def has_reportable_event(span: ReadableSpan) -> bool:
    """Cheap test run on the ending thread: does the span hold anything for Sentry?"""
    for event in span.events:
        name = event.name
        if name == "exception":
            return True
        if name == attr.LOG_EVENT and event.attributes and event.attributes.get(attr.SEND):
            return True
    return False


def span_record(span: ReadableSpan) -> SpanRecord | None:
    """On the ending thread: a compact record of an outgoing call (any CLIENT span; an
    INTERNAL span with a database system or a ``cache.*`` name) for later breadcrumbs, else
    None. No attribute is copied: the record shares the finished span's attribute mapping."""
    kind = span.kind
    if kind is not _CLIENT and kind is not _INTERNAL:
        return None  # server, producer and consumer spans are not calls made by the app
    attributes = span.attributes
    if attributes is None:
        return None
    if kind is _INTERNAL and not (
        "db.system" in attributes
        or "db.system.name" in attributes
        or span.name.startswith("cache.")
    ):
        return None
    return (span.end_time or 0, span.start_time or 0, span.name, kind, span.status, attributes)


def record_view(record: SpanRecord) -> SpanView:
    """A :class:`SpanView` of a :func:`span_record` (worker thread); ids are not kept."""
    end_ns, start_ns, name, kind, status, attributes = record
    return SpanView(
        trace_id=0,
        span_id=0,
        name=name,
        kind=kind.name,
        status_code=status.status_code.name,
        status_description=status.description,
        attributes=attributes,
        start_time_ns=start_ns,
        end_time_ns=end_ns,
    )


def attribute_dict(mapping: Mapping[str, Any] | None) -> dict[str, Any]:
    """A plain-dict copy of OTel attributes. The SDK's ``BoundedAttributes`` is copied from
    the dict it holds: through the mapping protocol each key costs a Python call, on the
    thread that ends the span (about 3 µs for a server span's dozen attributes). Only when
    that dict is there as the SDK makes it; anything else is copied key by key."""
    if mapping is None:
        return {}
    if type(mapping) is BoundedAttributes:
        inner = getattr(mapping, "_dict", None)
        if type(inner) is dict:
            return inner.copy()
    return dict(mapping)


def held_attributes(mapping: Mapping[str, Any] | None) -> dict[str, Any]:
    """OTel attributes as a plain dict for a reader that is done with them at once (the
    helper pipe's encoder): the dict the SDK's ``BoundedAttributes`` holds, not copied; a
    plain dict as it is; anything else copied."""
    if mapping is None:
        return {}
    if type(mapping) is BoundedAttributes:
        inner = getattr(mapping, "_dict", None)
        if type(inner) is dict:
            return inner
    return mapping if type(mapping) is dict else dict(mapping)


def _span_attributes(span: ReadableSpan) -> dict[str, Any]:
    # ReadableSpan.attributes wraps its BoundedAttributes in a read-only proxy: the SDK's own
    # attribute (an ended span's attributes no longer change) when it is what the SDK makes.
    held = getattr(span, "_attributes", None)
    return attribute_dict(held if type(held) is BoundedAttributes else span.attributes)


def span_view(span: ReadableSpan, *, details: bool = True) -> SpanView:
    """Copy what the conversion needs out of a finished span (worker thread). Without
    ``details``, the events and the resource are left out (spans of a transaction)."""
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
        attributes=_span_attributes(span),
        resource=attribute_dict(span.resource.attributes) if details and span.resource else {},
        events=tuple(
            EventView(e.name, e.timestamp or 0, attribute_dict(e.attributes)) for e in span.events
        )
        if details
        else (),
        start_time_ns=span.start_time,
        end_time_ns=span.end_time,
        scope_name=scope.name if scope else None,
    )

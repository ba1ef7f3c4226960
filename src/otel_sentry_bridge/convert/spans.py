"""Adapters from the OpenTelemetry SDK's ``ReadableSpan`` to the plain :class:`SpanView`."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.trace import SpanKind

from .. import attributes as attr
from ..capture.store import SpanRecord
from .model import EventView, SpanView

if TYPE_CHECKING:  # not imported by a helper process, which never sees a span
    from opentelemetry.sdk.trace import Event, ReadableSpan

__all__ = [
    "attribute_dict",
    "held_attributes",
    "may_record",
    "plain_span_view",
    "record_view",
    "reportable",
    "span_events",
    "span_record",
    "span_view",
]

_CLIENT = SpanKind.CLIENT
_INTERNAL = SpanKind.INTERNAL


def span_events(span: ReadableSpan) -> Sequence[Event]:
    """The events of a finished span, on the thread that ends it: the deque inside the SDK's
    BoundedList as it is (an ended span's events no longer change), not the copy
    ``span.events`` makes (a lock, a list, a tuple); anything else through ``span.events``."""
    queue = getattr(getattr(span, "_events", None), "_dq", None)
    return queue if type(queue) is deque else span.events


def reportable(events: Sequence[Event]) -> bool:
    """Cheap test run on the ending thread: is any of a span's ``events`` (``span_events``)
    for Sentry, an exception or a log event marked for sending?"""
    for event in events:
        name = event.name
        if name == "exception":
            return True
        if name == attr.LOG_EVENT and event.attributes and event.attributes.get(attr.SEND):
            return True
    return False


def may_record(kind: SpanKind) -> bool:
    """Whether a span of this kind may be an outgoing call (see :func:`span_record`): server,
    producer and consumer spans are not calls made by the application."""
    return kind is _CLIENT or kind is _INTERNAL


def span_record(span: ReadableSpan) -> SpanRecord | None:
    """On the ending thread: a compact record of an outgoing call (any CLIENT span; an
    INTERNAL span with a database system or a ``cache.*`` name) for later breadcrumbs, else
    None. No attribute is copied: the record shares the finished span's attribute mapping."""
    kind = span.kind
    if not may_record(kind):
        return None
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


def _as_held(mapping: Mapping[str, Any]) -> dict[str, Any] | None:
    """The plain dict behind OTel attributes: the one the SDK's ``BoundedAttributes`` holds,
    or ``mapping`` itself when it is a plain dict; None for anything else."""
    if type(mapping) is BoundedAttributes:
        inner = getattr(mapping, "_dict", None)
        return inner if type(inner) is dict else None
    return mapping if type(mapping) is dict else None


def attribute_dict(mapping: Mapping[str, Any] | None) -> dict[str, Any]:
    """A plain-dict copy of OTel attributes. The SDK's ``BoundedAttributes`` is copied from
    the dict it holds: through the mapping protocol each key costs a Python call, on the
    thread that ends the span (about 3 µs for a server span's dozen attributes). Only when
    that dict is there as the SDK makes it; anything else is copied key by key."""
    if mapping is None:
        return {}
    held = _as_held(mapping)
    return dict(mapping) if held is None else held.copy()


def held_attributes(mapping: Mapping[str, Any] | None) -> dict[str, Any]:
    """OTel attributes as a plain dict for a reader that is done with them at once (the
    helper pipe's encoder): the dict the SDK's ``BoundedAttributes`` holds, not copied; a
    plain dict as it is; anything else copied."""
    if mapping is None:
        return {}
    held = _as_held(mapping)
    return dict(mapping) if held is None else held


def _sdk_attributes(span: ReadableSpan) -> Mapping[str, Any] | None:
    # ReadableSpan.attributes wraps its BoundedAttributes in a read-only proxy: the SDK's own
    # attribute (an ended span's attributes no longer change) when it is what the SDK makes.
    held = getattr(span, "_attributes", None)
    return held if type(held) is BoundedAttributes else span.attributes


def span_view(span: ReadableSpan, *, details: bool = True) -> SpanView:
    """Copy what the conversion needs out of a finished span (worker thread). Without
    ``details``, the events and the resource are left out (spans of a transaction)."""
    resource = span.resource
    return SpanView._make(
        _fields(
            span,
            attribute_dict(_sdk_attributes(span)),
            attribute_dict(resource.attributes) if details and resource else {},
            tuple(
                EventView(e.name, e.timestamp or 0, attribute_dict(e.attributes))
                for e in span.events
            )
            if details
            else (),
        )
    )


def plain_span_view(
    span: ReadableSpan, events: tuple[tuple[str, int, Any], ...]
) -> tuple[Any, ...]:
    """``span_view(span)``'s fields as a plain tuple, with these ``events`` (name, timestamp,
    attributes), for the helper pipe's encoder on the thread that ends the span: no view in
    between, and the SDK's own attribute dicts as they are (``held_attributes``)."""
    resource = span.resource
    return _fields(
        span,
        held_attributes(_sdk_attributes(span)),
        held_attributes(resource.attributes) if resource else {},
        events,
    )


def _fields(
    span: ReadableSpan, attributes: Mapping[str, Any], resource: Mapping[str, Any], events: Any
) -> tuple[Any, ...]:
    """A span's :class:`SpanView` fields, in their order, with these mappings and events."""
    context = span.context
    parent = span.parent
    status = span.status
    scope = span.instrumentation_scope
    return (
        context.trace_id if context else 0,
        context.span_id if context else 0,
        span.name,
        parent.span_id if parent is not None else None,
        span.kind.name,
        status.status_code.name,
        status.description,
        attributes,
        resource,
        events,
        span.start_time,
        span.end_time,
        scope.name if scope else None,
    )

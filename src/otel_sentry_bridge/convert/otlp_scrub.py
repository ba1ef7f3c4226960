"""Scrub what OpenTelemetry's own OTLP exporters send to Sentry: span and log record data.

With ``OTEL_SENTRY_OTLP_SIGNALS`` the bridge points OpenTelemetry's exporters at Sentry's OTLP
endpoints; the spans and log records they send are the SDK's, attributes as instrumentations
set them. The same rules as for the bridge's own events apply to them here, by attribute name
(old and stable OpenTelemetry semantic conventions), as :mod:`.attribute_scrub` states them:
span attributes, each event's and link's, the status description and the resource; a log
record's body (free text, or a mapping by key) and attributes.

Never raises and fails closed: a span or log record that cannot be scrubbed at all is not
sent. Never mutates its input: a result shares what did not change.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, SpanKind, Status

from .attribute_scrub import (
    MAX_LONG_TEXT_CHARS,
    AttributeRules,
    free_text_rule,
    scrub_attributes,
)
from .scrubber import Scrubber

__all__ = [
    "MAX_LONG_TEXT_CHARS",
    "scrub_attributes",
    "scrub_log_record",
    "scrub_log_records",
    "scrub_span",
    "scrub_spans",
]

_log = logging.getLogger("otel_sentry_bridge")
# Span kinds whose peer is the server called, not the client.
_OUTGOING = frozenset({SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER})


def _resource(resource: Resource, rules: AttributeRules) -> Resource:
    attributes = resource.attributes
    new = rules.attributes(attributes, 0)
    return resource if new is attributes else Resource(new, resource.schema_url)


def _bounded(attributes: Mapping[str, Any], dropped: int) -> BoundedAttributes:
    """The SDK's own container, still counting the attributes its limits dropped."""
    bounded = BoundedAttributes(maxlen=None, attributes=attributes, immutable=True)
    bounded.dropped += dropped
    return bounded


# -- spans ---------------------------------------------------------------------------------


class _ScrubbedEvent(Event):
    def __init__(self, event: Event, attributes: Mapping[str, Any]) -> None:
        super().__init__(
            event.name, _bounded(attributes, event.dropped_attributes), event.timestamp
        )


class _ScrubbedLink(Link):
    def __init__(self, link: Link, attributes: Mapping[str, Any]) -> None:
        super().__init__(link.context, _bounded(attributes, link.dropped_attributes))


class _ScrubbedSpan(ReadableSpan):
    """A copy of an ended span with other attributes, events, links, status or resource;
    what the SDK's limits dropped is still counted."""

    def __init__(
        self,
        span: ReadableSpan,
        attributes: Mapping[str, Any],
        events: Sequence[Event],
        links: Sequence[Link],
        status: Status,
        resource: Resource,
    ) -> None:
        super().__init__(
            name=span.name,
            context=span.get_span_context(),
            parent=span.parent,
            resource=resource,
            attributes=_bounded(attributes, 0),
            events=tuple(events),
            links=tuple(links),
            kind=span.kind,
            status=status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )
        self._dropped = (span.dropped_attributes, span.dropped_events, span.dropped_links)

    @property
    def dropped_attributes(self) -> int:
        return self._dropped[0]

    @property
    def dropped_events(self) -> int:
        return self._dropped[1]

    @property
    def dropped_links(self) -> int:
        return self._dropped[2]


_Part = TypeVar("_Part", Event, Link)


def _scrubbed_parts(
    parts: Sequence[_Part],
    rules: AttributeRules,
    scrubbed: Callable[[_Part, Mapping[str, Any]], _Part],
) -> Sequence[_Part]:
    """A span's events or links, each with its attributes scrubbed (``scrubbed`` makes the
    copy); ``parts`` itself when nothing changed."""
    out: list[_Part] | None = None
    for index, part in enumerate(parts):
        attributes = part.attributes or {}
        new = rules.attributes(attributes, 0)
        if new is not attributes:
            if out is None:
                out = list(parts)
            out[index] = scrubbed(part, new)
    return parts if out is None else out


def _scrubbed_status(status: Status, scrubber: Scrubber) -> Status:
    description = status.description
    if not description:
        return status
    clean = scrubber.free_text(str.__str__(description))
    return status if clean == description else Status(status.status_code, clean)


def _scrub_span(
    span: ReadableSpan, scrubber: Scrubber, send_default_pii: bool, resource: Resource
) -> ReadableSpan:
    rules = AttributeRules(scrubber, send_default_pii, peer_is_client=span.kind not in _OUTGOING)
    attributes = span.attributes or {}
    new_attributes = rules.attributes(attributes, 0)
    events = span.events
    new_events = _scrubbed_parts(events, rules, _ScrubbedEvent)
    links = span.links
    new_links = _scrubbed_parts(links, rules, _ScrubbedLink)
    status = span.status
    new_status = _scrubbed_status(status, scrubber)
    if (
        new_attributes is attributes
        and new_events is events
        and new_links is links
        and new_status is status
        and resource is span.resource
    ):
        return span
    return _ScrubbedSpan(span, new_attributes, new_events, new_links, new_status, resource)


def scrub_span(
    span: ReadableSpan, scrubber: Scrubber, send_default_pii: bool
) -> ReadableSpan | None:
    """``span`` with its attributes, its events' and links' attributes, and its status
    description scrubbed (name, ids, kind and times kept), and its resource's attributes;
    ``span`` itself when nothing changed; None when it cannot be scrubbed (not to be sent).
    Never raises."""
    return _scrubbed_or_none(span, _scrub_span, scrubber, send_default_pii, {})


def scrub_spans(
    spans: Iterable[ReadableSpan], scrubber: Scrubber, send_default_pii: bool
) -> list[ReadableSpan]:
    """:func:`scrub_span` over a batch; the spans that cannot be scrubbed are left out. Each
    resource (usually one per process) is scrubbed once."""
    return _scrubbed_batch(spans, _scrub_span, scrubber, send_default_pii)


_Item = TypeVar("_Item", ReadableSpan, ReadableLogRecord)
_Resources = dict[int, tuple[Resource, Resource]]


def _scrubbed_batch(
    items: Iterable[_Item],
    scrub: Callable[[_Item, Scrubber, bool, Resource], _Item],
    scrubber: Scrubber,
    send_default_pii: bool,
) -> list[_Item]:
    resources: _Resources = {}
    out: list[_Item] = []
    for item in items:
        clean = _scrubbed_or_none(item, scrub, scrubber, send_default_pii, resources)
        if clean is not None:
            out.append(clean)
    return out


def _scrubbed_or_none(
    item: _Item,
    scrub: Callable[[_Item, Scrubber, bool, Resource], _Item],
    scrubber: Scrubber,
    send_default_pii: bool,
    resources: _Resources,
) -> _Item | None:
    try:
        resource = _cached_resource(item.resource, scrubber, send_default_pii, resources)
        return scrub(item, scrubber, send_default_pii, resource)
    except Exception:  # RecursionError too: what we cannot read is not sent
        _log.debug(
            "otel-sentry-bridge: could not scrub a %s; not sent", type(item).__name__, exc_info=True
        )
        return None


def _cached_resource(
    resource: Resource,
    scrubber: Scrubber,
    send_default_pii: bool,
    resources: _Resources,
) -> Resource:
    cached = resources.get(id(resource))
    if cached is not None and cached[0] is resource:
        return cached[1]
    clean = _resource(resource, AttributeRules(scrubber, send_default_pii, peer_is_client=True))
    resources[id(resource)] = (resource, clean)
    return clean


# -- log records ---------------------------------------------------------------------------


def scrub_log_record(
    record: ReadableLogRecord, scrubber: Scrubber, send_default_pii: bool
) -> ReadableLogRecord | None:
    """``record`` with its body (a string as free text, a mapping as attributes), its
    attributes and its resource's attributes scrubbed; ``record`` itself when nothing
    changed; None when it cannot be scrubbed (not to be sent). Never raises."""
    return _scrubbed_or_none(record, _scrub_log_record, scrubber, send_default_pii, {})


def scrub_log_records(
    records: Iterable[ReadableLogRecord], scrubber: Scrubber, send_default_pii: bool
) -> list[ReadableLogRecord]:
    """:func:`scrub_log_record` over a batch; the records that cannot be scrubbed are left
    out."""
    return _scrubbed_batch(records, _scrub_log_record, scrubber, send_default_pii)


def _scrub_log_record(
    record: ReadableLogRecord, scrubber: Scrubber, send_default_pii: bool, resource: Resource
) -> ReadableLogRecord:
    rules = AttributeRules(scrubber, send_default_pii, peer_is_client=True)
    log = record.log_record
    body = log.body
    new_body = rules.value(body, free_text_rule, 0)
    attributes = log.attributes or {}
    new_attributes = rules.attributes(attributes, 0)
    if new_body is body and new_attributes is attributes and resource is record.resource:
        return record
    clean = copy.copy(log)  # the API record: a plain object, shared parts stay shared
    clean.body = new_body
    if new_attributes is not attributes:
        clean.attributes = _bounded(new_attributes, record.dropped_attributes)
    return ReadableLogRecord(
        log_record=clean,
        resource=resource,
        instrumentation_scope=record.instrumentation_scope,
        limits=record.limits,
    )

"""Scrub what OpenTelemetry's own OTLP exporters send to Sentry: span and log record data.

With ``OTEL_SENTRY_OTLP_SIGNALS`` the bridge points OpenTelemetry's exporters at Sentry's OTLP
endpoints; the spans and log records they send are the SDK's, attributes as instrumentations
set them. The same rules as for the bridge's own events apply to them here, by attribute name
(old and stable OpenTelemetry semantic conventions):

- a value under a sensitive key (:meth:`Scrubber.is_sensitive`) is ``[Filtered]``, whatever
  its type (an array too);
- URLs (``url.full``, ``http.url``, ``http.target``): query values under sensitive names and
  URL passwords filtered, then the whole as free text (``#access_token=…``, ``;jsessionid=…``);
  ``url.query`` likewise; ``db.statement`` / ``db.query.text`` as SQL
  (:func:`~.breadcrumbs.scrubbed_statement`: literals after sensitive names, bind parameters
  kept);
- headers (``http.request.header.*``, ``http.response.header.*``, gRPC metadata): credential
  headers filtered, a value that is itself a credential (``Bearer …``) too, the rest free
  text; without ``send_default_pii`` only ``User-Agent``, ``Host``, ``Content-Type``,
  ``Accept`` and ``Content-Length`` are kept, the others removed (as the Django hook does);
- without ``send_default_pii``, who the client is is removed: ``client.*``,
  ``http.client_ip``, ``enduser.*``, ``user.*``, ``geo.*``, the bind parameters of
  statements (``db.query.parameter.*``, ``db.statement.parameters``), and the peer's address
  (``net.peer.ip``/``.port``/``.name``, ``net.sock.peer.*``, ``network.peer.*``) on spans
  whose peer is the client: server and internal spans, and log records (on client, producer
  and consumer spans the peer is the server called, and is kept);
- any other string is free text (:meth:`Scrubber.free_text`: ``key=value`` pairs with a
  sensitive key, auth schemes, URL passwords), cut to ``MAX_TEXT_CHARS``; except
  ``exception.stacktrace`` (and ``code.stacktrace``), scrubbed line-aligned chunk by chunk up
  to ``MAX_LONG_TEXT_CHARS``, so a long chained traceback keeps its last exception;
- numbers and booleans as they are; a nested mapping (log bodies and attributes may hold
  them) by the same rules; bytes and any other object ``[Filtered]``.

Never raises and fails closed: a value that cannot be scrubbed is ``[Filtered]``, an
attribute whose key is not a string is removed, a span or log record that cannot be scrubbed
at all is not sent. Never mutates its input: a result shares what did not change, and is the
input itself when nothing did (copy-on-write). Pure: data in, data out.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, SpanKind, Status

from ..safe_repr import truncate
from .breadcrumbs import scrubbed_statement
from .scrubber import FILTERED, MAX_TEXT_CHARS, SAFE_HEADERS, Scrubber, header_value

__all__ = [
    "MAX_LONG_TEXT_CHARS",
    "scrub_attributes",
    "scrub_log_record",
    "scrub_log_records",
    "scrub_span",
    "scrub_spans",
]

_log = logging.getLogger("otel_sentry_bridge")

# ``exception.stacktrace`` is kept up to this many characters (its head: the SDK's own
# attribute length limit cuts the end too), scrubbed in line-aligned chunks of at most
# ``MAX_TEXT_CHARS``; a single longer line is cut.
MAX_LONG_TEXT_CHARS = 8 * MAX_TEXT_CHARS
# Nesting deeper than this (a log body's mappings and arrays) is ``[Filtered]``.
_MAX_DEPTH = 16

# Headers kept without send_default_pii: those the Django hook sends (none identifies the
# client or carries a credential). Names lower-cased, "_" as "-".
_HEADER_PREFIXES = (
    "http.request.header.",
    "http.response.header.",
    "rpc.request.metadata.",
    "rpc.response.metadata.",
    "rpc.grpc.request.metadata.",
    "rpc.grpc.response.metadata.",
)
# Who the client is: removed without send_default_pii, on every span and log record.
_CLIENT_PREFIXES = ("client.", "enduser.", "user.", "geo.", "db.query.parameter.")
_CLIENT_KEYS = frozenset({"http.client_ip", "db.statement.parameters"})
# The peer's address: the client's on server (and internal) spans and in log records.
_PEER_KEYS = frozenset(
    {
        "net.peer.ip",
        "net.peer.port",
        "net.peer.name",
        "net.sock.peer.addr",
        "net.sock.peer.port",
        "net.sock.peer.name",
        "network.peer.address",
        "network.peer.port",
    }
)
# Span kinds whose peer is the server called, not the client.
_OUTGOING = frozenset({SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER})

_DROP: Any = object()  # an attribute removed


# -- the text rules: (scrubber, text) -> text ----------------------------------------------


def _free_text(scrubber: Scrubber, text: str) -> str:
    return scrubber.free_text(text)


def _url(scrubber: Scrubber, text: str) -> str:
    return scrubber.free_text(scrubber.url(text))


def _query(scrubber: Scrubber, text: str) -> str:
    return scrubber.free_text(scrubber.query_string(text))


def _statement(scrubber: Scrubber, text: str) -> str:
    return scrubbed_statement(text, scrubber)


def _header_text(scrubber: Scrubber, text: str) -> str:
    return str(header_value(text, scrubber))


def _long_text(scrubber: Scrubber, text: str) -> str:
    """Free text over line-aligned chunks of at most ``MAX_TEXT_CHARS`` (the scrubber's own
    bound), up to ``MAX_LONG_TEXT_CHARS`` in all."""
    if len(text) <= MAX_TEXT_CHARS:
        return scrubber.free_text(text)
    text = truncate(text, MAX_LONG_TEXT_CHARS)
    out: list[str] = []
    chunk: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        if size + len(line) > MAX_TEXT_CHARS and chunk:
            out.append(scrubber.free_text("".join(chunk)))
            chunk, size = [], 0
        if len(line) > MAX_TEXT_CHARS:  # cut (free_text would), keeping the line break
            ending = line[len(line.rstrip("\r\n")) :]
            out.append(scrubber.free_text(line) + ending)
            continue
        chunk.append(line)
        size += len(line)
    if chunk:
        out.append(scrubber.free_text("".join(chunk)))
    return "".join(out)


_TextRule = Callable[[Scrubber, str], str]
_TEXT_RULES: dict[str, _TextRule] = {
    "url.full": _url,
    "http.url": _url,
    "http.target": _url,
    "url.query": _query,
    "db.statement": _statement,
    "db.query.text": _statement,
    "exception.stacktrace": _long_text,
    "code.stacktrace": _long_text,
}


def _header_name(key: str) -> str | None:
    """``http.request.header.x_api_key`` -> ``x-api-key``; None: not a header."""
    if not key.startswith(_HEADER_PREFIXES):
        return None
    for prefix in _HEADER_PREFIXES:
        if key.startswith(prefix):
            return str.lower(key[len(prefix) :]).replace("_", "-")
    return None  # pragma: no cover - startswith(tuple) matched one of them


# -- attributes ----------------------------------------------------------------------------


class _Rules:
    """The rules for one span or log record."""

    __slots__ = ("peer_is_client", "scrubber", "send_default_pii")

    def __init__(self, scrubber: Scrubber, send_default_pii: bool, peer_is_client: bool) -> None:
        self.scrubber = scrubber
        self.send_default_pii = send_default_pii
        self.peer_is_client = peer_is_client

    def attributes(self, attributes: Mapping[str, Any], depth: int) -> Mapping[str, Any]:
        try:
            items = list(attributes.items())
        except Exception:  # a mapping that cannot be read: nothing of it is sent
            return {}
        out: dict[str, Any] | None = None
        for index, (key, value) in enumerate(items):
            new = self._entry(key, value, depth)
            if out is None:
                if new is value:
                    continue
                out = dict(items[:index])
            if new is not _DROP:
                out[key] = new
        return attributes if out is None else out

    def _entry(self, key: object, value: Any, depth: int) -> Any:
        if type(key) is not str:  # OpenTelemetry's keys are strings; run no code of others
            return _DROP
        try:
            if not self.send_default_pii and self._identifies_client(key):
                return _DROP
            header = _header_name(key)
            if header is not None:
                return self._header(key, header, value)
            if self.scrubber.is_sensitive(key):
                return FILTERED
            return self.value(value, _TEXT_RULES.get(key, _free_text), depth)
        except Exception:  # RecursionError too: whatever it was, it is not sent as it was
            return FILTERED

    def _identifies_client(self, key: str) -> bool:
        if key in _CLIENT_KEYS or key.startswith(_CLIENT_PREFIXES):
            return True
        return self.peer_is_client and key in _PEER_KEYS

    def _header(self, key: str, name: str, value: Any) -> Any:
        if not self.send_default_pii and name not in SAFE_HEADERS:
            return _DROP
        if self.scrubber.is_credential_header(name) or self.scrubber.is_sensitive(key):
            return FILTERED
        return self.value(value, _header_text, 0)

    def value(self, value: Any, rule: _TextRule, depth: int) -> Any:
        """``value`` scrubbed: strings by ``rule``, arrays item by item, mappings as
        attributes; numbers as they are; anything else ``[Filtered]``."""
        if type(value) is str:
            clean = rule(self.scrubber, value)
            return value if clean == value else clean
        if value is None or type(value) in (bool, int, float):
            return value
        if depth >= _MAX_DEPTH:
            return FILTERED
        if isinstance(value, str):  # a subclass: its own methods are not run
            return rule(self.scrubber, str.__str__(value))
        if isinstance(value, int):  # a subclass (an IntEnum): as the plain number
            return int.__int__(value)
        if isinstance(value, float):
            return float.__float__(value)
        if isinstance(value, (list, tuple)):
            return self._sequence(value, rule, depth + 1)
        if isinstance(value, Mapping):
            return self.attributes(value, depth + 1)
        return FILTERED  # bytes (cannot be read as text reliably), objects of any kind

    def _sequence(self, values: Sequence[Any], rule: _TextRule, depth: int) -> Any:
        items = list(values)
        out: list[Any] | None = None
        for index, item in enumerate(items):
            new = self.value(item, rule, depth)
            if new is not item:
                if out is None:
                    out = list(items)
                out[index] = new
        return values if out is None else tuple(out)


def scrub_attributes(
    attributes: Mapping[str, Any],
    scrubber: Scrubber,
    send_default_pii: bool,
    *,
    peer_is_client: bool = True,
) -> Mapping[str, Any]:
    """``attributes`` (OpenTelemetry's) scrubbed by the module's rules; ``attributes`` itself
    when nothing changed. ``peer_is_client``: the ``net.peer.*`` / ``network.peer.*``
    attributes describe the client (server spans, log records), removed without
    ``send_default_pii``; False for client, producer and consumer spans. Never raises."""
    if not isinstance(attributes, Mapping):
        return {}
    return _Rules(scrubber, send_default_pii, peer_is_client).attributes(attributes, 0)


def _resource(resource: Resource, rules: _Rules) -> Resource:
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


def _scrubbed_events(events: Sequence[Event], rules: _Rules) -> Sequence[Event]:
    out: list[Event] | None = None
    for index, event in enumerate(events):
        attributes = event.attributes or {}
        new = rules.attributes(attributes, 0)
        if new is not attributes:
            if out is None:
                out = list(events)
            out[index] = _ScrubbedEvent(event, new)
    return events if out is None else out


def _scrubbed_links(links: Sequence[Link], rules: _Rules) -> Sequence[Link]:
    out: list[Link] | None = None
    for index, link in enumerate(links):
        attributes = link.attributes or {}
        new = rules.attributes(attributes, 0)
        if new is not attributes:
            if out is None:
                out = list(links)
            out[index] = _ScrubbedLink(link, new)
    return links if out is None else out


def _scrubbed_status(status: Status, scrubber: Scrubber) -> Status:
    description = status.description
    if not description:
        return status
    clean = scrubber.free_text(str.__str__(description))
    return status if clean == description else Status(status.status_code, clean)


def _scrub_span(
    span: ReadableSpan, scrubber: Scrubber, send_default_pii: bool, resource: Resource
) -> ReadableSpan:
    rules = _Rules(scrubber, send_default_pii, peer_is_client=span.kind not in _OUTGOING)
    attributes = span.attributes or {}
    new_attributes = rules.attributes(attributes, 0)
    events = span.events
    new_events = _scrubbed_events(events, rules)
    links = span.links
    new_links = _scrubbed_links(links, rules)
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
    return _span_or_none(span, scrubber, send_default_pii, {})


def scrub_spans(
    spans: Iterable[ReadableSpan], scrubber: Scrubber, send_default_pii: bool
) -> list[ReadableSpan]:
    """:func:`scrub_span` over a batch; the spans that cannot be scrubbed are left out. Each
    resource (usually one per process) is scrubbed once."""
    resources: dict[int, tuple[Resource, Resource]] = {}
    out: list[ReadableSpan] = []
    for span in spans:
        clean = _span_or_none(span, scrubber, send_default_pii, resources)
        if clean is not None:
            out.append(clean)
    return out


def _span_or_none(
    span: ReadableSpan,
    scrubber: Scrubber,
    send_default_pii: bool,
    resources: dict[int, tuple[Resource, Resource]],
) -> ReadableSpan | None:
    try:
        resource = _cached_resource(span.resource, scrubber, send_default_pii, resources)
        return _scrub_span(span, scrubber, send_default_pii, resource)
    except Exception:  # RecursionError too: a span we cannot read is not sent
        _log.debug("otel-sentry-bridge: could not scrub a span; not sent", exc_info=True)
        return None


def _cached_resource(
    resource: Resource,
    scrubber: Scrubber,
    send_default_pii: bool,
    resources: dict[int, tuple[Resource, Resource]],
) -> Resource:
    cached = resources.get(id(resource))
    if cached is not None and cached[0] is resource:
        return cached[1]
    clean = _resource(resource, _Rules(scrubber, send_default_pii, peer_is_client=True))
    resources[id(resource)] = (resource, clean)
    return clean


# -- log records ---------------------------------------------------------------------------


def scrub_log_record(
    record: ReadableLogRecord, scrubber: Scrubber, send_default_pii: bool
) -> ReadableLogRecord | None:
    """``record`` with its body (a string as free text, a mapping as attributes), its
    attributes and its resource's attributes scrubbed; ``record`` itself when nothing
    changed; None when it cannot be scrubbed (not to be sent). Never raises."""
    return _log_or_none(record, scrubber, send_default_pii, {})


def scrub_log_records(
    records: Iterable[ReadableLogRecord], scrubber: Scrubber, send_default_pii: bool
) -> list[ReadableLogRecord]:
    """:func:`scrub_log_record` over a batch; the records that cannot be scrubbed are left
    out."""
    resources: dict[int, tuple[Resource, Resource]] = {}
    out: list[ReadableLogRecord] = []
    for record in records:
        clean = _log_or_none(record, scrubber, send_default_pii, resources)
        if clean is not None:
            out.append(clean)
    return out


def _log_or_none(
    record: ReadableLogRecord,
    scrubber: Scrubber,
    send_default_pii: bool,
    resources: dict[int, tuple[Resource, Resource]],
) -> ReadableLogRecord | None:
    try:
        resource = _cached_resource(record.resource, scrubber, send_default_pii, resources)
        return _scrub_log_record(record, scrubber, send_default_pii, resource)
    except Exception:  # RecursionError too: a record we cannot read is not sent
        _log.debug("otel-sentry-bridge: could not scrub a log record; not sent", exc_info=True)
        return None


def _scrub_log_record(
    record: ReadableLogRecord, scrubber: Scrubber, send_default_pii: bool, resource: Resource
) -> ReadableLogRecord:
    rules = _Rules(scrubber, send_default_pii, peer_is_client=True)
    log = record.log_record
    body = log.body
    new_body = rules.value(body, _free_text, 0)
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

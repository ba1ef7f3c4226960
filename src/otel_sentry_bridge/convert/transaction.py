"""A local root span and the spans that ended under it -> a Sentry transaction event. Pure.

Sentry's trace view then shows the same tree as the tracing backend: the root becomes the
transaction (``contexts.trace``, with the remote parent's span id when the trace came from
another service), every other span an entry of ``spans`` with its own parent id. Span
descriptions follow Sentry's conventions (``GET https://host/path`` for HTTP calls, the
statement for database calls); URLs, statements and attribute values are scrubbed here (by
:mod:`.attribute_scrub`, as OpenTelemetry's own exports to Sentry), as the event scrubber does
not walk ``spans``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .attribute_scrub import scrub_attributes
from .breadcrumbs import scrubbed_url
from .context import ConvertContext
from .event import common_fields
from .model import SpanView
from .scrub import Scrubber
from .semantics import db_statement, http_method, span_op, span_status

__all__ = ["build_transaction", "span_description"]

# Who made a request, on a server span: sent only with send_default_pii, like the user.
_CLIENT_KEYS = frozenset(
    {"client.address", "http.client_ip", "net.peer.ip", "net.sock.peer.addr", "user_agent.original"}
)


def _hex(number: int, width: int) -> str:
    return format(number, f"0{width}x")


def _seconds(ns: int | None) -> float:
    return (ns or 0) / 1e9


def span_description(span: SpanView, scrubber: Scrubber) -> str:
    """``GET https://host/path?q=1`` for an HTTP call, the statement for a database call,
    else the span name."""
    attributes = span.attributes
    method = http_method(attributes)
    if method is not None and span.kind == "CLIENT":
        url = scrubbed_url(attributes, scrubber)
        return f"{method} {url}" if url else span.name
    statement = db_statement(attributes)
    if statement:
        return scrubber.statement(statement)
    return scrubber.free_text(span.name)  # "cache.get session:<id>" names carry keys too


def _data(span: SpanView, scrubber: Scrubber, send_default_pii: bool) -> dict[str, Any]:
    """The span's attributes as its data, scrubbed by name as OpenTelemetry's exports to
    Sentry are (:mod:`.attribute_scrub`: URLs, statements, headers, free text; without
    ``send_default_pii`` who the client is, and on a server span its user agent)."""
    data = dict(
        scrub_attributes(
            span.attributes,
            scrubber,
            send_default_pii,
            peer_is_client=span.kind not in ("CLIENT", "PRODUCER", "CONSUMER"),
        )
    )
    if not send_default_pii and span.kind == "SERVER":
        for key in _CLIENT_KEYS:
            data.pop(key, None)
    return {key: list(value) if type(value) is tuple else value for key, value in data.items()}


def _span(
    span: SpanView, trace_id: str, scrubber: Scrubber, send_default_pii: bool
) -> dict[str, Any]:
    start = _seconds(span.start_time_ns)
    entry: dict[str, Any] = {
        "trace_id": trace_id,
        "span_id": _hex(span.span_id, 16),
        "op": span_op(span),
        "description": span_description(span, scrubber),
        "start_timestamp": start,
        "timestamp": max(_seconds(span.end_time_ns), start),
        "status": span_status(span),
    }
    if span.parent_span_id:
        entry["parent_span_id"] = _hex(span.parent_span_id, 16)
    data = _data(span, scrubber, send_default_pii)
    if data:
        entry["data"] = data
    return entry


def build_transaction(
    root: SpanView, spans: Sequence[SpanView], ctx: ConvertContext, scrubber: Scrubber
) -> dict[str, Any]:
    """The transaction event of ``root`` (a local root span) and ``spans`` (its trace's
    spans that ended before it, in this process), oldest first."""
    start = _seconds(root.start_time_ns)
    event: dict[str, Any] = {
        "event_id": ctx.new_event_id(),
        "type": "transaction",
        "platform": "python",
        "start_timestamp": start,
        "timestamp": max(_seconds(root.end_time_ns), start),
        **common_fields(root, ctx),
    }
    trace_id = _hex(root.trace_id, 32)
    ordered = sorted(spans, key=lambda s: (s.start_time_ns or 0, s.end_time_ns or 0))
    pii = ctx.settings.send_default_pii
    event["spans"] = [_span(span, trace_id, scrubber, pii) for span in ordered]
    return event

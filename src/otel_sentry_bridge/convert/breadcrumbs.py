"""Spans that ended earlier in a trace -> Sentry breadcrumbs. Pure.

An outgoing HTTP call becomes an ``http`` crumb (method, URL, status code, duration), a
database call a ``query`` crumb whose message is the statement, a cache call (Redis,
Memcached, or a span named ``cache.*``) a ``query`` crumb of category ``cache``; any other
client span a ``default`` crumb named after its operation. Old and stable OTel semantic
conventions are both read. URLs and statements are scrubbed here, with the pipeline's
:class:`~otel_sentry_bridge.convert.scrub.Scrubber`: the event scrubber treats breadcrumb data as a
databag and would not look inside a URL's query string. A statement's literal after a
sensitive name (``password = 'x'``) is filtered; a bind parameter there (``password = %s``)
holds no value and is kept, as sentry-sdk shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .model import SpanView
from .scrub import Scrubber
from .semantics import db_statement, db_system, http_method, http_status, span_op, url_parts

__all__ = ["merge_breadcrumbs", "scrubbed_url", "span_breadcrumb"]

_CACHE_SYSTEMS = frozenset({"redis", "memcached", "memcache", "valkey"})


def scrubbed_url(attributes: Mapping[str, Any], scrubber: Scrubber) -> str | None:
    """The span's URL with sensitive query values and URL passwords ``[Filtered]``."""
    url, query = url_parts(attributes)
    if url is None:
        return None
    return scrubber.url(f"{url}?{query}" if query else url)


def _level(span: SpanView, status: int | None) -> str:
    if (status is not None and status >= 500) or span.status_code == "ERROR":
        return "error"
    if status is not None and status >= 400:
        return "warning"
    return "info"


def _duration_ms(span: SpanView) -> float | None:
    if not span.start_time_ns or not span.end_time_ns:
        return None
    return round(max(span.end_time_ns - span.start_time_ns, 0) / 1e6, 3)


def span_breadcrumb(span: SpanView, scrubber: Scrubber) -> dict[str, Any]:
    """One breadcrumb for a finished client span, timestamped when the span ended."""
    attributes = span.attributes
    data: dict[str, Any] = {}
    status: int | None = None
    method = http_method(attributes)
    system = db_system(attributes)
    if method is not None:
        status = http_status(attributes)
        crumb: dict[str, Any] = {"type": "http", "category": "http"}
        data["method"] = method
        url = scrubbed_url(attributes, scrubber)
        if url:
            data["url"] = url
        if status is not None:
            data["status_code"] = status
    elif system is not None or span.name.startswith("cache."):
        statement = db_statement(attributes)
        cache = system in _CACHE_SYSTEMS or span.name.startswith("cache.")
        crumb = {
            "type": "query",
            "category": "cache" if cache else "query",
            "message": scrubber.statement(statement) if statement else span.name,
        }
        if system is not None:
            data["db.system"] = system
        namespace = attributes.get("db.namespace") or attributes.get("db.name")
        if namespace:
            data["db.name"] = str(namespace)
    else:
        crumb = {"type": "default", "category": span_op(span), "message": span.name}
    duration = _duration_ms(span)
    if duration is not None:
        data["duration_ms"] = duration
    crumb["level"] = _level(span, status)
    crumb["timestamp"] = (span.end_time_ns or 0) / 1e9
    crumb["data"] = data
    return crumb


def merge_breadcrumbs(
    logs: Sequence[dict[str, Any]], spans: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Log and span breadcrumbs in one list, oldest first (a log line first on a tie)."""
    if not spans:
        return list(logs)
    if not logs:
        return list(spans)
    return sorted([*logs, *spans], key=lambda crumb: crumb["timestamp"])

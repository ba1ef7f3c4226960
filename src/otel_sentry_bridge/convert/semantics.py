"""Span attributes (old and stable OTel semantic conventions) -> Sentry ``op``, ``status``,
``transaction`` and the ``request`` interface. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .model import SpanView
from .routes import route_name
from .scrubber import SAFE_HEADERS

__all__ = [
    "db_statement",
    "db_system",
    "http_method",
    "http_status",
    "request_interface",
    "span_op",
    "span_status",
    "transaction_name",
    "transaction_name_and_source",
    "transaction_source",
    "url_parts",
    "url_path",
]


def _first(attributes: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attributes.get(key)
        if value is not None and value != "":
            return value
    return None


def http_method(attributes: Mapping[str, Any]) -> str | None:
    """``http.request.method`` (stable) or ``http.method`` (old)."""
    method = _first(attributes, "http.request.method", "http.method")
    return str(method) if method is not None else None


def http_status(attributes: Mapping[str, Any]) -> int | None:
    """``http.response.status_code`` (stable) or ``http.status_code`` (old), as an int."""
    status = _first(attributes, "http.response.status_code", "http.status_code")
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError, OverflowError):  # "abc", NaN, inf
        return None


def db_system(attributes: Mapping[str, Any]) -> str | None:
    """``db.system.name`` (stable) or ``db.system`` (old)."""
    system = _first(attributes, "db.system.name", "db.system")
    return str(system) if system is not None else None


def db_statement(attributes: Mapping[str, Any]) -> str | None:
    """``db.query.text`` (stable) or ``db.statement`` (old)."""
    statement = _first(attributes, "db.query.text", "db.statement")
    return str(statement) if statement is not None else None


def span_op(span: SpanView) -> str:
    """Sentry's operation name, e.g. ``http.server``, ``db``, ``queue.process``."""
    attributes = span.attributes
    kind = span.kind.upper()
    if http_method(attributes) is not None:
        return "http.client" if kind == "CLIENT" else "http.server"
    if "db.system" in attributes or "db.system.name" in attributes:
        return "db"
    if "rpc.system" in attributes:
        return "rpc.client" if kind == "CLIENT" else "rpc.server"
    if "messaging.system" in attributes:
        return "queue.publish" if kind == "PRODUCER" else "queue.process"
    if "faas.trigger" in attributes:
        return str(attributes["faas.trigger"])
    return {"SERVER": "http.server", "CLIENT": "http.client"}.get(kind, "function")


_HTTP_STATUS = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    409: "already_exists",
    412: "failed_precondition",
    429: "resource_exhausted",
    499: "cancelled",
    501: "unimplemented",
    503: "unavailable",
    504: "deadline_exceeded",
}


def span_status(span: SpanView) -> str:
    """Sentry span status from the HTTP status when there is one, else the OTel status."""
    code = http_status(span.attributes)
    if code is not None and code >= 400:
        return _HTTP_STATUS.get(code, "invalid_argument" if code < 500 else "internal_error")
    if span.status_code == "ERROR":
        return "internal_error"
    if span.status_code == "OK" or (code is not None and code < 400):
        return "ok"
    return "unknown"


def transaction_name(span: SpanView) -> str:
    """The route (``/orders/<int:id>/``, ``/api/orders/{pk}/``), else the URL path of a
    server span, else the span name."""
    return transaction_name_and_source(span)[0]


def transaction_name_and_source(span: SpanView) -> tuple[str, str]:
    """The transaction name and its Sentry ``transaction_info.source``, as sentry-sdk's
    Django integration gives them: ``route`` for the matched route (``http.route``,
    regular expressions made readable by :func:`~.routes.route_name`), ``url`` for the path
    of a request no route matched (Sentry groups those names itself), ``custom`` for the
    span name."""
    attributes = span.attributes
    route = attributes.get("http.route")
    if route:
        return route_name(str(route)), "route"
    if span.kind.upper() == "SERVER" and http_method(attributes) is not None:
        path = url_path(attributes)
        if path:
            return path, "url"
    return span.name, "custom"


def transaction_source(span: SpanView) -> str:
    """The ``transaction_info.source`` of :func:`transaction_name`."""
    return transaction_name_and_source(span)[1]


def url_path(attributes: Mapping[str, Any]) -> str | None:
    """The path of the request's URL (no query), in whichever conventions the span uses."""
    path = _first(attributes, "url.path")
    if path is None:
        target = _first(attributes, "http.target")
        if target is None:
            target = _first(attributes, "url.full", "http.url")
        if target is not None:
            path = str(target).partition("?")[0].partition("#")[0]
    path = str(path) if path is not None else ""
    if path and not path.startswith("/"):  # an absolute URL (a proxy's request target)
        try:
            path = urlsplit(path).path
        except ValueError:
            return None
    return path if path.startswith("/") else None


def url_parts(attributes: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(URL without its query, query) from ``url.full``/``http.url`` or their parts, in
    whichever conventions the span uses."""
    full = _first(attributes, "url.full", "http.url")
    if full is not None:
        text = str(full)
        try:
            parts = urlsplit(text)
        except ValueError:  # "http://[x/hook": kept as given, its query still apart
            base, _, query = text.partition("?")
            return base.partition("#")[0], query.partition("#")[0] or None
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), parts.query or None
    scheme = _first(attributes, "url.scheme", "http.scheme") or "http"
    host = _first(attributes, "http.host", "server.address", "net.host.name", "http.server_name")
    port = _first(attributes, "server.port", "net.host.port")
    path = _first(attributes, "url.path")
    query = _first(attributes, "url.query")
    if path is None:
        target = _first(attributes, "http.target")
        if target is not None:
            path, _, query = str(target).partition("?")
    if host is None or path is None:
        return (str(path) if path is not None else None), (str(query) if query else None)
    netloc = str(host)
    default_port = {"http": 80, "https": 443}.get(str(scheme))
    if port is not None and ":" not in netloc and str(port) != str(default_port):
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}{path}", (str(query) if query else None)


def request_interface(span: SpanView, *, send_default_pii: bool) -> dict[str, Any] | None:
    """Sentry's ``request`` interface for a server span with HTTP attributes, else None."""
    attributes = span.attributes
    method = http_method(attributes)
    if method is None or span.kind.upper() == "CLIENT":
        return None
    url, query = url_parts(attributes)
    request: dict[str, Any] = {"method": method}
    if url:
        request["url"] = url
    if query:
        request["query_string"] = query
    headers: dict[str, str] = {}
    user_agent = _first(attributes, "user_agent.original", "http.user_agent")
    if user_agent is not None:
        headers["User-Agent"] = str(user_agent)
    for key, value in attributes.items():
        # Headers the instrumentation was told to capture (OTEL_..._CAPTURE_HEADERS_SERVER_REQUEST):
        # without send_default_pii only those an error event of the Django hook gets (no
        # X-Forwarded-For, no X-Real-Ip); the scrubbing walk filters credentials in them.
        if key.startswith("http.request.header."):
            lowered = key[20:].replace("_", "-").lower()
            if not send_default_pii and lowered not in SAFE_HEADERS:
                continue
            name = "-".join(p.capitalize() for p in lowered.split("-"))
            headers[name] = (
                ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
            )
    if headers:
        request["headers"] = headers
    if send_default_pii:
        client = _first(attributes, "client.address", "http.client_ip", "net.peer.ip")
        if client is not None:
            request["env"] = {"REMOTE_ADDR": str(client)}
    return request

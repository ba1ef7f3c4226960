"""Django signal hooks: an exception escaping a view becomes one Sentry event.

``got_request_exception`` fires (as raven used it) for every uncaught view exception, inside
the request's span. The hook stamps an event id (``request.sentry_event_id``), gathers the
request details from Django itself (the URL is right even where the OTel span has no
``url.path``), and records the exception with mechanism ``django``/unhandled. When the OTel
Django middleware is about to record the same exception on the span, the hook only annotates
it, so the traceback is formatted once per failure and Sentry gets exactly one event.

Under ASGI the same holds: Django sends the signal from a worker thread (``sync_to_async``)
that asgiref runs inside the failing request's context, so the current span and
``sys.exc_info()`` are those of the view, whether it is ``async def`` or not.

The event carries the request's body (``request.data``: a form's fields, JSON, text) up to
``max_request_body_size``, read here once the view is over if the view did not read it.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from itertools import islice
from typing import Any

from django.core.signals import got_request_exception
from django.http import QueryDict

from ..convert.routes import route_name
from ..convert.scrub import FILTERED, Scrubber, scrubber_for
from ..convert.scrubber import SAFE_HEADERS
from ..setup.config import Settings
from .api import capture_exception
from .asgi_check import is_asgi_request, warn_if_untraced_asgi
from .record import Details
from .snapshot import MAX_ITEMS, snapshot

__all__ = ["install", "request_details", "request_extras", "route_of", "uninstall"]

# Where opentelemetry-instrumentation-django keeps the exception it will record.
_OTEL_EXCEPTION_KEY = "opentelemetry-instrumentor-django.exception_key"
_DISPATCH_UID = "otel_sentry_bridge.got_request_exception"


def install() -> None:
    """Connect the hooks. Idempotent."""
    got_request_exception.connect(_on_request_exception, weak=False, dispatch_uid=_DISPATCH_UID)


def uninstall() -> None:
    got_request_exception.disconnect(dispatch_uid=_DISPATCH_UID)


def _on_request_exception(sender: Any, request: Any = None, **kwargs: Any) -> None:
    try:
        exc = sys.exc_info()[1]
        if exc is None:
            return
        warn_if_untraced_asgi(request)
        meta = getattr(request, "META", None) or {}
        recorded_elsewhere = meta.get(_OTEL_EXCEPTION_KEY) is exc
        event_id = capture_exception(
            exc,
            mechanism="django",
            handled=False,
            details=(
                (lambda settings: request_details(request, settings, read_body=True))
                if request
                else None
            ),
            recorded_elsewhere=recorded_elsewhere,
            name=route_of(request) or "django.request",
        )
        if event_id and request is not None:
            request.sentry_event_id = event_id
    except Exception:  # never into Django's error handling
        pass


def _url(request: Any) -> str | None:
    """The URL as the client asked for it. Read from META rather than ``get_host()``: that
    validates against ALLOWED_HOSTS (raising for the very requests worth reporting) and costs
    more than the rest of the hook."""
    meta = request.META
    host = meta.get("HTTP_HOST")
    if not host:
        port = str(meta.get("SERVER_PORT", ""))
        host = meta.get("SERVER_NAME", "localhost")
        if port and port not in ("80", "443"):
            host = f"{host}:{port}"
    try:
        scheme = request.scheme
    except Exception:
        scheme = meta.get("wsgi.url_scheme", "http")
    return f"{scheme}://{host}{getattr(request, 'path', '')}"


# WSGI names of the headers sent without send_default_pii (the scrubber's SAFE_HEADERS).
_SAFE_META = {
    ("" if name in ("content-type", "content-length") else "HTTP_")
    + name.upper().replace("-", "_"): "-".join(part.capitalize() for part in name.split("-"))
    for name in sorted(SAFE_HEADERS)
}


def _headers(request: Any, scrubber: Scrubber) -> dict[str, str]:
    meta = request.META
    if not scrubber.send_default_pii:
        # Straight from META: building request.headers walks every key of the environ.
        return {name: str(meta[key]) for key, name in _SAFE_META.items() if meta.get(key)}
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = FILTERED if scrubber.is_sensitive(name) else str(value)
    return headers


def _user(request: Any) -> dict[str, str] | None:
    user = getattr(request, "user", None)  # may hit the database: only with PII allowed
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    info: dict[str, str] = {}
    if getattr(user, "pk", None) is not None:
        info["id"] = str(user.pk)
    try:
        info["username"] = str(user.get_username())
    except Exception:
        pass
    email = getattr(user, "email", None)
    if email:
        info["email"] = str(email)
    return info or None


def request_details(request: Any, settings: Settings, *, read_body: bool = False) -> Details:
    """The Sentry details of a Django request for one bridge's settings. Never raises.
    ``read_body``: see :func:`request_extras`."""
    extras = request_extras(request, settings, read_body=read_body)
    return Details(
        request=extras.get("request"),
        user=extras.get("user"),
        transaction=extras.get("transaction"),
    )


def route_of(request: Any) -> str | None:
    """The transaction name of the request's route, when it was resolved."""
    try:
        return request_extras(request, None).get("transaction")
    except Exception:
        return None


def request_extras(
    request: Any, settings: Settings | None, *, read_body: bool = False
) -> dict[str, Any]:
    """Sentry ``request``/``user``/``transaction`` from a Django request (only the
    transaction without ``settings``). Never raises.

    The request body (``request.data``) is sent when it is at most ``max_request_body_size``
    and already read (``request.body`` or ``request.POST`` cached it); ``read_body`` also lets
    it be read from the request's stream if nothing did yet: only once the view is over (the
    ``got_request_exception`` hook), never while a view or a streaming response still runs."""
    extras: dict[str, Any] = {}
    try:
        match = getattr(request, "resolver_match", None)
        route = getattr(match, "route", None) if match is not None else None
        if route:
            extras["transaction"] = route_name(str(route))
        if settings is None:
            return extras
        scrubber = scrubber_for(settings.denylist, settings.send_default_pii)
        info: dict[str, Any] = {"method": request.method}
        url = _url(request)
        if url:
            info["url"] = url
        query = request.META.get("QUERY_STRING")
        if query:
            info["query_string"] = scrubber.query_string(query)
        headers = _headers(request, scrubber)
        if headers:
            info["headers"] = headers
        if settings.send_default_pii:
            cookies = scrubber.mapping(dict(request.COOKIES))
            if cookies:
                info["cookies"] = cookies
            remote = request.META.get("REMOTE_ADDR")
            if remote:
                info["env"] = {"REMOTE_ADDR": remote}
        try:
            data = _request_data(request, settings, scrubber, read_body)
        except Exception:  # a body that cannot be read or parsed is not sent
            data = None
        if data is not None:
            info["data"] = data
        extras["request"] = info
        if settings.send_default_pii:
            user = _user(request)
            if user:
                remote = request.META.get("REMOTE_ADDR")
                if remote:
                    user["ip_address"] = remote
                extras["user"] = user
    except Exception:
        pass
    return extras


# Bytes of request body sent with an error, per max_request_body_size (sentry-sdk's sizes).
_BODY_LIMITS: dict[str, int | None] = {"small": 1000, "medium": 10_000, "always": None}
_JSON_TYPES = ("application/json",)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _request_data(request: Any, settings: Settings, scrubber: Scrubber, read: bool) -> Any:
    """``request.data``: a form as its fields (files as a placeholder with their size), JSON
    as its data, both bounded and scrubbed by key like local variables
    (:func:`.snapshot.snapshot`). Any other body (XML, text, JSON that does not parse) cannot
    be scrubbed by key, so it is not sent (as sentry-sdk): a short note says so, as for a
    body over the size limit. None: no body, or none to send."""
    size = settings.max_request_body_size
    if size not in _BODY_LIMITS:  # "never"
        return None
    length = _body_length(request)
    if not length:  # no body, or one of unknown length that nothing has read
        return None
    limit = _BODY_LIMITS[size]
    if limit is not None and length > limit:
        return f"[request body of {length} bytes not sent: over the {size} limit of {limit} bytes]"
    content_type = str(getattr(request, "content_type", None) or "").lower()
    if content_type in _FORM_TYPES:
        return _form_data(request, content_type, read, scrubber)
    if content_type in _JSON_TYPES or content_type.endswith("+json"):
        body = _body(request, read)
        if body is None:
            return None
        try:
            encoding = getattr(request, "encoding", None) or "utf-8"
            return snapshot(json.loads(body.decode(encoding)), scrubber)
        except (ValueError, RecursionError, LookupError):
            pass  # not JSON after all
    return f"[raw request body of {length} bytes not sent]"


def _body_length(request: Any) -> int | None:
    body = getattr(request, "_body", None)  # Django caches what request.body read
    if isinstance(body, bytes):
        return len(body)
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        return None


def _body(request: Any, read: bool) -> bytes | None:
    """The body Django already read, or with ``read`` the body read now, when the stream is
    untouched and already in the server's hands: a stream the application started reading
    (``request.read()``, a parser of its own) cannot be read again (Django's
    ``RawPostDataException``), and one still coming from the client (a WSGI server's
    socket) could keep the request thread waiting as long as the client likes."""
    body = getattr(request, "_body", None)
    if isinstance(body, bytes):
        return body
    if not read or getattr(request, "_read_started", True) or not _buffered(request):
        return None
    body = request.body  # caches it in request._body: the request reads the same after us
    return body if isinstance(body, bytes) else None


def _buffered(request: Any) -> bool:
    """Whether the whole body is in memory or on disk already: Django's ASGI handler reads
    it before the view runs; WSGI servers hand the client's socket over (a client that
    announces 5,000 bytes and sends none would hold the thread until the server's timeout
    kills it, and the event with it)."""
    if is_asgi_request(request):
        return True
    stream = getattr(request, "_stream", None)
    if isinstance(stream, io.BytesIO | tempfile.SpooledTemporaryFile):
        return True
    wsgi_input = request.META.get("wsgi.input")
    return isinstance(wsgi_input, io.BytesIO) or type(wsgi_input).__name__ == "FakePayload"


def _form_data(request: Any, content_type: str, read: bool, scrubber: Scrubber) -> Any:
    """A form's fields, each value alone or, for a repeated field, the list of them; an
    uploaded file as ``[file of N bytes]`` (neither its name nor its content is sent)."""
    if content_type == _FORM_TYPES[0] and request.method != "POST":
        body = _body(request, read)  # Django parses the forms of POSTs only
        if body is None:
            return None
        form, files = QueryDict(body, encoding="utf-8"), None
    elif hasattr(request, "_post"):  # parsed already (by the view, the CSRF middleware)
        form, files = request.POST, getattr(request, "_files", None)
    elif request.method == "POST" and (
        hasattr(request, "_body")  # the body was read: Django parses the form from it
        or (read and not getattr(request, "_read_started", True) and _buffered(request))
    ):
        form, files = request.POST, request.FILES  # parses (and caches) it now
    else:
        return None
    fields: dict[str, Any] = {}
    for source in (form, files):
        if source is None:
            continue
        for key, values in islice(source.lists(), MAX_ITEMS - len(fields)):
            shown = [
                value if isinstance(value, str) else f"[file of {_file_size(value)} bytes]"
                for value in islice(values, MAX_ITEMS)
            ]
            fields[key] = shown[0] if len(shown) == 1 else shown
    return snapshot(fields, scrubber) if fields else None


def _file_size(upload: Any) -> int:
    size = getattr(upload, "size", None)
    return size if isinstance(size, int) else 0

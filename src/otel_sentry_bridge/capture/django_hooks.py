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
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.signals import got_request_exception

from ..convert.routes import route_name
from ..convert.scrub import FILTERED, scrubber_for
from ..setup.config import Settings
from .api import capture_exception
from .asgi_check import warn_if_untraced_asgi
from .record import Details

__all__ = ["install", "request_details", "request_extras", "route_of", "uninstall"]

# Where opentelemetry-instrumentation-django keeps the exception it will record.
_OTEL_EXCEPTION_KEY = "opentelemetry-instrumentor-django.exception_key"
_DISPATCH_UID = "otel_sentry_bridge.got_request_exception"
_scrubber = scrubber_for()  # the default words; the pipeline adds OTEL_SENTRY_DENYLIST


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
            details=(lambda settings: request_details(request, settings)) if request else None,
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


# WSGI names of the headers sent without send_default_pii.
_SAFE_META = {
    "HTTP_USER_AGENT": "User-Agent",
    "HTTP_HOST": "Host",
    "CONTENT_TYPE": "Content-Type",
    "HTTP_ACCEPT": "Accept",
    "CONTENT_LENGTH": "Content-Length",
}


def _headers(request: Any, send_default_pii: bool) -> dict[str, str]:
    meta = request.META
    if not send_default_pii:
        # Straight from META: building request.headers walks every key of the environ.
        return {name: str(meta[key]) for key, name in _SAFE_META.items() if meta.get(key)}
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = FILTERED if _scrubber.is_sensitive(name) else str(value)
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


def request_details(request: Any, settings: Settings) -> Details:
    """The Sentry details of a Django request for one bridge's settings. Never raises."""
    extras = request_extras(request, settings)
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


def request_extras(request: Any, settings: Settings | None) -> dict[str, Any]:
    """Sentry ``request``/``user``/``transaction`` from a Django request (only the
    transaction without ``settings``). Never raises."""
    extras: dict[str, Any] = {}
    try:
        match = getattr(request, "resolver_match", None)
        route = getattr(match, "route", None) if match is not None else None
        if route:
            extras["transaction"] = route_name(str(route))
        if settings is None:
            return extras
        info: dict[str, Any] = {"method": request.method}
        url = _url(request)
        if url:
            info["url"] = url
        query = request.META.get("QUERY_STRING")
        if query:
            info["query_string"] = _scrubber.query_string(query)
        headers = _headers(request, settings.send_default_pii)
        if headers:
            info["headers"] = headers
        if settings.send_default_pii:
            cookies = _scrubber.mapping(dict(request.COOKIES))
            if cookies:
                info["cookies"] = cookies
            remote = request.META.get("REMOTE_ADDR")
            if remote:
                info["env"] = {"REMOTE_ADDR": remote}
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

"""The measured Django app: settings, three views and their URLs (``ROOT_URLCONF`` is this
module). Views live here so every configuration runs exactly the same code."""

from __future__ import annotations

import io
import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path

log = logging.getLogger("bench.views")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]


def configure() -> None:
    """``settings.configure`` for DEBUG=False, no database, a few middlewares."""
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-not-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=list(MIDDLEWARE),
        INSTALLED_APPS=[],
        DATABASES={},
        TEMPLATES=[],
        USE_TZ=True,
    )


class OrderLookupError(Exception):
    pass


def _load(order_id: int) -> dict[str, int]:
    return {}[order_id]  # type: ignore[return-value]


def _fetch(order_id: int) -> dict[str, int]:
    return _load(order_id)


def _find_order(order_id: int) -> dict[str, int]:
    try:
        return _fetch(order_id)
    except KeyError as exc:
        raise OrderLookupError(f"order {order_id} not found") from exc


def _checkout(order_id: int) -> dict[str, int]:
    return _find_order(order_id)


def ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def boom(request: HttpRequest) -> HttpResponse:
    _checkout(17)  # KeyError -> OrderLookupError, five frames below the view
    return HttpResponse("unreachable")


def logerr(request: HttpRequest) -> HttpResponse:
    try:
        _checkout(18)
    except OrderLookupError:
        log.exception("could not load order %s", 18)
    return HttpResponse("logged")


urlpatterns = [
    path("ok/", ok),
    path("boom/", boom),
    path("logerr/", logerr),
]

# endpoint name -> (path, expected status)
ENDPOINTS: dict[str, tuple[str, str]] = {
    "ok": ("/ok/", "200"),
    "boom": ("/boom/", "500"),
    "logerr": ("/logerr/", "200"),
}

_BASE_ENVIRON: dict[str, Any] = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "QUERY_STRING": "",
    "SERVER_NAME": "bench.local",
    "SERVER_PORT": "80",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_HOST": "bench.local",
    "HTTP_USER_AGENT": "bench/1.0",
    "HTTP_ACCEPT": "text/html",
    "REMOTE_ADDR": "127.0.0.1",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.multithread": True,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}


def environ(path_info: str) -> dict[str, Any]:
    """A fresh minimal WSGI environ (each request needs its own input stream)."""
    env = dict(_BASE_ENVIRON)
    env["PATH_INFO"] = path_info
    env["wsgi.input"] = io.BytesIO(b"")
    env["wsgi.errors"] = io.StringIO()
    return env

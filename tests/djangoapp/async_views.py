"""``async def`` twins of the failing views: under ASGI Django awaits these on the event loop
instead of sending them to a worker thread."""

from __future__ import annotations

import asyncio

from django.http import HttpRequest, HttpResponse

from .views import OrderLookupError, _find_order, log


async def ok(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(0)
    return HttpResponse("ok")


async def boom(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(0)  # fail after a real suspension, as a view awaiting I/O would
    _find_order(17)
    return HttpResponse("unreachable")


async def log_exception(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(0)
    try:
        _find_order(18)
    except OrderLookupError:
        log.exception("could not load order %s", 18)
    return HttpResponse("logged")


async def breadcrumbs(request: HttpRequest) -> HttpResponse:
    """Logs, yields to the other requests on the event loop, logs again and fails: concurrent
    requests interleave on one thread, yet each event must keep only its own breadcrumbs."""
    n = request.GET.get("n", "?")
    log.info("cart %s loaded", n)
    await asyncio.sleep(0.05)
    log.warning("stock is low for cart %s", n)
    await asyncio.sleep(0)
    raise OrderLookupError(f"order of cart {n} not found")

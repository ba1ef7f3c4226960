"""Views that fail in the ways the tests need."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

log = logging.getLogger("shop.views")


class OrderLookupError(Exception):
    pass


def _load(order_id: int) -> dict[str, int]:
    return {}[order_id]  # type: ignore[return-value]


def _find_order(order_id: int) -> dict[str, int]:
    try:
        return _load(order_id)
    except KeyError as exc:
        raise OrderLookupError(f"order {order_id} not found") from exc


def ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def boom(request: HttpRequest) -> HttpResponse:
    _find_order(17)
    return HttpResponse("unreachable")


def log_exception(request: HttpRequest) -> HttpResponse:
    try:
        _find_order(18)
    except OrderLookupError:
        log.exception("could not load order %s", 18)
    return HttpResponse("logged")


def log_error(request: HttpRequest) -> HttpResponse:
    log.error("payment gateway answered %s for order %s", 502, 19)
    return HttpResponse("logged")


def batch(request: HttpRequest) -> HttpResponse:
    """Three items fail alike: three errors, one log line and one exception object each."""
    for order_id in (31, 32, 33):
        try:
            raise OrderLookupError("order not found")
        except OrderLookupError:
            log.exception("could not load order %s", order_id)
        log.error("skipped item %s", order_id)
    return HttpResponse("partly done")


def export(request: HttpRequest) -> StreamingHttpResponse:
    """A CSV export that fails after its first rows: the status line is already out."""

    def rows() -> Iterator[bytes]:
        yield b"order,total\n"
        yield b"30,12.50\n"
        _find_order(40)

    return StreamingHttpResponse(rows(), content_type="text/csv")


def breadcrumbs(request: HttpRequest) -> HttpResponse:
    log.info("step one: cart loaded")
    log.warning("step two: stock is low for %s", "sku-1")
    _find_order(20)
    return HttpResponse("unreachable")


def many_logs(request: HttpRequest) -> HttpResponse:
    for index in range(200):
        log.warning("noise %d", index)
    _find_order(21)
    return HttpResponse("unreachable")


def unserialisable_extra(request: HttpRequest) -> HttpResponse:
    class Opaque:
        def __repr__(self) -> str:
            raise RuntimeError("no repr for you")

    cycle: list[object] = []
    cycle.append(cycle)
    log.error("weird extra", extra={"opaque": Opaque(), "cycle": cycle, "raw": b"\xff\xfe"})
    return HttpResponse("logged")


def unavailable(request: HttpRequest) -> HttpResponse:
    return HttpResponse("maintenance", status=503)  # a 5xx on purpose, not an error


def worker_error(request: HttpRequest) -> HttpResponse:
    time.sleep(0.05)  # long enough for concurrent requests to spread over the workers
    log.error("error in worker", extra={"worker_pid": os.getpid()})
    return HttpResponse(str(os.getpid()))


def not_found(request: HttpRequest) -> HttpResponse:
    raise Http404("no such page")


def forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("nope")


def leaky_locals(request: HttpRequest) -> HttpResponse:
    """Secrets nested in locals, a form, a JSON body and the request's query string; and
    locals too big to copy whole."""
    creds = {"service": "billing", "password": request.GET.get("api_key", "")}
    form = request.POST
    payload = json.loads(form.get("doc", "{}"))
    huge_map = {index: index for index in range(500_000)}
    huge_set = set(range(500_000))
    blob = b"x" * 20_000_000
    log.debug("%s %s %s %s %s", creds, payload, len(huge_map), len(huge_set), len(blob))
    raise OrderLookupError("checkout failed")


# What the last call of a body-reading view read (the tests compare it with the event).
BODIES_READ: list[bytes] = []


def read_body_then_fail(request: HttpRequest) -> HttpResponse:
    """Reads the JSON body itself (as an API view does), then fails."""
    BODIES_READ.append(request.body)
    json.loads(request.body)
    _find_order(22)
    return HttpResponse("unreachable")


def read_stream_then_fail(request: HttpRequest) -> HttpResponse:
    """Reads part of the body from the stream (as a parser of its own does), then fails:
    ``request.body`` cannot be read any more."""
    BODIES_READ.append(request.read(4))
    _find_order(23)
    return HttpResponse("unreachable")


def log_then_read_body(request: HttpRequest) -> HttpResponse:
    """Logs an error before it reads the body: the log capture must leave the body alone."""
    log.error("about to read the body of order %s", 24)
    BODIES_READ.append(request.body)
    return HttpResponse(request.body, content_type=request.content_type)


class _Order:
    id = 25

    @property
    def total(self) -> str:
        _find_order(25)
        return "unreachable"


def broken_template(request: HttpRequest) -> HttpResponse:
    """Renders a template with an unknown tag: a TemplateSyntaxError."""
    return render(request, "broken.html", {"order_id": 26, "customer": "ada"})


def template_calls_failing_code(request: HttpRequest) -> HttpResponse:
    """Renders a template whose variable is a property that raises."""
    return render(request, "order_total.html", {"order": _Order()})


# -- exceptions and errors through the OpenTelemetry logs API (issue #16) -------------------


def otel_log_exception(request: HttpRequest) -> HttpResponse:
    """Emits a handled exception as an OTel log record (the logs API, not ``logging``)."""
    from opentelemetry._logs import SeverityNumber, get_logger

    try:
        _find_order(41)
    except OrderLookupError as exc:
        get_logger("shop.events").emit(
            severity_number=SeverityNumber.ERROR,
            severity_text="ERROR",
            body="could not load order 41",
            attributes={"order.id": 41},
            event_name="shop.order.lookup_failed",
            exception=exc,
        )
    return HttpResponse("emitted")


def otel_log_error(request: HttpRequest) -> HttpResponse:
    """Emits an OTel log record at ERROR without an exception."""
    from opentelemetry._logs import SeverityNumber, get_logger

    get_logger("shop.events").emit(
        severity_number=SeverityNumber.ERROR,
        severity_text="ERROR",
        body="card processor timed out for order 42",
        attributes={"order.id": 42},
    )
    return HttpResponse("emitted")

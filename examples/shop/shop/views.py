"""Views of the example shop. Each one fails (or not) in a way the bridge must handle.

The failures sit a few helper calls deep so that the stack traces in Sentry look like those
of a real application rather than a one-frame demo.
"""

from __future__ import annotations

import calendar
import json
import logging
from decimal import Decimal
from typing import Any

import requests
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from . import tasks

# A module-level logger under "shop", which settings.LOGGING makes non-propagating.
logger = logging.getLogger(__name__)

TASK_NAMES = ("charge", "capture", "sync-stock", "report", "resize")

ENDPOINTS = (
    "/orders/<id>/   chained exception escaping the view (500)",
    "/checkout/      exception logged with logger.exception (502)",
    "/payment/       logger.error without an exception, after breadcrumbs (402)",
    "/inventory/     outgoing HTTP call whose 503 becomes requests.HTTPError (500)",
    "/missing/       Http404, which must not become a Sentry event (404)",
    "/healthz/       health check (200)",
    "/tasks/<name>/  enqueue a Celery task that fails in the worker (202); names: "
    + ", ".join(TASK_NAMES),
    "/reports/<yyyy>/<mm>/  a re_path() route; month 13 raises (500)",
    "/api/orders/    POST a JSON order; an unknown SKU raises, the event shows the body (500)",
    "/receipts/<id>/ renders a template that uses an unknown filter (500)",
)

ORDERS: dict[int, dict[str, Any]] = {
    1001: {"customer": "ada", "lines": [("keyboard", 1, Decimal("49.90"))]},
    1002: {"customer": "grace", "lines": [("mouse", 2, Decimal("19.50"))]},
}

# Prices in cents. Cart 42 is empty: averaging its prices divides by zero.
CARTS: dict[str, list[int]] = {"41": [1200, 3000], "42": []}


class OrderNotFound(Exception):
    """The shop's own error for an unknown order id."""

    def __init__(self, order_id: int) -> None:
        super().__init__(f"order {order_id} does not exist")
        self.order_id = order_id


def index(request: HttpRequest) -> HttpResponse:
    """GET / -> 200, plain text: "ok" and the list of endpoints."""
    return HttpResponse("ok\n\n" + "\n".join(ENDPOINTS) + "\n", content_type="text/plain")


def healthz(request: HttpRequest) -> HttpResponse:
    """GET /healthz/ -> 200. Load balancers poll this; it never fails."""
    return HttpResponse("ok", content_type="text/plain")


# --- /orders/<id>/: an unhandled, chained exception -------------------------------------------


def _fetch_row(order_id: int) -> dict[str, Any]:
    return ORDERS[order_id]  # KeyError for an unknown id: the root cause in Sentry


def _load_order(order_id: int) -> dict[str, Any]:
    try:
        return _fetch_row(order_id)
    except KeyError as exc:
        # `from exc` keeps the KeyError as __cause__: Sentry shows both, root cause first.
        raise OrderNotFound(order_id) from exc


def _order_summary(order_id: int) -> dict[str, Any]:
    order = _load_order(order_id)
    total = sum((qty * price for _, qty, price in order["lines"]), Decimal("0"))
    return {"id": order_id, "customer": order["customer"], "total": str(total)}


def order_detail(request: HttpRequest, order_id: int) -> JsonResponse:
    """GET /orders/<id>/ -> 200 for 1001 and 1002; any other id raises OrderNotFound (chained
    from KeyError) out of the view -> 500 and one unhandled Sentry event."""
    return JsonResponse(_order_summary(order_id))


# --- /checkout/: a handled exception, reported through logging ---------------------------------


def _average_cents(prices: list[int]) -> int:
    return sum(prices) // len(prices)  # ZeroDivisionError for an empty cart


def _price_cart(cart_id: str) -> dict[str, Any]:
    prices = CARTS.get(cart_id, [])
    return {"cart": cart_id, "items": len(prices), "average_cents": _average_cents(prices)}


def checkout(request: HttpRequest) -> JsonResponse:
    """GET /checkout/?cart=42 -> 502. The ZeroDivisionError is caught and reported with
    ``logger.exception``: a handled Sentry event (mechanism ``logging``) with the traceback."""
    cart_id = request.GET.get("cart", "42")
    try:
        return JsonResponse(_price_cart(cart_id))
    except ZeroDivisionError:
        logger.exception("checkout failed for cart %s", cart_id)
        return JsonResponse({"error": "checkout unavailable", "cart": cart_id}, status=502)


# --- /payment/: an error message without an exception -----------------------------------------


def payment(request: HttpRequest) -> JsonResponse:
    """GET /payment/ -> 402. INFO and WARNING records become breadcrumbs (and span events in
    Jaeger); the ERROR record, which carries no exception, becomes a Sentry message event."""
    provider = request.GET.get("provider", "acme-pay")
    order_id = request.GET.get("order", "1001")
    logger.info("charging order %s with %s", order_id, provider)
    logger.warning("payment provider %s answered slowly (%.1fs)", provider, 2.4)
    logger.error("payment provider %s declined order %s", provider, order_id)
    return JsonResponse({"error": "payment declined", "order": order_id}, status=402)


# --- /inventory/: an outgoing HTTP call that fails --------------------------------------------


def _stock_url(request: HttpRequest) -> str:
    # Calling ourselves keeps the example self-contained while still producing a real
    # http.client span (opentelemetry-instrumentation-requests) inside the server span.
    return request.build_absolute_uri(reverse("upstream-stock"))


def _fetch_stock(request: HttpRequest) -> dict[str, Any]:
    response = requests.get(_stock_url(request), timeout=5)
    response.raise_for_status()  # the 503 below becomes requests.HTTPError
    result: dict[str, Any] = response.json()
    return result


def inventory(request: HttpRequest) -> JsonResponse:
    """GET /inventory/ -> 500. The upstream stock service answers 503; ``raise_for_status``
    turns that into ``requests.HTTPError``, which escapes the view. The trace holds the server
    span, the client span of the outgoing call and the upstream's own server span."""
    return JsonResponse(_fetch_stock(request))


def upstream_stock(request: HttpRequest) -> JsonResponse:
    """GET /upstream/stock/ -> 503: a stand-in for a stock service that is down."""
    return JsonResponse({"error": "stock service unavailable"}, status=503)


# --- /missing/: a 404 ----------------------------------------------------------------------------


def missing(request: HttpRequest) -> HttpResponse:
    """GET /missing/ -> 404. Http404 is an expected outcome, not an error: no Sentry event."""
    raise Http404("no such page")


# --- /tasks/<name>/: a Celery task that fails in the worker ---------------------------------------


def _enqueue_task(name: str) -> Any:
    if name == "charge":  # fake card token and key: the Sentry event shows them filtered
        return tasks.charge_card.delay(1001, "tok_fake_4242", 4990, api_key="sk_fake_shop")
    if name == "capture":
        return tasks.capture_payment.delay(1002)
    if name == "sync-stock":
        return tasks.sync_stock.delay("KB-101")
    if name == "report":
        return tasks.build_report.delay("2024-05-01")
    if name == "resize":
        return tasks.resize_images.delay(7)
    raise Http404(f"no task {name!r}")


def enqueue(request: HttpRequest, name: str) -> JsonResponse:
    """GET /tasks/<name>/ -> 202 with the task id. Enqueues one of the tasks of
    ``shop/tasks.py`` (charge, capture, sync-stock, report, resize); when the worker fails it,
    the Sentry event carries this request's trace id. 404 for an unknown name."""
    result = _enqueue_task(name)
    return JsonResponse({"task": name, "task_id": result.id}, status=202)


# --- /reports/<yyyy>/<mm>/: a regular expression route (re_path) ----------------------------


def _month_days(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]  # IllegalMonthError (a ValueError) for 13


def monthly_report(request: HttpRequest, year: str, month: str) -> JsonResponse:
    """GET /reports/2024/05/ -> 200; /reports/2024/13/ -> 500: an IllegalMonthError escapes
    the view. The route is a ``re_path()`` regular expression; Sentry's transaction is
    ``/reports/{year}/{month}/``, as sentry-sdk names it."""
    days = _month_days(int(year), int(month))
    return JsonResponse({"year": int(year), "month": int(month), "days": days, "orders": 0})


# --- POST /api/orders/: a JSON request body ---------------------------------------------------

PRICES: dict[str, Decimal] = {"KB-101": Decimal("49.90"), "MS-202": Decimal("19.50")}


class UnknownProduct(Exception):
    """An order line names a SKU the shop does not sell."""


def _line_total(line: dict[str, Any]) -> Decimal:
    try:
        price = PRICES[line["sku"]]
    except KeyError as exc:
        raise UnknownProduct(f"no product {line['sku']!r}") from exc
    return price * int(line.get("qty", 1))


@require_POST
def place_order(request: HttpRequest) -> JsonResponse:
    """POST /api/orders/ with a JSON order -> 201, or 500 when a line names an unknown SKU
    (``UnknownProduct`` from ``KeyError``). The Sentry event carries the JSON body as
    ``request.data``, with ``payment.card_token`` ``[Filtered]`` by its key; bodies over
    ``OTEL_SENTRY_MAX_REQUEST_BODY_SIZE`` (10,000 bytes by default) are not sent. GET -> 405."""
    order = json.loads(request.body)
    total = sum((_line_total(line) for line in order["lines"]), Decimal("0"))
    return JsonResponse({"customer": order["customer"], "total": str(total)}, status=201)


# --- /receipts/<id>/: an error in a template -------------------------------------------------


def receipt(request: HttpRequest, order_id: int) -> HttpResponse:
    """GET /receipts/1001/ -> 500: ``shop/receipt.html`` uses a filter that was never
    registered, a ``TemplateSyntaxError``. The template engine's ``debug`` option (settings)
    lets the Sentry event show the template's file and line, with its lines around it, as
    the innermost frame."""
    return render(request, "shop/receipt.html", {"order": _order_summary(order_id)})

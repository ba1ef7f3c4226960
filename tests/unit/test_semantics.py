"""Transaction names and their source, from span attributes, as sentry-sdk's Django
integration gives them: the route, else the URL path of an unrouted request, else the span
name; on error events and transactions alike."""

from __future__ import annotations

from typing import Any

import pytest

from otel_sentry_bridge import attributes as attr
from otel_sentry_bridge.convert.context import ConvertContext
from otel_sentry_bridge.convert.event import build_events
from otel_sentry_bridge.convert.frames import CodeLayout
from otel_sentry_bridge.convert.model import EventView, SpanView
from otel_sentry_bridge.convert.scrub import Scrubber
from otel_sentry_bridge.convert.semantics import (
    http_status,
    request_interface,
    transaction_name,
    transaction_name_and_source,
    url_parts,
)
from otel_sentry_bridge.convert.transaction import build_transaction
from otel_sentry_bridge.setup.config import Settings
from tests.support.relay import assert_valid_event


def _span(attributes: dict[str, Any], *, kind: str = "SERVER", name: str = "GET") -> SpanView:
    error = EventView(
        name="exception",
        timestamp_ns=2_000_000_000,
        attributes={
            attr.EXCEPTION_TYPE: "ValueError",
            attr.EXCEPTION_MESSAGE: "no such order",
            attr.EXCEPTION_STACKTRACE: "Traceback (most recent call last):\n"
            '  File "/srv/app/shop/views.py", line 3, in order\n'
            "    raise ValueError('no such order')\n"
            "ValueError: no such order\n",
        },
    )
    return SpanView(
        trace_id=0xA1,
        span_id=0xB1,
        name=name,
        kind=kind,
        attributes=attributes,
        events=(error,),
        start_time_ns=1_000_000_000,
        end_time_ns=3_000_000_000,
    )


def _ctx() -> ConvertContext:
    return ConvertContext(
        settings=Settings(),
        layout=CodeLayout(import_roots=("/srv/app/",), stdlib_roots=()),
        read_source=lambda _path: None,
        hostname="test-host",
    )


DRF_DETAIL = {"http.method": "GET", "http.route": r"api/orders/(?P<pk>[^/.]+)/$"}


ORDER_17 = ("/orders/17/", "url")


@pytest.mark.parametrize(
    ("attributes", "kind", "expected"),
    [
        # a DRF router's detail route (re_path): what sentry-sdk shows for it
        (DRF_DETAIL, "SERVER", ("/api/orders/{pk}/", "route")),
        # Wagtail's page server
        ({"http.method": "GET", "http.route": r"((?:[\w\-]+/)*)$"}, "SERVER", ("/{var}", "route")),
        # a path() route, as before
        (
            {"http.method": "GET", "http.route": "orders/<int:id>/"},
            "SERVER",
            ("/orders/{id}/", "route"),
        ),
        # no route matched (a middleware failed first): the URL path, old and stable names
        ({"http.method": "GET", "http.target": "/orders/17/?x=1"}, "SERVER", ORDER_17),
        ({"http.request.method": "GET", "url.path": "/orders/17/"}, "SERVER", ORDER_17),
        (
            {"http.method": "GET", "http.url": "https://shop.test/orders/17/?a=b"},
            "SERVER",
            ORDER_17,
        ),
        # a proxy's absolute request target
        ({"http.method": "GET", "http.target": "http://shop.test/orders/17/"}, "SERVER", ORDER_17),
        # no path at all, or not a server span: the span name
        ({"http.method": "GET"}, "SERVER", ("GET", "custom")),
        (
            {"http.method": "GET", "http.url": "https://api.test/v1/items"},
            "CLIENT",
            ("GET", "custom"),
        ),
        ({}, "INTERNAL", ("GET", "custom")),
    ],
)
def test_transaction_name_and_source(
    attributes: dict[str, Any], kind: str, expected: tuple[str, str]
) -> None:
    span = _span(attributes, kind=kind)
    assert transaction_name_and_source(span) == expected
    assert transaction_name(span) == expected[0]


@pytest.mark.parametrize(
    ("attributes", "name", "source"),
    [
        (DRF_DETAIL, "/api/orders/{pk}/", "route"),
        ({"http.method": "GET", "http.target": "/orders/17/"}, "/orders/17/", "url"),
        ({}, "GET", "custom"),
    ],
)
def test_error_events_and_transactions_carry_the_source(
    attributes: dict[str, Any], name: str, source: str
) -> None:
    span = _span(attributes, kind="SERVER" if attributes else "INTERNAL")
    ((_, event),) = build_events(span, _ctx())
    assert_valid_event(event)
    assert (event["transaction"], event["transaction_info"]) == (name, {"source": source})

    transaction = build_transaction(span, [], _ctx(), Scrubber())
    assert_valid_event(transaction)
    assert transaction["transaction"] == name
    assert transaction["transaction_info"] == {"source": source}


_CAPTURED_HEADERS = {
    "http.method": "GET",
    "http.target": "/cart",
    "http.request.header.x_forwarded_for": ("203.0.113.77",),
    "http.request.header.x_real_ip": ("203.0.113.78",),
    "http.request.header.accept": ("text/html",),
    "http.request.header.x_trace_note": ("kept with pii only",),
}


def test_captured_request_headers_without_send_default_pii_are_the_safe_ones_only() -> None:
    """probe 2026-12-05: X-Forwarded-For reached a transaction with send_default_pii off."""
    request = request_interface(_span(_CAPTURED_HEADERS), send_default_pii=False)
    assert request is not None
    assert request["headers"] == {"Accept": "text/html"}


def test_captured_request_headers_with_send_default_pii_are_all_kept() -> None:
    request = request_interface(_span(_CAPTURED_HEADERS), send_default_pii=True)
    assert request is not None
    assert request["headers"] == {
        "X-Forwarded-For": "203.0.113.77",
        "X-Real-Ip": "203.0.113.78",
        "Accept": "text/html",
        "X-Trace-Note": "kept with pii only",
    }


@pytest.mark.parametrize("url", ["http://[x/hook?token=1", "http://[::1/a#frag"])
def test_a_url_that_does_not_parse_is_kept_as_given(url: str) -> None:
    """probe 2026-12-05: ``Host: [x`` under ASGI made urlsplit raise, and the event was lost."""
    base, query = url_parts({"url.full": url})
    assert base == url.partition("?")[0].partition("#")[0]
    assert query == ("token=1" if "?" in url else None)


def test_an_error_in_a_span_with_an_unparseable_url_is_still_an_event() -> None:
    span = _span({"http.method": "GET", "url.full": "http://[x/boom", "http.status_code": 500})
    ((_, event),) = build_events(span, _ctx())
    assert_valid_event(event)
    assert event["request"]["url"] == "http://[x/boom"


@pytest.mark.parametrize("status", [float("inf"), float("nan"), "abc", None])
def test_a_status_code_that_is_no_number_is_none(status: Any) -> None:
    assert http_status({"http.status_code": status}) is None

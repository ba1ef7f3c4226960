"""Shipments through the helper's codec: everything the conversion reads comes back equal;
anything but plain data is refused, for the caller to keep the error in its own process."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest

from otel_sentry_bridge.capture.record import CaptureRecord, Details, LogEntry, Mechanism
from otel_sentry_bridge.convert.model import EventView, SpanView
from otel_sentry_bridge.offload.codec import decode, encode, shipment_frame
from otel_sentry_bridge.offload.shipment import (
    HEADER,
    MAX_FRAME,
    Shipment,
    TransactionShipment,
)


def _view(**overrides: Any) -> SpanView:
    fields: dict[str, Any] = {
        "trace_id": 2**127 + 5,
        "span_id": 2**63 + 7,
        "name": "GET /orders/{id}",
        "parent_span_id": 3,
        "kind": "SERVER",
        "status_code": "ERROR",
        "status_description": "boom",
        "attributes": {"http.route": "orders/<int:id>/", "http.status_code": 500},
        "resource": {"service.name": "shop", "telemetry.sdk.version": "1.45"},
        "events": (
            EventView("exception", 5, {"exception.type": "KeyError", "sentry.event_id": "e"}),
            EventView("log", 6, {"log.message": "x", "code.lineno": 3}),
        ),
        "start_time_ns": 1,
        "end_time_ns": 9,
        "scope_name": "opentelemetry.instrumentation.django",
    }
    return SpanView(**{**fields, **overrides})


def _shipment() -> Shipment:
    full = CaptureRecord(
        "e" * 32,
        mechanism=Mechanism("django", handled=False),
        level="fatal",
        logger="shop.orders",
        logentry=LogEntry("order %s", ("17",), "order 17"),
        details=Details(
            request={"url": "http://x/", "headers": {"Accept": "*/*"}},
            user={"id": "4"},
            transaction="/orders/{id}",
            tags={"celery_task_name": "pay"},
            contexts={"celery": {"retries": 2}},
            extra={"order": 17, "items": [1, 2.5, None, True]},
            fingerprint=("orders", "{{ default }}"),
        ),
        frame_vars=({"order_id": "17"}, {}),
        breadcrumbs=({"timestamp": 1.0, "message": "start"},),
        send=True,
        template_frame={"filename": "orders.html", "lineno": 4},
    )
    bare = CaptureRecord("f" * 32)
    return Shipment(
        _view(),
        {full.event_id: full, bare.event_id: bare},
        [{"timestamp": 1.0, "category": "log", "message": "hello"}],
        [_view(trace_id=0, span_id=0, name="SELECT", kind="CLIENT", events=())],
    )


def test_an_error_shipment_comes_back_equal() -> None:
    assert decode(encode(_shipment())) == _shipment()


def test_a_trace_without_log_breadcrumbs_stays_without() -> None:
    shipment = Shipment(_view())
    assert decode(encode(shipment)) == shipment


def test_a_transaction_shipment_comes_back_equal() -> None:
    shipment = TransactionShipment(_view(), (_view(name="a"), _view(name="b")), dropped=3)
    assert decode(encode(shipment)) == shipment


def test_a_frame_holds_the_encoded_shipment() -> None:
    data = shipment_frame(_shipment())
    assert HEADER.unpack(data[: HEADER.size]) == (b"S", len(data) - HEADER.size)
    assert decode(data[HEADER.size :]) == _shipment()


class _AppObject:
    """The helper does not import the application's modules."""


def _app_function() -> None:
    return None


@pytest.mark.parametrize(
    "value",
    [
        lambda: None,
        _AppObject(),
        _AppObject,
        _app_function,
        datetime.datetime(2026, 1, 1),
        Decimal("1.5"),
    ],
    ids=["lambda", "application object", "class", "function", "datetime", "decimal"],
)
def test_anything_but_plain_data_is_refused(value: Any) -> None:
    shipment = _shipment()
    shipment.log_crumbs = [{"timestamp": 1.0, "data": value}]
    with pytest.raises(ValueError):
        shipment_frame(shipment)
    with pytest.raises(ValueError):
        shipment_frame(Shipment(_view(attributes={"odd": value})))


def test_a_shipment_past_the_frame_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from otel_sentry_bridge.offload import codec

    monkeypatch.setattr(codec, "MAX_FRAME", 100)
    assert MAX_FRAME > 100
    with pytest.raises(ValueError, match="larger"):
        shipment_frame(_shipment())


@pytest.mark.parametrize("payload", [b"", b"garbage", encode(_shipment())[:-5]])
def test_bytes_that_are_not_a_shipment_raise(payload: bytes) -> None:
    with pytest.raises((ValueError, EOFError, TypeError)):
        decode(payload)


# -- a finished span read straight into its parcel (Pipeline.parcel) -------------------------


def _finished_spans() -> list[Any]:
    """Real SDK spans: a server span with our exception event, an exception recorded by
    another instrumentation (its record waits for it), one recorded for tracing only, a log
    event, an event that is not ours; and the database call before them."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
    from opentelemetry.trace import SpanKind, Status, StatusCode

    ended: list[ReadableSpan] = []

    class Keep(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            ended.append(span)

    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(Keep())
    tracer = provider.get_tracer("tests.codec")
    with tracer.start_as_current_span("GET /orders/{id}", kind=SpanKind.SERVER) as server:
        server.set_attribute("http.route", "orders/<int:id>/")
        with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as query:
            query.set_attribute("db.system", "postgresql")
        server.add_event(
            "exception",
            {"exception.type": "KeyError", "exception.message": "'a'", "sentry.event_id": "a" * 32},
        )
        server.add_event("exception", {"exception.type": "ValueError", "exception.message": "v"})
        server.add_event("exception", {"exception.type": "Retry", "exception.message": "r"})
        server.add_event(
            "log", {"log.message": "slow", "sentry.send": True, "sentry.event_id": "b" * 32}
        )
        server.add_event("cache.miss", {"key": "orders"})
        server.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()
    return ended


def _filled(store: Any, server: Any) -> None:
    span_id = server.context.span_id
    store.put(CaptureRecord("a" * 32, mechanism=Mechanism("django", handled=False)))
    store.put(CaptureRecord("b" * 32, level="warning", logger="shop"))
    store.expect((span_id, "ValueError", "v"), CaptureRecord("c" * 32, level="error"))
    store.expect((span_id, "Retry", "r"), CaptureRecord("d" * 32, send=False))
    store.add_breadcrumb(server.context.trace_id, {"timestamp": 0.0, "message": "start"})


def test_a_finished_span_s_parcel_is_its_shipment_in_plain_data() -> None:
    import logging
    import marshal

    from otel_sentry_bridge.capture.store import CaptureStore
    from otel_sentry_bridge.convert.spans import span_record
    from otel_sentry_bridge.deliver.pipeline import Pipeline
    from otel_sentry_bridge.deliver.sender import Delivery
    from otel_sentry_bridge.offload.codec import plain, unplain
    from otel_sentry_bridge.setup.config import Settings
    from otel_sentry_bridge.testing import CapturingTransport
    from otel_sentry_bridge.warn_once import WarnOnce

    query, server = _finished_spans()
    shipped = []
    for way in ("parcel", "shipment"):
        store = CaptureStore()
        _filled(store, server)
        store.add_span(query.context.trace_id, span_record(query))
        delivery = Delivery(CapturingTransport())
        pipeline = Pipeline(Settings(), None, delivery, store, WarnOnce(logging.getLogger("t")))
        if way == "parcel":
            parcel = pipeline.parcel(server)
            shipped.append((marshal.loads(marshal.dumps(parcel)), unplain(parcel)))
        else:
            shipment = pipeline.shipment(server, cheap=True)
            shipped.append((marshal.loads(encode(shipment)), shipment))
        assert store.take("a" * 32) is None  # taken: each bridge converts a span once
        delivery.shutdown(1)
    (parcel_data, from_parcel), (shipment_data, shipment) = shipped
    assert parcel_data == shipment_data
    assert from_parcel == shipment == decode(encode(shipment))
    assert plain(shipment) == parcel_data
    # What the parcel is made of: the expected record's event id added, the tracing-only
    # exception left out, the breadcrumbs of the trace.
    names = [
        (event.name, event.attributes.get("sentry.event_id")) for event in shipment.view.events
    ]
    assert names == [
        ("exception", "a" * 32),
        ("exception", "c" * 32),
        ("log", "b" * 32),
        ("cache.miss", None),
    ]
    assert sorted(shipment.records) == ["a" * 32, "b" * 32, "c" * 32]
    assert shipment.log_crumbs == [{"timestamp": 0.0, "message": "start"}]
    assert [crumb.name for crumb in shipment.span_crumbs] == ["SELECT"]
    assert shipment.view.resource["service.name"] == "shop"
    assert shipment.view.status_code == "ERROR"

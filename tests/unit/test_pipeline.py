"""Pipeline: the worker's step from a span (or direct capture) and its records to envelopes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from otel_sentry_bridge.capture.record import CaptureRecord, Details, DirectCapture, Mechanism
from otel_sentry_bridge.capture.store import CaptureStore
from otel_sentry_bridge.deliver import pipeline as pipeline_module
from otel_sentry_bridge.deliver.pipeline import Pipeline
from otel_sentry_bridge.deliver.sender import Delivery
from otel_sentry_bridge.setup.config import Settings
from otel_sentry_bridge.testing import CapturingTransport
from otel_sentry_bridge.warn_once import WarnOnce

EVENT_ID = "c" * 32


@pytest.fixture
def parts() -> Iterator[tuple[Pipeline, CaptureStore, CapturingTransport]]:
    transport = CapturingTransport()
    store = CaptureStore()
    delivery = Delivery(transport)
    pipeline = Pipeline(
        Settings(), None, delivery, store, WarnOnce(logging.getLogger("tests.pipeline"))
    )
    yield pipeline, store, transport
    delivery.shutdown(2)


def _capture(exc: BaseException | None = None, **attributes: Any) -> DirectCapture:
    return DirectCapture(
        trace_id=1,
        span_id=2,
        timestamp_ns=time.time_ns(),
        attributes={"sentry.event_id": EVENT_ID, **attributes},
        exception=exc,
    )


def _raised() -> KeyError:
    try:
        raise KeyError("order")
    except KeyError as exc:
        return exc


def _events(pipeline: Pipeline, transport: CapturingTransport) -> list[dict[str, Any]]:
    assert pipeline.delivery.flush(5)
    return list(transport.events)


def test_the_record_gives_what_the_hook_knew(parts: Any) -> None:
    pipeline, store, transport = parts
    record = CaptureRecord(
        EVENT_ID,
        mechanism=Mechanism("django", False),
        level="warning",
        logger="shop",
        details=Details(transaction="/orders/<int:id>/", tags={"team": "checkout"}),
    )
    store.put(record)
    pipeline(_capture(_raised()))
    (event,) = _events(pipeline, transport)
    assert event["event_id"] == EVENT_ID
    assert event["level"] == "warning" and event["logger"] == "shop"
    assert event["transaction"] == "/orders/<int:id>/"
    assert event["tags"]["team"] == "checkout"
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "django", "handled": False}


def test_a_record_is_used_once(parts: Any) -> None:
    pipeline, store, _ = parts
    store.put(CaptureRecord(EVENT_ID, level="warning"))
    pipeline(_capture(_raised()))
    assert store.take(EVENT_ID) is None  # taken by the conversion


def test_a_message_without_its_record_still_goes(parts: Any) -> None:
    pipeline, _, transport = parts
    pipeline(_capture(None, **{"sentry.send": True, "log.message": "payment failed"}))
    (event,) = _events(pipeline, transport)
    assert event["logentry"]["formatted"] == "payment failed"
    assert event["level"] == "error"


def test_the_worker_tells_the_delivery_how_many_spans_wait_for_it() -> None:
    seen: list[tuple[str, int | None]] = []

    class Noting(Delivery):
        def submit(
            self, data: bytes, category: str = "error", *, waiting: int | None = None
        ) -> bool:
            seen.append((threading.current_thread().name, waiting))
            return super().submit(data, category, waiting=waiting)

    threads: list[str] = []

    class NotingTransport(CapturingTransport):
        def send(self, envelope: bytes) -> Any:
            threads.append(threading.current_thread().name)
            return super().send(envelope)

    delivery = Noting(NotingTransport())
    pipeline = Pipeline(
        Settings(), None, delivery, CaptureStore(), WarnOnce(logging.getLogger("t"))
    )
    waiting = [0]
    pipeline.waiting = lambda: waiting[0]
    try:
        for n in range(3):
            waiting[0] = n * 7
            pipeline(_capture(KeyError(n), **{"sentry.event_id": f"{n:032x}"}))
            assert delivery.flush(5)
        me = threading.current_thread().name
        assert seen == [(me, 0), (me, 7), (me, 14)]
        # The first: the server's speed unknown yet. Then here: it answers at once.
        assert threads == ["otel-sentry-bridge-sender", me, me]
    finally:
        delivery.shutdown(2)


def test_what_is_remembered_of_a_sent_error_holds_not_its_message(parts: Any) -> None:
    """probe 2026-12-05: the dedupe memory kept each signature whole, message included:
    400 errors with 5 MB messages left 3.8 GB after they were sent."""
    pipeline, _, transport = parts
    message = "x" * 200_000
    pipeline(_capture(**{"exception.type": "ValueError", "exception.message": message}))
    assert len(_events(pipeline, transport)) == 1
    remembered = repr(list(pipeline._sent))
    assert len(remembered) < 1_000


def test_a_batch_is_converted_first_then_sent_in_its_order(parts: Any) -> None:
    pipeline, _, transport = parts
    submitted: list[int] = []
    converted: list[int] = []
    submit, send = pipeline.delivery.submit, pipeline.send

    def noted_send(event: dict[str, Any]) -> bool:
        converted.append(len(submitted))
        return send(event)

    def noted_submit(data: bytes, category: str = "error", **kwargs: Any) -> bool:
        submitted.append(len(converted))
        return submit(data, category, **kwargs)

    pipeline.send = noted_send  # type: ignore[method-assign]
    pipeline.delivery.submit = noted_submit  # type: ignore[method-assign]
    items = [
        pipeline.shipment(_capture(KeyError(n), **{"sentry.event_id": f"{n:032x}"}))
        for n in range(4)
    ]
    pipeline.batch(items)
    assert converted == [0, 0, 0, 0]  # nothing sent while the batch converts
    assert submitted == [4, 4, 4, 4]
    events = _events(pipeline, transport)
    assert [e["event_id"] for e in events] == [f"{n:032x}" for n in range(4)]
    pipeline(_capture(KeyError(9), **{"sentry.event_id": "9" * 32}))  # one by one again
    assert len(_events(pipeline, transport)) == 5


def test_an_item_of_a_batch_that_fails_loses_only_itself(
    parts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, _, transport = parts
    items = [
        pipeline.shipment(_capture(KeyError(n), **{"sentry.event_id": f"{n:032x}"}))
        for n in range(3)
    ]
    build = pipeline_module.build_event

    def failing_for_one(view: Any, one: Any, *args: Any, **kwargs: Any) -> Any:
        if one.identity.capture_id == f"{1:032x}":
            raise RuntimeError("a bug of ours")
        return build(view, one, *args, **kwargs)

    monkeypatch.setattr(pipeline_module, "build_event", failing_for_one)
    pipeline.batch(items)
    assert [e["event_id"] for e in _events(pipeline, transport)] == [f"{0:032x}", f"{2:032x}"]
    assert pipeline.lost[("internal_sdk_error", "error")] == 1


def test_what_a_batch_made_is_sent_even_if_it_ends_early(parts: Any) -> None:
    pipeline, _, transport = parts
    items = [
        pipeline.shipment(_capture(KeyError(n), **{"sentry.event_id": f"{n:032x}"}))
        for n in range(2)
    ]
    convert = pipeline.convert

    class Stop(BaseException):  # what no handler of ours catches (a KeyboardInterrupt)
        pass

    def stopping_at_the_second(item: Any) -> None:
        if item is items[1]:
            raise Stop
        convert(item)

    pipeline.convert = stopping_at_the_second  # type: ignore[method-assign]
    with pytest.raises(Stop):
        pipeline.batch(items)
    assert [e["event_id"] for e in _events(pipeline, transport)] == [f"{0:032x}"]

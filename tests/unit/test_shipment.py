"""Frames of the helper pipe: a kind, a length, the payload; a broken stream is refused."""

from __future__ import annotations

import io

import pytest

from otel_sentry_bridge.capture.record import CaptureRecord, Mechanism
from otel_sentry_bridge.convert.model import EventView, SpanView
from otel_sentry_bridge.offload.codec import decode, shipment_frame
from otel_sentry_bridge.offload.helper import read_frame
from otel_sentry_bridge.offload.shipment import (
    FLUSH,
    HEADER,
    MAX_FRAME,
    Shipment,
    frame,
    parse_header,
)


def _shipment() -> Shipment:
    view = SpanView(
        trace_id=1,
        span_id=2,
        name="GET /",
        events=(EventView("exception", 5, {"exception.type": "ValueError"}),),
    )
    record = CaptureRecord("e" * 32, mechanism=Mechanism("django", handled=False))
    crumb = {"timestamp": 1.0, "message": "hello"}
    return Shipment(view, {record.event_id: record}, [crumb], [SpanView(0, 0, "SELECT")])


def test_a_shipment_frame_reads_back_as_the_same_shipment() -> None:
    data = shipment_frame(_shipment()) + frame(FLUSH, b"x" * 12)
    source = io.BytesIO(data)
    _, payload = read_frame(source) or (b"", b"")
    assert decode(payload) == _shipment()
    assert read_frame(source) == (FLUSH, b"x" * 12)
    assert read_frame(source) is None  # the end of the pipe


def test_a_frame_cut_short_is_the_end_of_the_stream() -> None:
    data = shipment_frame(_shipment())
    assert read_frame(io.BytesIO(data[:-1])) is None
    assert read_frame(io.BytesIO(data[:3])) is None


@pytest.mark.parametrize(
    "header", [HEADER.pack(b"Z", 10), HEADER.pack(b"S", MAX_FRAME + 1)], ids=["kind", "length"]
)
def test_a_header_that_is_not_ours_is_refused(header: bytes) -> None:
    with pytest.raises(ValueError):
        parse_header(header)

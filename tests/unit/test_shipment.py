"""Frames of the helper pipe: a kind, a length, the payload; a broken stream is refused."""

from __future__ import annotations

import os
from typing import Any

import pytest

from otel_sentry_bridge.capture.record import CaptureRecord, Mechanism
from otel_sentry_bridge.convert.model import EventView, SpanView
from otel_sentry_bridge.offload import helper
from otel_sentry_bridge.offload.codec import decode, shipment_frame
from otel_sentry_bridge.offload.helper import Frames
from otel_sentry_bridge.offload.shipment import (
    FLUSH,
    HEADER,
    MAX_FRAME,
    SHIPMENT,
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


def _pipe(data: bytes) -> Frames:
    """The frames of a real pipe holding ``data``, its writing end closed."""
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    return Frames(read, gather_s=0.0)


def test_a_shipment_frame_reads_back_as_the_same_shipment() -> None:
    source = _pipe(shipment_frame(_shipment()) + frame(FLUSH, b"x" * 12))
    _, payload = source.next() or (b"", b"")
    assert decode(payload) == _shipment()
    assert source.next() == (FLUSH, b"x" * 12)
    assert source.next() is None  # the end of the pipe
    assert source.next() is None


def test_a_frame_cut_short_is_the_end_of_the_stream() -> None:
    data = shipment_frame(_shipment())
    assert _pipe(data[:-1]).next() is None
    assert _pipe(data[:3]).next() is None


def test_frames_written_meanwhile_come_in_one_read(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    real_read = os.read

    def counted(fd: int, size: int) -> Any:
        reads.append(fd)
        return real_read(fd, size)

    monkeypatch.setattr(helper.os, "read", counted)
    source = _pipe(b"".join(shipment_frame(_shipment()) for _ in range(50)))
    assert all(source.next() is not None for _ in range(50))
    assert source.next() is None
    assert len(reads) == 2  # the frames, then the end of the pipe


def test_a_stream_that_is_not_frames_is_refused() -> None:
    with pytest.raises(ValueError):
        _pipe(b"GET / HTTP/1.1\r\n").next()


@pytest.mark.parametrize(
    "header", [HEADER.pack(b"Z", 10), HEADER.pack(b"S", MAX_FRAME + 1)], ids=["kind", "length"]
)
def test_a_header_that_is_not_ours_is_refused(header: bytes) -> None:
    with pytest.raises(ValueError):
        parse_header(header)


def test_more_takes_only_whole_frames_of_its_kind_already_read() -> None:
    data = shipment_frame(_shipment())
    source = _pipe(data * 2 + frame(FLUSH, b"x" * 12) + data)
    assert source.next() is not None  # reads the pipe: all of it is there now
    assert source.more(SHIPMENT) is not None
    assert source.more(SHIPMENT) is None  # a flush comes first
    assert source.more(FLUSH) == b"x" * 12
    assert source.more(SHIPMENT) is not None
    assert source.more(SHIPMENT) is None  # nothing more read
    cut = _pipe(data + data[:-1])
    assert cut.next() is not None
    assert cut.more(SHIPMENT) is None  # not whole

"""What the conversion needs of one span, read where it is handed over, and its wire frames.

A :class:`Shipment` is plain data (views, capture records, breadcrumbs): the worker thread
converts it, or the parent encodes it (:mod:`.codec`) into a frame for the helper process.
Frames are a kind byte and a 4-byte length, then the payload; the settings go pickled (the
helper's own package types), shipments through the codec.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..capture.record import CaptureRecord
from ..convert.model import SpanView

__all__ = [
    "CONFIG",
    "FLUSH",
    "FLUSH_BODY",
    "HEADER",
    "MAX_FRAME",
    "READY",
    "SHIPMENT",
    "Shipment",
    "TransactionShipment",
    "frame",
    "parse_header",
]

SHIPMENT = b"S"  # a Shipment or TransactionShipment (codec.encode)
CONFIG = b"C"  # the first frame: the pickled Settings the helper runs with
FLUSH = b"F"  # a flush request: token (8 bytes) and timeout in ms (4 bytes)
FLUSH_BODY = struct.Struct("!QI")
READY = b"ready\n"  # the helper's first answer: its bridge is made, shipments are welcome
HEADER = struct.Struct("!cI")
MAX_FRAME = 64 * 1024 * 1024  # far above any event (1 MiB): a larger length is a broken pipe


@dataclass(slots=True)
class Shipment:
    """One span (or capture outside a span) with what our hooks recorded for it."""

    view: SpanView
    records: dict[str, CaptureRecord] = field(default_factory=dict)
    # The trace's log breadcrumbs up to the span's last event (None: the trace has none here)
    log_crumbs: Sequence[Mapping[str, Any]] | None = None
    # The trace's outgoing calls that ended by then, for span breadcrumbs
    span_crumbs: list[SpanView] = field(default_factory=list)


@dataclass(slots=True)
class TransactionShipment:
    """A transaction's spans as views: the local root (with its details) and its children."""

    root: SpanView
    spans: tuple[SpanView, ...] = ()
    dropped: int = 0  # spans left out by a bound


def frame(kind: bytes, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def parse_header(data: bytes) -> tuple[bytes, int]:
    """Kind and payload length of a frame header; ValueError for a broken stream."""
    kind, length = HEADER.unpack(data)
    if kind not in (SHIPMENT, CONFIG, FLUSH) or length > MAX_FRAME:
        raise ValueError("not a frame of the bridge's helper pipe")
    return kind, length

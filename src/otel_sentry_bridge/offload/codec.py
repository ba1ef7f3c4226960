"""Shipments to bytes and back, for the helper's pipe: plain tuples through ``marshal``.

``marshal`` writes only Python's own data types (no classes, no code run at loading), so what
an application put in a record (a model instance in a log record's ``extra=``, a function, a
``datetime``) cannot be written: :func:`encode` raises ``ValueError`` and the caller converts
that error in its own process, rather than the helper, which does not import the
application, failing to read it. It is also three times cheaper than pickle here, on the
thread that ends the span. Only a parent writes to its own helper: nothing foreign is read.
"""

from __future__ import annotations

import marshal
from collections.abc import Mapping, Sequence
from typing import Any

from ..capture.record import CaptureRecord, Details, LogEntry, Mechanism
from ..convert.model import EventView, SpanView
from .shipment import MAX_FRAME, SHIPMENT, Shipment, TransactionShipment, frame

__all__ = [
    "decode",
    "encode",
    "error_parcel",
    "plain",
    "plain_record",
    "plain_view",
    "shipment_frame",
    "unplain",
]

_ERRORS = 0  # the first item of an encoded shipment: what follows
_TRANSACTION = 1
_VERSION = 4  # marshal's format: the interpreter that reads is the one that wrote


def encode(shipment: Shipment | TransactionShipment) -> bytes:
    """ValueError (marshal's) for anything but plain data."""
    return marshal.dumps(plain(shipment), _VERSION)


def plain(shipment: Shipment | TransactionShipment) -> tuple[Any, ...]:
    """``shipment`` as the plain tuples :func:`encode` writes (its *parcel*)."""
    if isinstance(shipment, TransactionShipment):
        return (
            _TRANSACTION,
            plain_view(shipment.root),
            tuple(plain_view(span) for span in shipment.spans),
            shipment.dropped,
        )
    return error_parcel(
        plain_view(shipment.view),
        {key: plain_record(record) for key, record in shipment.records.items()},
        shipment.log_crumbs,
        [plain_view(crumb) for crumb in shipment.span_crumbs],
    )


def error_parcel(
    view: tuple[Any, ...],
    records: dict[str, tuple[Any, ...]],
    log_crumbs: Sequence[Mapping[str, Any]] | None,
    span_crumbs: list[tuple[Any, ...]],
) -> tuple[Any, ...]:
    """The parcel of a :class:`Shipment` from its parts, each already plain (a view from
    :func:`plain_view` or ``convert.spans.plain_span_view``, records from
    :func:`plain_record`)."""
    return (
        _ERRORS,
        view,
        records,
        None if log_crumbs is None else [dict(c) for c in log_crumbs],
        span_crumbs,
    )


def shipment_frame(shipment: Shipment | TransactionShipment | tuple[Any, ...]) -> bytes:
    """The frame of ``shipment`` (or of a parcel: :func:`plain`); ValueError for anything but
    plain data, or past ``MAX_FRAME``."""
    data = shipment if isinstance(shipment, tuple) else plain(shipment)
    payload = marshal.dumps(data, _VERSION)
    if len(payload) > MAX_FRAME:
        raise ValueError("shipment larger than a frame may be")
    return frame(SHIPMENT, payload)


def decode(payload: bytes) -> Shipment | TransactionShipment:
    """ValueError (or what a broken payload raises: EOFError, TypeError) for bytes that are
    not an encoded shipment."""
    return unplain(marshal.loads(payload))


def unplain(data: tuple[Any, ...]) -> Shipment | TransactionShipment:
    """The shipment of a parcel (:func:`plain`)."""
    if data[0] == _TRANSACTION:
        _, root, spans, dropped = data
        return TransactionShipment(_unview(root), tuple(map(_unview, spans)), dropped)
    if data[0] != _ERRORS:
        raise ValueError("not a shipment")
    _, view, records, log_crumbs, span_crumbs = data
    return Shipment(
        _unview(view),
        {key: _unrecord(record) for key, record in records.items()},
        log_crumbs,
        [_unview(crumb) for crumb in span_crumbs],
    )


def plain_view(view: SpanView) -> tuple[Any, ...]:
    """A view as a plain tuple, in :class:`SpanView`'s own field order (its mappings as
    plain dicts, its events as plain tuples)."""
    return (
        *view[:7],
        _dict(view.attributes),
        _dict(view.resource),
        tuple((e.name, e.timestamp_ns, _dict(e.attributes)) for e in view.events),
        *view[10:],
    )


def _unview(data: tuple[Any, ...]) -> SpanView:
    if len(data) != len(SpanView._fields):
        raise ValueError("not a span view")
    return SpanView._make(
        (*data[:9], tuple(EventView._make(event) for event in data[9]), *data[10:])
    )


def _dict(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict as it is (marshal writes it; nothing here changes it), else a copy."""
    return mapping if type(mapping) is dict else dict(mapping)


def _plain(mapping: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if mapping is None else _dict(mapping)


def plain_record(record: CaptureRecord) -> tuple[Any, ...]:
    entry = record.logentry
    details = record.details
    return (
        record.event_id,
        (record.mechanism.type, record.mechanism.handled),
        record.level,
        record.logger,
        None if entry is None else (entry.template, tuple(entry.params), entry.formatted),
        None
        if details is None
        else (
            _plain(details.request),
            _plain(details.user),
            details.transaction,
            dict(details.tags),
            dict(details.contexts),
            dict(details.extra),
            details.fingerprint,
        ),
        tuple(dict(variables) for variables in record.frame_vars),
        None if record.breadcrumbs is None else tuple(dict(c) for c in record.breadcrumbs),
        record.send,
        _plain(record.template_frame),
    )


def _unrecord(data: tuple[Any, ...]) -> CaptureRecord:
    event_id, mechanism, level, logger, entry, details, frame_vars = data[:7]
    breadcrumbs, send, template_frame = data[7:]
    return CaptureRecord(
        event_id,
        mechanism=Mechanism(*mechanism),
        level=level,
        logger=logger,
        logentry=None if entry is None else LogEntry(*entry),
        details=None if details is None else Details(*details),
        frame_vars=frame_vars,
        breadcrumbs=breadcrumbs,
        send=send,
        template_frame=template_frame,
    )

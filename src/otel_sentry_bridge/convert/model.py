"""Plain, immutable inputs to the conversion: a span and its events, without the OTel SDK.

The worker builds these from ``ReadableSpan`` (see :mod:`otel_sentry_bridge.convert.spans`), direct
captures build them without any span, and tests build them by hand.

Named tuples, not frozen dataclasses: a span view is made on the thread that ends the span
when it goes to the helper process, one per outgoing call of the trace for its breadcrumbs
(a request with 20 queries makes 20), and a frozen dataclass costs 2.5 µs to make against
0.7. Their mappings are read-only (``Mapping``); the defaults are empty read-only ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = ["EventView", "SpanView"]

Attributes = Mapping[str, Any]
_NONE: Attributes = MappingProxyType({})


class EventView(NamedTuple):
    """One span event: ``exception``, a log event, or anything else."""

    name: str
    timestamp_ns: int
    attributes: Attributes = _NONE


class SpanView(NamedTuple):
    """What the conversion needs of a span. Ids are the integers OTel uses."""

    trace_id: int
    span_id: int
    name: str
    parent_span_id: int | None = None
    kind: str = "INTERNAL"  # SpanKind name: SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL
    status_code: str = "UNSET"  # StatusCode name: UNSET, OK, ERROR
    status_description: str | None = None
    attributes: Attributes = _NONE
    resource: Attributes = _NONE
    events: tuple[EventView, ...] = ()
    start_time_ns: int | None = None
    end_time_ns: int | None = None
    scope_name: str | None = None

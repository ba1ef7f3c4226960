"""Plain, immutable inputs to the conversion: a span and its events, without the OTel SDK.

The worker builds these from ``ReadableSpan`` (see :mod:`otel_sentry_bridge.convert.spans`), direct
captures build them without any span, and tests build them by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EventView", "SpanView"]

Attributes = Mapping[str, Any]


@dataclass(frozen=True)
class EventView:
    """One span event: ``exception``, a log event, or anything else."""

    name: str
    timestamp_ns: int
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True)
class SpanView:
    """What the conversion needs of a span. Ids are the integers OTel uses."""

    trace_id: int
    span_id: int
    name: str
    parent_span_id: int | None = None
    kind: str = "INTERNAL"  # SpanKind name: SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL
    status_code: str = "UNSET"  # StatusCode name: UNSET, OK, ERROR
    status_description: str | None = None
    attributes: Attributes = field(default_factory=dict)
    resource: Attributes = field(default_factory=dict)
    events: tuple[EventView, ...] = ()
    start_time_ns: int | None = None
    end_time_ns: int | None = None
    scope_name: str | None = None

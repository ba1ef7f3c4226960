"""Errors recorded straight on spans (no Django), for the delivery and flood figures."""

from __future__ import annotations

from typing import Any


class InventoryError(Exception):
    pass


def _reserve(sku: int) -> None:
    raise LookupError(f"sku {sku} out of stock")


def _pick(sku: int) -> None:
    try:
        _reserve(sku)
    except LookupError as exc:
        raise InventoryError(f"cannot pick sku {sku}") from exc


def _ship(sku: int) -> None:
    _pick(sku)


def bridge_tracer(processor: Any) -> Any:
    """A tracer whose provider feeds only ``processor`` (no exporter)."""
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    return provider.get_tracer("benchmarks")


def record_errors(tracer: Any, count: int, start: int = 0) -> None:
    """``count`` spans, each in its own trace, each ending with a recorded chained exception."""
    for index in range(start, start + count):
        with tracer.start_as_current_span("ship") as span:
            try:
                _ship(index)
            except InventoryError as exc:
                span.record_exception(exc)

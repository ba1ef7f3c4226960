"""Worker-side cost per event: convert + scrub + serialise + compress, in µs.

Real finished spans (SDK TracerProvider + InMemorySpanExporter), each in its own trace and
holding a recorded chained exception from a real traceback, go through ``processor.pipeline``
(the worker's whole handling of one span, gzip included) with a transport that answers 200.
``force_flush`` then waits for whatever a sender thread still holds, so the figure is the same
whether the pipeline sends inline or hands over to a sender thread.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from typing import Any

from .common import emit


class KeepingTransport:
    """Answers 200 and keeps the bodies (already gzipped by the worker), to be measured after
    the timed region."""

    def __init__(self) -> None:
        from otel_sentry_bridge.deliver.http import SendResult

        self._ok = SendResult(status=200)
        self.bodies: list[bytes] = []

    def send(self, envelope: bytes) -> Any:
        self.bodies.append(envelope)
        return self._ok

    def close(self) -> None:
        return None


def compression_figures(bodies: list[bytes]) -> dict[str, float]:
    """Sizes before/after gzip and the time of the worker's gzip step alone, per envelope."""
    from otel_sentry_bridge.deliver.compress import GZIP_MAGIC, gzip_body

    raw = [gzip.decompress(b) if b[:2] == GZIP_MAGIC else b for b in bodies]
    start = time.perf_counter_ns()
    for data in raw:
        gzip_body(data)
    elapsed = time.perf_counter_ns() - start
    return {
        "compress_us": elapsed / len(raw) / 1000.0,
        "envelope_bytes": sum(map(len, raw)) / len(raw),
        "gzip_bytes": sum(map(len, bodies)) / len(bodies),
    }


class PaymentError(Exception):
    pass


def _gateway(order_id: int) -> None:
    raise ConnectionError(f"gateway refused order {order_id}")


def _charge(order_id: int) -> None:
    _gateway(order_id)


def _pay(order_id: int) -> None:
    try:
        _charge(order_id)
    except ConnectionError as exc:
        raise PaymentError(f"payment failed for order {order_id}") from exc


def _checkout(order_id: int) -> None:
    _pay(order_id)


def make_spans(count: int) -> list[Any]:
    """``count`` finished server spans, one trace each (no cross-span dedupe)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("benchmarks")
    attributes = {
        "http.method": "POST",
        "http.route": "orders/<int:order_id>/pay/",
        "http.target": "/orders/42/pay/?coupon=x",
        "http.scheme": "http",
        "http.server_name": "bench.local",
        "http.status_code": 500,
        "net.peer.ip": "127.0.0.1",
        "http.user_agent": "bench/1.0",
    }
    for index in range(count):
        with tracer.start_as_current_span(
            "POST orders/<int:order_id>/pay/", kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            try:
                _checkout(index)
            except PaymentError as exc:
                span.record_exception(exc)
    return list(exporter.get_finished_spans())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--batches", type=int, default=7)
    args = parser.parse_args()
    from otel_sentry_bridge import SentrySpanProcessor

    transport = KeepingTransport()
    processor = SentrySpanProcessor(
        dsn="http://benchkey@127.0.0.1:1/1",
        transport=transport,
        queue_size=args.batch * 2,
        shutdown_timeout=1,
    )
    pipeline = processor.pipeline
    for span in make_spans(50):  # warm-up: imports, source cache, first-call paths
        pipeline(span)
    processor.force_flush(30_000)
    per_event, pipeline_only = [], []
    for _ in range(args.batches):
        spans = make_spans(args.batch)
        transport.bodies.clear()
        start = time.perf_counter_ns()
        for span in spans:
            pipeline(span)
        handed_over = time.perf_counter_ns()
        processor.force_flush(60_000)
        end = time.perf_counter_ns()
        if len(transport.bodies) != args.batch:
            raise SystemExit(f"expected {args.batch} envelopes, got {len(transport.bodies)}")
        per_event.append((end - start) / args.batch / 1000.0)
        pipeline_only.append((handed_over - start) / args.batch / 1000.0)
    processor.shutdown()
    emit(
        {
            "worker_us_per_event": statistics.median(per_event),
            "worker_us_per_event_batches": per_event,
            "pipeline_call_us": statistics.median(pipeline_only),
            **compression_figures(transport.bodies),
            "batch": args.batch,
            "batches": args.batches,
        }
    )


if __name__ == "__main__":
    main()

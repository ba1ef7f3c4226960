"""The log-record path (issue 16): what an OTel log record carrying an exception costs.

- ``capture_us``: on the emitting thread, ``Logger.emit(..., exception=e)`` with the bridge's
  ``SentryLogRecordProcessor`` on the SDK ``LoggerProvider`` minus the same with a processor
  that does nothing (the check, the capture record, the queue append), median of runs, with
  the worker's share dropped; ``emit_us``: the same while the worker converts and sends (what
  the background work costs the emitting thread through the GIL);
- ``worker_us_per_event``: CPU of the bridge's threads (worker and sender), from the queue to
  an envelope handed to a transport that answers 200, per record (thread CPU time: the
  wall time after the last emit says nothing when the worker kept up meanwhile).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from .common import emit
from .sustained import threads_cpu_s


class PaymentError(Exception):
    pass


def _charge(order: int) -> None:
    raise PaymentError(f"declined {order}")


class _Nothing:
    def on_emit(self, log_record: Any) -> None:
        return None

    def emit(self, log_data: Any) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _bridge_threads_cpu_s() -> float:
    """CPU seconds so far of this package's threads (their names start with its name)."""
    return sum(
        seconds
        for name, seconds in threads_cpu_s().items()
        if name.startswith("otel-sentry-bridge")
    )


def _emit_all(logger: Any, count: int, severity: Any) -> float:
    started = time.perf_counter()
    for order in range(count):
        try:
            _charge(order)
        except PaymentError as exc:
            logger.emit(severity_number=severity, body="payment failed", exception=exc)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from opentelemetry._logs import SeverityNumber
    from opentelemetry.sdk._logs import LoggerProvider

    from otel_sentry_bridge import SentrySpanProcessor
    from otel_sentry_bridge.capture.log_records import SentryLogRecordProcessor

    from .worker_cost import KeepingTransport

    transport = KeepingTransport()
    processor = SentrySpanProcessor(
        dsn="http://benchkey@127.0.0.1:1/1", transport=transport, queue_size=args.records * 2
    )
    # The baseline has a processor too (one that does nothing): the SDK does part of its work
    # (the exception's attributes) only when some processor will see the record.
    plain = LoggerProvider()
    plain.add_log_record_processor(_Nothing())
    bare = plain.get_logger("bench")
    with_bridge = LoggerProvider()
    with_bridge.add_log_record_processor(SentryLogRecordProcessor())
    logger = with_bridge.get_logger("bench")
    error = SeverityNumber.ERROR
    _emit_all(logger, 50, error)  # warm-up
    processor.force_flush(30_000)
    emit_us, worker_us = [], []
    for _ in range(args.rounds):
        base = _emit_all(bare, args.records, error)
        transport.bodies.clear()
        before = _bridge_threads_cpu_s()
        captured = _emit_all(logger, args.records, error)
        processor.force_flush(60_000)
        if len(transport.bodies) != args.records:
            raise SystemExit(f"expected {args.records} envelopes, got {len(transport.bodies)}")
        emit_us.append((captured - base) / args.records * 1e6)
        worker_us.append((_bridge_threads_cpu_s() - before) / args.records * 1e6)
    # The emitting thread's own share: the same with the hand-over to the worker dropped (as
    # the C-capture configuration of wsgi_bench), so no background work runs meanwhile.
    processor.bridge._worker.submit = lambda item: True  # type: ignore[method-assign]
    alone = []
    for _ in range(args.rounds):
        base = _emit_all(bare, args.records, error)
        alone.append((_emit_all(logger, args.records, error) - base) / args.records * 1e6)
    processor.shutdown()
    emit(
        {
            "log_record_capture_us": statistics.median(alone),
            "log_record_emit_us": min(emit_us),
            "log_record_emit_us_rounds": emit_us,
            "log_record_worker_us_per_event": statistics.median(worker_us),
            "records": args.records,
        }
    )


if __name__ == "__main__":
    main()

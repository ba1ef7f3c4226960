"""Sustained delivery rate: N errors recorded as fast as possible, sent by the bridge over its
real HTTP transport to the loopback receiver; events received per second until all arrived.

The queue is sized to N so that the figure is the sender's rate, not the queue's capacity.
"""

from __future__ import annotations

import argparse
import time

from .common import dsn, emit, receiver_counts
from .errors import bridge_tracer, record_errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--deadline", type=float, default=120.0)
    args = parser.parse_args()
    from otel_sentry_bridge import SentrySpanProcessor

    processor = SentrySpanProcessor(dsn=dsn(args.port), queue_size=args.events + 100)
    tracer = bridge_tracer(processor)
    record_errors(tracer, 20)  # warm-up: thread start, connection, source cache
    processor.force_flush(30_000)
    before = receiver_counts(args.port)["events"]
    start = time.perf_counter()
    record_errors(tracer, args.events, start=20)
    recorded = time.perf_counter() - start
    received = 0
    deadline = start + args.deadline
    while time.perf_counter() < deadline:
        received = receiver_counts(args.port)["events"] - before
        if received >= args.events:
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    lost = {f"{r}/{c}": n for (r, c), n in processor.pipeline.lost.items()}
    processor.shutdown()
    emit(
        {
            "events": args.events,
            "received": received,
            "seconds": elapsed,
            "events_per_s": received / elapsed,
            "record_us_per_error": recorded / args.events * 1e6,
            "lost": lost,
        }
    )


if __name__ == "__main__":
    main()

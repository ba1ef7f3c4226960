"""Memory while the server is down: N errors captured with nothing listening on the DSN's
port. RSS after a warm-up vs after the flood (both after ``gc.collect()``), in MB. With the
default settings a flood starts the bridge's helper process (``helper_process`` "auto"):
its RSS is counted beside the process's own (``helper_rss_*``, ``total_rss_growth_mb``)."""

from __future__ import annotations

import argparse
import gc
import socket
import time

from .common import dsn, emit, peak_rss_mb, process_rss_mb, rss_mb
from .errors import bridge_tracer, record_errors


def helper_rss_mb(processor: object) -> float:
    """RSS of the bridge's helper process, if one runs (0 if none)."""
    link = getattr(getattr(processor, "bridge", None), "link", None)
    pid = getattr(link, "helper_pid", None)
    return (process_rss_mb(pid) if pid is not None else None) or 0.0


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--errors", type=int, default=100_000)
    args = parser.parse_args()
    from otel_sentry_bridge import SentrySpanProcessor

    processor = SentrySpanProcessor(dsn=dsn(closed_port()), shutdown_timeout=0.5)
    tracer = bridge_tracer(processor)
    record_errors(tracer, 200)  # warm-up: thread start, first failures, source cache
    time.sleep(0.2)
    gc.collect()
    before = rss_mb()
    helper_before = helper_rss_mb(processor)
    start = time.perf_counter()
    record_errors(tracer, args.errors, start=200)
    seconds = time.perf_counter() - start
    gc.collect()
    after = rss_mb()
    helper_after = helper_rss_mb(processor)
    peak = peak_rss_mb()
    lost = {f"{r}/{c}": n for (r, c), n in processor.pipeline.lost.items()}
    processor.shutdown()
    emit(
        {
            "errors": args.errors,
            "rss_before_mb": before,
            "rss_after_mb": after,
            "flood_rss_growth_mb": after - before,
            "peak_rss_growth_mb": None if peak is None else peak - before,
            "helper_rss_before_mb": helper_before,
            "helper_rss_after_mb": helper_after,
            # Both processes, the helper's own start included if it started in the flood.
            "total_rss_growth_mb": after + helper_after - before - helper_before,
            "capture_us_per_error": seconds / args.errors * 1e6,
            "lost": lost,
            "sent": processor.pipeline.sent_count,
        }
    )


if __name__ == "__main__":
    main()

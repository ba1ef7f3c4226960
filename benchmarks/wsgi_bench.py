"""One configuration in one process: per-request latency of the three endpoints, or a burst.

``python -m benchmarks.wsgi_bench CONFIG --port P [--requests N --warmup W | --burst N]``
prints one JSON line. The WSGI handler is called directly (the Django test client would bypass
sentry-sdk's WSGI wrapper). GC stays enabled.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from .common import emit, receiver_counts, summarise_ns
from .configs import CONFIGS, Setup, build
from .djangoapp import ENDPOINTS, environ


def make_call(handler: Any) -> Callable[[str], int]:
    """Returns call(endpoint) -> duration in ns of one full WSGI request."""
    perf = time.perf_counter_ns
    status: list[str] = []

    def start_response(code: str, headers: Any, exc_info: Any = None) -> Any:
        status.append(code)
        return lambda data: None

    def call(endpoint: str) -> int:
        path, expected = ENDPOINTS[endpoint]
        env = environ(path)
        status.clear()
        start = perf()
        result = handler(env, start_response)
        try:
            for _chunk in result:
                pass
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        elapsed = perf() - start
        if not status or not status[0].startswith(expected):
            raise SystemExit(f"{path}: expected HTTP {expected}, got {status[:1]}")
        return elapsed

    return call


def latency(setup: Setup, port: int, requests: int, warmup: int) -> dict[str, Any]:
    """Each endpoint in its own block (warm-up, then ``requests`` timed calls), with the
    background queues drained after every call, outside the timed region. Interleaving the
    endpoints would charge the 200 view for the caches the worker evicted after an error."""
    call = make_call(setup.handler)
    for _ in range(warmup):
        for endpoint in ENDPOINTS:
            call(endpoint)
            setup.settle(endpoint)
    before = receiver_counts(port)["events"]
    summaries = {}
    for endpoint in ENDPOINTS:
        for _ in range(max(1, warmup // 4)):
            call(endpoint)
            setup.settle(endpoint)
        values = []
        for _ in range(requests):
            values.append(call(endpoint))
            setup.settle(endpoint)
        summaries[endpoint] = summarise_ns(values)
    setup.flush(30.0)
    received = receiver_counts(port)["events"] - before
    return {
        "endpoints": summaries,
        "events_received": received,
        # boom and logerr calls after the first warm-up, one error each
        "errors_made": 2 * (requests + max(1, warmup // 4)),
    }


def burst(setup: Setup, port: int, count: int) -> dict[str, Any]:
    call = make_call(setup.handler)
    for _ in range(20):  # warm the code paths, then let everything drain
        call("boom")
    setup.flush(30.0)
    before = receiver_counts(port)["events"]
    start = time.perf_counter()
    for _ in range(count):
        call("boom")
    requests_s = time.perf_counter() - start
    flushed = setup.flush(60.0)
    total_s = time.perf_counter() - start
    received = receiver_counts(port)["events"] - before
    return {
        "burst": count,
        "received": received,
        "delivered_fraction": received / count,
        "requests_seconds": requests_s,
        "until_flushed_seconds": total_s,
        "flushed": flushed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", choices=CONFIGS)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--burst", type=int, default=0)
    args = parser.parse_args()
    setup = build(args.config, args.port)
    if args.burst:
        result = burst(setup, args.port, args.burst)
    else:
        result = latency(setup, args.port, args.requests, args.warmup)
    emit({"config": args.config, **result, **setup.info()})


if __name__ == "__main__":
    main()

"""What a piece of background activity between two requests costs the next request.

``python -m benchmarks.after_effect [--requests N] [--rounds R]`` runs configuration B (Django +
OpenTelemetry, no bridge) with one of these between every two timed requests, untimed, each in
its own process, alternated over rounds, and prints the median per-request time per activity:

- ``none``: nothing (B itself);
- ``handoff``: a queue round trip to an idle thread;
- ``get``: one HTTP GET to the loopback receiver (keep-alive);
- ``evict``: writing 8 MB (CPU caches evicted);
- ``typecache``: CPython's type attribute cache cleared.

A diagnostic for the latency figures of ``make bench``: it shows how much of C - B any
delivery would cost, whatever the bridge does (see the README's performance section).
"""

from __future__ import annotations

import argparse
import http.client
import queue
import statistics
import sys
import threading
from collections.abc import Callable
from typing import Any

from .common import emit

ACTIVITIES = ("none", "handoff", "get", "evict", "typecache")


def _activity(name: str, port: int) -> Callable[[], None]:
    if name == "handoff":
        there: queue.SimpleQueue[int] = queue.SimpleQueue()
        back: queue.SimpleQueue[int] = queue.SimpleQueue()

        def echo() -> None:
            while True:
                back.put(there.get())

        def handoff() -> None:
            there.put(1)
            back.get(timeout=10)

        threading.Thread(target=echo, daemon=True).start()
        return handoff
    if name == "get":
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def get() -> None:
            conn.request("GET", "/count")
            conn.getresponse().read()

        return get
    if name == "evict":
        size = 8 * 1024 * 1024

        def evict() -> None:
            buffer = bytearray(size)
            buffer[::64] = b"\1" * (size // 64)

        return evict
    if name == "typecache":
        return sys._clear_type_cache
    return lambda: None


def measure(activity: str, port: int, requests: int) -> dict[str, Any]:
    from .configs import build
    from .djangoapp import ENDPOINTS
    from .wsgi_bench import make_call

    setup = build("B", port)
    call = make_call(setup.handler)
    between = _activity(activity, port)
    medians = {}
    for endpoint in ENDPOINTS:
        samples = []
        for index in range(requests + requests // 8):
            elapsed = call(endpoint)
            between()
            if index >= requests // 8:  # the first eighth warms up
                samples.append(elapsed)
        medians[endpoint] = statistics.median(samples) / 1000.0
    return {"activity": activity, "median_us": medians}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--activity", choices=ACTIVITIES)
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.activity is not None:  # one measurement, in this process
        emit(measure(args.activity, args.port, args.requests))
        return
    from .__main__ import Receiver, run

    results: dict[str, list[dict[str, float]]] = {a: [] for a in ACTIVITIES}
    with Receiver() as receiver:
        for _ in range(args.rounds):
            for activity in ACTIVITIES:
                step = run(
                    "after_effect",
                    "--activity",
                    activity,
                    "--port",
                    receiver.port,
                    "--requests",
                    args.requests,
                )
                results[activity].append(step["median_us"])
    print("median µs per request (median over rounds), and the added µs against 'none':")
    base = {e: statistics.median(r[e] for r in results["none"]) for e in results["none"][0]}
    for activity, rounds in results.items():
        cells = []
        for endpoint, value in base.items():
            median = statistics.median(r[endpoint] for r in rounds)
            cells.append(f"{endpoint} {median:6.0f} ({median - value:+5.0f})")
        print(f"  {activity:<10} " + "   ".join(cells))
    emit({"after_effect": results})


if __name__ == "__main__":
    main()

"""Sustained traffic in one process: the three endpoints back to back, interleaved in blocks,
with no drain between requests, so the background work of earlier errors runs while later
requests are served (as on a real server). Also the total CPU of the process (every thread)
per error.

``python -m benchmarks.sustained CONFIG --port P [--block 100 --blocks 10 --warmup 2 --gc]``
prints one JSON line: per endpoint mean/p50/p99 wall time of a request, and
``cpu_s`` (``time.process_time``: all threads of this process, plus any child process) from
the first timed request until every error made was delivered (``flush``). ``--gc`` adds
``gc``: the garbage collector's pauses by the endpoint being served, per generation
[collections, ms]. (A full collection takes ~12 ms here, but comes about once in 6,000
requests: a run of the default size mostly has none.)
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from typing import Any

from .common import emit, receiver_counts, summarise_ns
from .configs import CONFIGS, ERROR_ENDPOINTS, build
from .djangoapp import ENDPOINTS
from .wsgi_bench import make_call


def _stat(path: str) -> tuple[str, float] | None:
    """(parent pid, CPU seconds: utime + stime) of a /proc ``stat`` file; None if unreadable."""
    try:
        with open(path, encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[1], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    """CPU of this process's child processes that are still running (a helper process, if a
    configuration has one), read from /proc; ended and waited-for children come from
    ``os.times``."""
    total = 0.0
    me = str(os.getpid())
    try:
        for pid in os.listdir("/proc"):
            stat = _stat(f"/proc/{pid}/stat") if pid.isdigit() else None
            if stat is not None and stat[0] == me:
                total += stat[1]
    except OSError:
        pass
    times = os.times()
    return total + times.children_user + times.children_system


def threads_cpu_s() -> dict[str, float]:
    """CPU seconds of each live thread of this process so far, by thread name (Linux)."""
    import threading

    out: dict[str, float] = {}
    for thread in threading.enumerate():
        stat = _stat(f"/proc/self/task/{thread.native_id}/stat")
        if stat is None:
            continue
        name = thread.name.split("-")[0] if thread.name.startswith("Thread-") else thread.name
        out[name] = out.get(name, 0.0) + stat[1]
    return out


def cpu_now() -> float:
    return time.process_time() + _children_cpu_s()


class GcShare:
    """The garbage collector's pauses, by the endpoint being served when each began: per
    endpoint and generation, [collections, milliseconds]. A ``gc.callbacks`` entry."""

    def __init__(self) -> None:
        self.endpoint = "-"
        self.by_endpoint: dict[str, dict[int, list[float]]] = {}
        self._start = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter_ns()
            return
        generations = self.by_endpoint.setdefault(self.endpoint, {})
        entry = generations.setdefault(info["generation"], [0, 0.0])
        entry[0] += 1
        entry[1] += (time.perf_counter_ns() - self._start) / 1e6


def sustained(
    config: str,
    port: int,
    block: int,
    blocks: int,
    warmup: int,
    pause_s: float = 0.0,
    gc_share: GcShare | None = None,
) -> dict[str, Any]:
    setup = build(config, port)
    call = make_call(setup.handler)
    for _ in range(warmup):
        for endpoint in ENDPOINTS:
            for _ in range(block):
                call(endpoint)
    setup.flush(60.0)
    before = receiver_counts(port)["events"] if config != "B" else 0
    samples: dict[str, list[int]] = {endpoint: [] for endpoint in ENDPOINTS}
    if gc_share is not None:
        gc.callbacks.append(gc_share)
    threads_start = threads_cpu_s()
    cpu_start = cpu_now()
    wall_start = time.perf_counter()
    for _ in range(blocks):
        for endpoint in ENDPOINTS:
            values = samples[endpoint]
            if gc_share is not None:
                gc_share.endpoint = endpoint
            for _ in range(block):
                values.append(call(endpoint))
                if pause_s:
                    time.sleep(pause_s)  # a server waiting for its next request (GIL free)
    requests_s = time.perf_counter() - wall_start
    if gc_share is not None:
        gc.callbacks.remove(gc_share)
    flushed = setup.flush(120.0)
    cpu_s = cpu_now() - cpu_start
    threads = {
        name: round(value - threads_start.get(name, 0.0), 3)
        for name, value in threads_cpu_s().items()
    }
    wall_s = time.perf_counter() - wall_start
    errors = sum(len(samples[e]) for e in ENDPOINTS if e in ERROR_ENDPOINTS)
    received = receiver_counts(port)["events"] - before if config != "B" else 0
    return {
        "config": config,
        "endpoints": {e: summarise_ns(v) for e, v in samples.items()},
        "cycle_us": sum(sum(v) for v in samples.values()) / 1000.0 / (block * blocks),
        "requests": sum(len(v) for v in samples.values()),
        "errors_made": errors,
        "events_received": received,
        "cpu_s": cpu_s,
        "threads_cpu_s": threads,
        "requests_wall_s": requests_s,
        "wall_s": wall_s,
        "flushed": flushed,
        **({"gc": gc_share.by_endpoint} if gc_share is not None else {}),
        **setup.info(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", choices=CONFIGS)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument(
        "--pause-us", type=int, default=0, help="idle time after each request (default none)"
    )
    parser.add_argument(
        "--gc",
        action="store_true",
        help="also report the garbage collector's pauses by the endpoint they fell in",
    )
    args = parser.parse_args()
    share = GcShare() if args.gc else None
    emit(
        sustained(
            args.config,
            args.port,
            args.block,
            args.blocks,
            args.warmup,
            args.pause_us / 1e6,
            share,
        )
    )


if __name__ == "__main__":
    main()

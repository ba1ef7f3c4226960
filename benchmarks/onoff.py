"""The bridge switched on and off, block by block, in one process: what it adds to a request's
CPU with less of this machine's noise than separate processes give.

``python -m benchmarks.onoff --port P [--config C-helper --endpoint logerr --blocks 40]``

One configuration (C, C-helper or C-auto) serves one endpoint back to back. Blocks of
``--block`` requests alternate between the bridge on (its span processor in the tracer
provider, its log handler on the root logger, its Django signal hook) and off (all three taken
out), in ABBA order, and the medians of the blocks' request-thread CPU are compared. While it
is on, the CPU spent inside the bridge's entry points (``SpanEventHandler.emit``,
``SentrySpanProcessor.on_end``, the signal hook) is also counted; the rest of the difference
is what our code leaves behind for the request (cold caches, allocations). Work queued while
on (the helper's, the worker's) goes on while off, as it would on a server. Prints one JSON
line. Not part of ``make bench``: a side-by-side tool, like ``benchmarks.compare``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Callable
from typing import Any

from .common import emit
from .configs import build
from .djangoapp import ENDPOINTS
from .wsgi_bench import make_call


def _timed(owner: Any, name: str, spent: list[int]) -> None:
    """Wrap ``owner.name`` so that the thread CPU spent inside it adds up in ``spent[0]``."""
    inner: Callable[..., Any] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time_ns()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[0] += time.thread_time_ns() - start

    setattr(owner, name, timed)


def onoff(
    config: str, port: int, endpoint: str, block: int, blocks: int, warmup: int = 1500
) -> dict[str, Any]:
    from opentelemetry import trace

    from otel_sentry_bridge.capture import django_hooks
    from otel_sentry_bridge.capture.log_handler import SpanEventHandler
    from otel_sentry_bridge.processor import SentrySpanProcessor

    spent = [0]
    _timed(SpanEventHandler, "emit", spent)
    _timed(SentrySpanProcessor, "on_end", spent)
    _timed(django_hooks, "_on_request_exception", spent)  # before build() connects it
    setup = build(config, port)
    call = make_call(setup.handler)
    processors = trace.get_tracer_provider()._active_span_processor  # type: ignore[attr-defined]
    with_bridge = processors._span_processors
    without = tuple(p for p in with_bridge if not isinstance(p, SentrySpanProcessor))
    root = logging.getLogger()
    handler = next(h for h in root.handlers if isinstance(h, SpanEventHandler))

    def switch(on: bool) -> None:
        processors._span_processors = with_bridge if on else without
        if on:
            root.addHandler(handler)
            django_hooks.install()
        else:
            root.removeHandler(handler)
            django_hooks.uninstall()

    for _ in range(warmup):  # the helper started (a storm), caches warm
        call(endpoint)
    setup.flush(60.0)
    cpu: dict[bool, list[float]] = {True: [], False: []}
    inside: list[float] = []
    for index in range(blocks):
        for on in (True, False) if index % 2 else (False, True):
            switch(on)
            spent[0] = 0
            start = time.thread_time_ns()
            for _ in range(block):
                call(endpoint)
            cpu[on].append((time.thread_time_ns() - start) / block / 1000)
            if on:
                inside.append(spent[0] / block / 1000)
    switch(True)
    flushed = setup.flush(60.0)
    on_us, off_us = statistics.median(cpu[True]), statistics.median(cpu[False])
    return {
        "config": config,
        "endpoint": endpoint,
        "on_us": round(on_us, 1),
        "off_us": round(off_us, 1),
        "ratio": round(on_us / off_us, 3),
        "added_us": round(on_us - off_us, 1),
        "inside_entry_points_us": round(statistics.median(inside), 1),
        "flushed": flushed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", choices=("C", "C-helper", "C-auto"), default="C-helper")
    parser.add_argument("--endpoint", choices=ENDPOINTS, default="logerr")
    parser.add_argument("--block", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=1500)
    args = parser.parse_args()
    emit(onoff(args.config, args.port, args.endpoint, args.block, args.blocks, args.warmup))


if __name__ == "__main__":
    main()

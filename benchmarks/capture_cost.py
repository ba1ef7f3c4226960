"""Request-thread cost of one capture: ``capture_exception`` inside a recording span, minus
the same span and raise without it, best of rounds, in µs. The hand-over to the worker is
dropped, so no background work runs meanwhile.

Side by side with another version of the package (the figures of the session notes)::

    git worktree add /tmp/old <commit>
    PYTHONPATH=/tmp/old/src python -m benchmarks.capture_cost
    PYTHONPATH=src python -m benchmarks.capture_cost
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from .common import emit


def _f3() -> None:
    raise KeyError("x")


def _f2() -> None:
    _f3()


def _f1() -> None:
    _f2()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--captures", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from opentelemetry.sdk.trace import TracerProvider

    from otel_sentry_bridge import SentrySpanProcessor
    from otel_sentry_bridge.testing import CapturingTransport

    try:
        from otel_sentry_bridge.capture.api import capture_exception
    except ImportError:  # before the packages by stage
        from otel_sentry_bridge.capture import capture_exception  # type: ignore[attr-defined,no-redef]

    processor = SentrySpanProcessor(transport=CapturingTransport())
    owner: Any = getattr(processor, "bridge", processor)
    owner._worker.submit = lambda item: True  # benchmark only: no background work
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")

    def run(capture: bool) -> float:
        started = time.perf_counter()
        for _ in range(args.captures):
            with tracer.start_as_current_span("GET /x"):
                try:
                    _f1()
                except KeyError as exc:
                    if capture:
                        capture_exception(exc, mechanism="django", handled=False)
        return time.perf_counter() - started

    rounds = [(run(True) - run(False)) / args.captures * 1e6 for _ in range(args.rounds)]
    emit({"capture_us": min(rounds), "capture_us_rounds": rounds})


if __name__ == "__main__":
    main()

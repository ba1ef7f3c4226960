"""Bridge and the lookup hooks use: who is active, and what each bridge decides."""

from __future__ import annotations

import threading
import time
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.bridge import active_bridges, newest_settings
from otel_sentry_bridge.capture.api import capture_exception, capture_message
from otel_sentry_bridge.testing import CapturingTransport


def test_only_enabled_bridges_are_active_newest_first() -> None:
    first = SentrySpanProcessor(transport=CapturingTransport())
    second = SentrySpanProcessor(transport=CapturingTransport(), environment="staging")
    disabled = SentrySpanProcessor(dsn=None, transport=None)
    try:
        bridges = active_bridges()
        assert bridges[:2] == [second.bridge, first.bridge]
        assert disabled.bridge not in bridges
        assert newest_settings() is second.settings
    finally:
        second.shutdown()
        first.shutdown()
    assert first.bridge not in active_bridges()


def test_each_bridge_decides_with_its_own_settings() -> None:
    provider = TracerProvider()
    quiet = CapturingTransport()
    loud = CapturingTransport()
    ignoring = SentrySpanProcessor(transport=quiet, ignored_exceptions=("KeyError",))
    keeping = SentrySpanProcessor(transport=loud, include_local_variables=True)
    for processor in (ignoring, keeping):
        provider.add_span_processor(processor)
    try:
        with provider.get_tracer("t").start_as_current_span("job"):
            try:
                order_number = 17  # noqa: F841  (a local to find)
                raise KeyError("order")
            except KeyError as exc:
                assert capture_exception(exc) is not None
        assert provider.force_flush(5000)
        assert quiet.events == []
        (event,) = loud.events
        frame = event["exception"]["values"][-1]["stacktrace"]["frames"][-1]
        assert frame["vars"]["order_number"] == 17
    finally:
        provider.shutdown()


def test_a_shut_down_bridge_gets_nothing_and_the_span_still_gets_the_event() -> None:
    transport = CapturingTransport()
    processor = SentrySpanProcessor(transport=transport)
    processor.shutdown()
    provider = TracerProvider()
    provider.add_span_processor(processor)
    with provider.get_tracer("t").start_as_current_span("job") as span:
        assert capture_message("after shutdown") is not None
    assert [e.name for e in span.events] == ["log"]  # for the tracing backend
    assert processor.bridge.queued == 0
    assert transport.events == []


def test_event_ids_are_random_hex_whatever_the_application_seeds() -> None:
    import os
    import random
    import re

    processor = SentrySpanProcessor(transport=CapturingTransport())
    try:
        bridge = processor.bridge
        random.seed(7)
        first = [bridge.new_event_id() for _ in range(3)]
        random.seed(7)
        again = [bridge.new_event_id() for _ in range(3)]
        assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in first + again)
        assert len(set(first + again)) == 6
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its ids must not repeat the parent's
            os.write(write, bridge.new_event_id().encode())
            os._exit(0)
        os.waitpid(pid, 0)
        child = os.read(read, 64).decode()
        os.close(read)
        os.close(write)
        assert child != bridge.new_event_id()
    finally:
        processor.shutdown()


def test_at_shutdown_what_is_left_goes_through_the_sender_thread_not_the_worker() -> None:
    threads: list[str] = []
    third_started, gate = threading.Event(), threading.Event()

    class Noting(CapturingTransport):
        def send(self, envelope: bytes) -> Any:
            threads.append(threading.current_thread().name)
            if len(threads) == 3:  # the worker, sending the third itself: held here
                third_started.set()
                assert gate.wait(10)
            return super().send(envelope)

    transport = Noting()
    processor = SentrySpanProcessor(transport=transport)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")

    def error(n: int) -> None:
        with tracer.start_as_current_span(f"job {n}"):
            try:
                raise KeyError(n)
            except KeyError as exc:
                capture_exception(exc)

    for n in range(2):  # the first goes through the sender thread; the next, quick, not
        error(n)
        assert processor.force_flush(5000)
    assert threads == ["otel-sentry-bridge-sender", "otel-sentry-bridge"]
    error(2)
    assert third_started.wait(10)
    for n in range(3, 12):  # queued behind the third
        error(n)
    stopping = threading.Thread(target=provider.shutdown)
    stopping.start()
    deadline = time.monotonic() + 10
    while processor.bridge.pipeline.waiting() is not None:  # until shutdown has begun
        assert time.monotonic() < deadline
        time.sleep(0.001)
    gate.set()
    stopping.join(10)
    assert len(transport.events) == 12
    assert threads[2] == "otel-sentry-bridge"
    assert set(threads[3:]) == {"otel-sentry-bridge-sender"}

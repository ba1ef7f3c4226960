"""SpanEventHandler outside Django: loops, thresholds, and captures with no span at all."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.logging import SpanEventHandler
from otel_sentry_bridge.testing import CapturingTransport

Setup = tuple[TracerProvider, CapturingTransport, logging.Logger]


@pytest.fixture
def setup() -> Iterator[tuple[TracerProvider, CapturingTransport, logging.Logger]]:
    transport = CapturingTransport()
    provider = TracerProvider()
    processor = SentrySpanProcessor(transport=transport)
    provider.add_span_processor(processor)
    logger = logging.getLogger("tests.handler")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # pytest's own capture handler raises on bad records
    handler = SpanEventHandler(settings=processor.settings)
    loop_loggers = [
        logging.getLogger(n)
        for n in ("urllib3.connectionpool", "opentelemetry.sdk", "requests", "otel_sentry_bridge")
    ]
    for target in [logger, *loop_loggers]:
        target.addHandler(handler)
    try:
        yield provider, transport, logger
    finally:
        for target in [logger, *loop_loggers]:
            target.removeHandler(handler)
        logger.propagate = True
        provider.shutdown()


def test_errors_of_feedback_loggers_are_ignored(setup: Setup) -> None:
    provider, transport, _ = setup
    with provider.get_tracer("t").start_as_current_span("s"):
        for name in (
            "urllib3.connectionpool",
            "opentelemetry.sdk",
            "requests",
            "otel_sentry_bridge",
        ):
            logging.getLogger(name).error("loop %s", name)
    assert provider.force_flush(5000)
    assert transport.events == []


def test_error_with_no_span_at_all_is_sent_with_fresh_trace_ids(setup: Setup) -> None:
    provider, transport, logger = setup
    logger.info("before")
    try:
        raise ConnectionError("db down")
    except ConnectionError:
        logger.exception("job failed")
    assert provider.force_flush(5000)
    (event,) = transport.events
    trace = event["contexts"]["trace"]
    assert len(trace["trace_id"]) == 32 and int(trace["trace_id"], 16) != 0
    assert event["exception"]["values"][-1]["type"] == "ConnectionError"
    # Outside any trace, breadcrumbs are this thread's (earlier tests left theirs too).
    assert [c["message"] for c in event["breadcrumbs"]["values"]][-1] == "before"


def test_debug_records_are_neither_events_nor_breadcrumbs(setup: Setup) -> None:
    provider, transport, logger = setup
    with provider.get_tracer("t").start_as_current_span("s"):
        logger.debug("too chatty")
        logger.error("real problem")
    assert provider.force_flush(5000)
    (event,) = transport.events
    assert "breadcrumbs" not in event


def test_thresholds_are_configurable(setup: Setup) -> None:
    provider, transport, _ = setup
    strict = SpanEventHandler(event_level=logging.WARNING, breadcrumb_level=logging.DEBUG)
    other = logging.getLogger("tests.handler.strict")
    other.propagate = False
    other.setLevel(logging.DEBUG)
    other.addHandler(strict)
    try:
        with provider.get_tracer("t").start_as_current_span("s"):
            other.debug("detail")
            other.warning("now an event")
    finally:
        other.removeHandler(strict)
    assert provider.force_flush(5000)
    (event,) = transport.events
    assert event["level"] == "warning"
    assert [c["message"] for c in event["breadcrumbs"]["values"]] == ["detail"]


def test_bad_format_arguments_do_not_lose_the_record(setup: Setup) -> None:
    provider, transport, logger = setup
    record = logger.makeRecord(
        logger.name, logging.ERROR, __file__, 1, "two placeholders %s %s", ("only-one",), None
    )
    SpanEventHandler().handle(record)  # straight to the handler: others would raise on it
    assert provider.force_flush(5000)
    (event,) = transport.events
    assert "two placeholders" in event["logentry"]["formatted"]

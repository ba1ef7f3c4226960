"""OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN: our own captures as OTel log records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.capture import signal_opt_in
from otel_sentry_bridge.capture.api import capture_exception
from otel_sentry_bridge.testing import CapturingTransport


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, ...]]:
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    monkeypatch.setattr(signal_opt_in, "get_logger_provider", lambda: logger_provider)
    transport = CapturingTransport()
    tracer_provider = TracerProvider()
    processor = SentrySpanProcessor(transport=transport)
    tracer_provider.add_span_processor(processor)
    yield tracer_provider, processor, transport, logs
    tracer_provider.shutdown()


def _fail() -> None:
    raise ValueError("declined")


def _capture_in_span(tracer_provider: TracerProvider) -> tuple[str | None, Any]:
    with tracer_provider.get_tracer("t").start_as_current_span("checkout") as span:
        try:
            _fail()
        except ValueError as exc:
            event_id = capture_exception(exc, mechanism="django", handled=False)
    return event_id, span


@pytest.mark.parametrize(
    ("mode", "span_events", "log_records"),
    [(None, ["exception"], 0), ("logs", [], 1), ("logs/dup", ["exception"], 1)],
    ids=["default", "logs", "logs-dup"],
)
def test_each_mode_sends_one_event_and_records_where_it_says(
    world: Any,
    monkeypatch: pytest.MonkeyPatch,
    mode: str | None,
    span_events: list[str],
    log_records: int,
) -> None:
    tracer_provider, processor, transport, logs = world
    if mode is None:
        monkeypatch.delenv(signal_opt_in.ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(signal_opt_in.ENV_VAR, mode)
    event_id, span = _capture_in_span(tracer_provider)
    assert processor.force_flush(5000)
    (event,) = transport.events
    assert event["event_id"] == event_id
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "django", "handled": False}
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert event["contexts"]["trace"]["trace_id"] == trace_id
    assert [e.name for e in span.events] == span_events
    records = logs.get_finished_logs()
    assert len(records) == log_records
    for data in records:
        record = getattr(data, "log_record", data)
        assert record.attributes["sentry.event_id"] == event_id
        assert format(record.trace_id, "032x") == trace_id

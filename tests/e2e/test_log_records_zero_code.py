"""Exceptions as OpenTelemetry log records under a real ``opentelemetry-instrument`` (issue #16).

The test Django app (``tests/djangoapp``) runs under ``opentelemetry-instrument ... runserver
--noreload`` with the SDK's logs pipeline on (``OTEL_LOGS_EXPORTER=otlp``, OTel's
``LoggingHandler`` on the root logger), traces and logs exported to one loopback OTLP receiver
and errors to a loopback Sentry. The zero-code instrumentor adds ``SentryLogRecordProcessor`` to
the SDK ``LoggerProvider``: an exception (or an ERROR record) emitted through the logs API
reaches Sentry once, with the request span's trace id; a ``logger.exception`` that both OTel's
``LoggingHandler`` and our ``SpanEventHandler`` see is still one event. Under
``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN=logs`` each failure is still one event, and our hooks'
capture reaches the logs backend as a log record instead of a span event.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.otlp_logs import OtlpLogsReceiver, ReceivedLogRecord
from tests.support.otlp_receiver import ReceivedSpan
from tests.support.processes import BIN, ServerProcess, base_env, free_port, get
from tests.support.receiver import SentryReceiver

pytestmark = pytest.mark.e2e

_MARKER = "payment gateway answered %s for order %s"  # the /log-error/ view's message
_SETTLE = 1.0  # seconds a late duplicate has to show up after the marker


@pytest.fixture
def otlp() -> Iterator[OtlpLogsReceiver]:
    with OtlpLogsReceiver() as receiver:
        yield receiver


@contextmanager
def _djangoapp(
    sentry: SentryReceiver, otlp: OtlpLogsReceiver, log: Path, **extra: str
) -> Iterator[str]:
    """tests/djangoapp under ``opentelemetry-instrument python -m django runserver
    --noreload``: errors to ``sentry``, spans and log records over OTLP/HTTP to ``otlp``."""
    env = base_env(
        SENTRY_DSN=sentry.dsn,
        DJANGO_SETTINGS_MODULE="tests.djangoapp.settings",
        OTEL_SERVICE_NAME="djangoapp",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
        OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED="true",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_BLRP_SCHEDULE_DELAY="100",
        **extra,
    )
    port = free_port()
    server = ServerProcess(
        [
            str(BIN / "opentelemetry-instrument"),
            str(BIN / "python"),
            "-m",
            "django",
            "runserver",
            "--noreload",
            f"127.0.0.1:{port}",
        ],
        env,
        log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        server.wait_http(f"{base}/ok/", timeout=60)
        yield base
    finally:
        server.stop()
    assert otlp.rejections == [], otlp.rejections


def _events(sentry: SentryReceiver, base: str) -> list[dict[str, Any]]:
    """Every event sent before a final marker (a logged error without exception): the
    bridge's queue is first-in first-out, so once the marker has arrived, everything sent
    before it has too. Then nothing more may arrive (a late second copy of anything)."""
    assert get(f"{base}/log-error/") == 200
    wanted = 1
    while True:
        events = sentry.wait_for_events(wanted, timeout=30)
        if events[-1].get("logentry", {}).get("message") == _MARKER:
            break
        wanted = len(events) + 1
    time.sleep(_SETTLE)
    assert len(sentry.events) == len(events), sentry.events[len(events) :]
    return events[:-1]


def _trace(event: dict[str, Any]) -> tuple[str, str]:
    context = event["contexts"]["trace"]
    return str(context["trace_id"]), str(context["span_id"])


def _request_span(otlp: OtlpLogsReceiver, event: dict[str, Any]) -> ReceivedSpan:
    """The request's SERVER span the OTLP receiver got: the span the event names."""
    trace_id, span_id = _trace(event)
    (span,) = otlp.wait_for_spans(lambda s: s.trace_id == trace_id and s.kind == "SERVER")
    assert span.span_id == span_id, (span, event["contexts"]["trace"])
    return span


def _log_records(
    otlp: OtlpLogsReceiver, event: dict[str, Any], scope: str
) -> list[ReceivedLogRecord]:
    trace_id, span_id = _trace(event)
    return otlp.wait_for_logs(
        lambda r: r.scope == scope and (r.trace_id, r.span_id) == (trace_id, span_id)
    )


def _main_exception(event: dict[str, Any]) -> dict[str, Any]:
    values = event["exception"]["values"]
    return dict(values[-1])


def test_an_exception_emitted_through_the_logs_api_is_one_event_of_the_request_span(
    sentry_receiver: SentryReceiver, otlp: OtlpLogsReceiver, tmp_path: Path
) -> None:
    with _djangoapp(sentry_receiver, otlp, tmp_path / "server.log") as base:
        assert get(f"{base}/otel-log-exception/") == 200
        (event,) = _events(sentry_receiver, base)
        span = _request_span(otlp, event)
        (record,) = _log_records(otlp, event, "shop.events")

    main = _main_exception(event)
    assert (main["module"], main["type"]) == ("tests.djangoapp.views", "OrderLookupError")
    assert main["value"] == "order 41 not found"
    assert main["mechanism"] == {"type": "logging", "handled": True}
    assert event["level"] == "error"
    assert event["logger"] == "shop.events"
    assert event["extra"]["order.id"] == 41
    assert event["request"]["url"] == f"{base}/otel-log-exception/"
    # The request span is the one the OTLP receiver got; the error went only as a log record.
    assert span.attributes["http.route"] == "otel-log-exception/"
    assert [e for e in span.events if e.name == "exception"] == []
    assert record.event_name == "shop.order.lookup_failed"
    # Logger.emit(exception=...) writes what Span.record_exception writes.
    assert record.attributes["exception.type"] == "tests.djangoapp.views.OrderLookupError"
    assert record.attributes["exception.message"] == "order 41 not found"
    assert record.body == "could not load order 41"


def test_an_error_log_record_without_exception_is_one_message_event(
    sentry_receiver: SentryReceiver, otlp: OtlpLogsReceiver, tmp_path: Path
) -> None:
    with _djangoapp(sentry_receiver, otlp, tmp_path / "server.log") as base:
        assert get(f"{base}/otel-log-error/") == 200
        (event,) = _events(sentry_receiver, base)
        span = _request_span(otlp, event)
        (record,) = _log_records(otlp, event, "shop.events")

    assert "exception" not in event
    assert event["logentry"]["formatted"] == "card processor timed out for order 42"
    assert event["level"] == "error"
    assert event["logger"] == "shop.events"
    assert event["request"]["url"] == f"{base}/otel-log-error/"
    assert span.events == ()
    assert (record.severity_text, record.body) == ("ERROR", event["logentry"]["formatted"])


def test_logger_exception_seen_by_both_handlers_is_one_event(
    sentry_receiver: SentryReceiver, otlp: OtlpLogsReceiver, tmp_path: Path
) -> None:
    with _djangoapp(sentry_receiver, otlp, tmp_path / "server.log") as base:
        assert get(f"{base}/log-exception/") == 200
        (event,) = _events(sentry_receiver, base)
        span = _request_span(otlp, event)
        (record,) = _log_records(otlp, event, "shop.views")

    # SpanEventHandler's capture: its template, its event id on the span's exception event.
    assert _main_exception(event)["mechanism"] == {"type": "logging", "handled": True}
    assert event["logentry"]["message"] == "could not load order %s"
    assert event["logger"] == "shop.views"
    (span_event,) = [e for e in span.events if e.name == "exception"]
    assert span_event.attributes["sentry.event_id"] == event["event_id"]
    # OTel's LoggingHandler's copy went to the logs backend, and nowhere else.
    assert record.body == "could not load order 18"
    assert record.severity_text == "ERROR"
    assert record.attributes["exception.type"] == "OrderLookupError"
    assert "sentry.event_id" not in record.attributes


def test_under_the_logs_opt_in_each_failure_is_one_event_and_our_capture_a_log_record(
    sentry_receiver: SentryReceiver, otlp: OtlpLogsReceiver, tmp_path: Path
) -> None:
    opt_in = {"OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN": "logs"}
    with _djangoapp(sentry_receiver, otlp, tmp_path / "server.log", **opt_in) as base:
        assert get(f"{base}/boom/") == 500
        assert get(f"{base}/log-exception/") == 200
        events = _events(sentry_receiver, base)
        kinds = [(_main_exception(e)["mechanism"]["type"], e["transaction"]) for e in events]
        assert kinds == [("django", "/boom/"), ("logging", "/log-exception/")]
        # Each capture of our hooks also went out as a log record: emitted in the request's
        # context, carrying the id of the Sentry event it became, under an event name of its
        # own; and no span event of our hook (nothing on the request span carries that id;
        # the Django instrumentation's own copy on /boom/ never does).
        for event, mechanism in zip(events, ("django", "logging"), strict=True):
            assert _main_exception(event)["type"] == "OrderLookupError"
            span = _request_span(otlp, event)
            (record,) = _our_log_records(otlp, event)
            assert record.scope == "otel_sentry_bridge"
            assert record.event_name == f"otel_sentry_bridge.{mechanism}.exception"
            assert record.event_name != "exception"
            assert record.severity_text == "ERROR"
            assert record.attributes["exception.type"] == "tests.djangoapp.views.OrderLookupError"
            assert (record.trace_id, record.span_id) == _trace(event)
            ours = [e for e in span.events if "sentry.event_id" in e.attributes]
            assert ours == [], span.events
        # The Python log line of /log-exception/ still reached the logs backend through OTel's
        # LoggingHandler, beside our record.
        (line,) = _log_records(otlp, events[1], "shop.views")
        assert line.body == "could not load order 18"


def _our_log_records(otlp: OtlpLogsReceiver, event: dict[str, Any]) -> list[ReceivedLogRecord]:
    def carries_its_id(record: ReceivedLogRecord) -> bool:
        return bool(record.attributes.get("sentry.event_id") == event["event_id"])

    return otlp.wait_for_logs(carries_its_id, timeout=5)

"""``convert/otlp_scrub.py``: what OpenTelemetry's own exporters send to Sentry, scrubbed.

Each leak a privacy probe found in the OTLP exports is a case here, on attributes as the
instrumentations set them and on real SDK spans and log records."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, StatusCode

from otel_sentry_bridge.convert.otlp_scrub import (
    scrub_log_record,
    scrub_log_records,
    scrub_span,
    scrub_spans,
)
from otel_sentry_bridge.convert.scrubber import FILTERED, scrubber_for

SECRET = "hunter2zq"
SCRUBBER = scrubber_for(())


def no_secret(value: Any) -> None:
    assert SECRET not in repr(value)


# -- spans --------------------------------------------------------------------------------------


def finished(
    kind: SpanKind = SpanKind.SERVER,
    attributes: Mapping[str, Any] | None = None,
    resource: Mapping[str, Any] | None = None,
    limits: SpanLimits | None = None,
    build: Any = None,
) -> ReadableSpan:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "shop", **(resource or {})}),
        span_limits=limits,
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("linked") as other:
        pass
    link = Link(other.get_span_context(), {"app.link": f"token={SECRET}", "app.n": 1})
    with tracer.start_as_current_span(
        "GET /login", kind=kind, attributes=attributes, links=[link]
    ) as span:
        if build is not None:
            build(span)
    provider.shutdown()
    return exporter.get_finished_spans()[-1]


def leaky_span(span: Any) -> None:
    try:
        raise ValueError(f"password={SECRET} for postgres://app:{SECRET}@db/shop")
    except ValueError as exc:
        span.record_exception(exc)
    span.add_event("log", {"log.message": f"token={SECRET}", "sentry.level": "info"})
    span.add_event("plain", {"n": 1})
    span.set_status(StatusCode.ERROR, f"token={SECRET}")


def test_a_span_leaks_nothing_in_attributes_events_links_status_or_resource() -> None:
    span = finished(
        attributes={
            "http.url": f"http://shop/login?password={SECRET}&q=1",
            "net.peer.ip": "203.0.113.9",
            "http.user_agent": f"curl token={SECRET}",
            "http.method": "GET",
        },
        resource={"deployment.token": SECRET},
        build=leaky_span,
    )
    assert SECRET in span.to_json()

    clean = scrub_span(span, SCRUBBER, False)

    assert clean is not None
    no_secret(clean.to_json())
    assert SECRET.encode() not in encode_spans([clean]).SerializeToString()
    assert "net.peer.ip" not in clean.attributes and clean.attributes["http.method"] == "GET"
    assert (clean.name, clean.kind, clean.get_span_context()) == (
        span.name,
        span.kind,
        span.get_span_context(),
    )
    assert (clean.start_time, clean.end_time, clean.parent) == (
        span.start_time,
        span.end_time,
        span.parent,
    )
    assert [e.name for e in clean.events] == ["exception", "log", "plain"]
    exception = clean.events[0].attributes
    assert exception is not None and exception["exception.type"] == "ValueError"
    assert clean.events[2] is span.events[2]  # nothing to scrub: the SDK's own
    assert clean.status.status_code is StatusCode.ERROR
    assert clean.status.description == f"token={FILTERED}"
    assert clean.resource.attributes["service.name"] == "shop"
    assert clean.links[0].attributes == {"app.link": f"token={FILTERED}", "app.n": 1}
    assert SECRET in span.to_json()  # the original is untouched


def test_an_outgoing_request_keeps_its_host_and_loses_its_token() -> None:
    span = finished(
        SpanKind.CLIENT,
        {
            "http.url": f"https://api.partner.example/v1/charge?token={SECRET}",
            "net.peer.name": "api.partner.example",
        },
    )
    clean = scrub_span(span, SCRUBBER, False)
    assert clean is not None
    no_secret(dict(clean.attributes))
    assert clean.attributes["net.peer.name"] == "api.partner.example"


def test_a_clean_span_is_sent_as_it_is() -> None:
    span = finished(attributes={"http.method": "GET"}, build=lambda s: s.add_event("e", {"n": 1}))
    # (the link of finished() carries a token: a span without links here)
    plain = ReadableSpan(
        name=span.name,
        context=span.get_span_context(),
        resource=span.resource,
        attributes=span.attributes,
        events=span.events,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
    )
    assert scrub_span(plain, SCRUBBER, False) is plain


def test_what_the_sdks_limits_dropped_is_still_counted() -> None:
    limits = SpanLimits(max_span_attributes=2, max_events=2)

    def build(span: Any) -> None:
        for n in range(4):
            span.add_event("log", {"log.message": f"token={SECRET} {n}"})

    span = finished(
        attributes={"a": 1, "log.message": f"token={SECRET}", "c": 3},
        limits=limits,
        build=build,
    )
    assert (span.dropped_attributes, span.dropped_events) == (1, 2)
    clean = scrub_span(span, SCRUBBER, False)
    assert clean is not None
    no_secret(clean.to_json())
    assert (clean.dropped_attributes, clean.dropped_events, clean.dropped_links) == (1, 2, 0)
    encoded = encode_spans([clean]).resource_spans[0].scope_spans[0].spans[0]
    assert (encoded.dropped_attributes_count, encoded.dropped_events_count) == (1, 2)


class UnreadableSpan(ReadableSpan):
    @property
    def attributes(self) -> Any:
        raise RuntimeError("no")


def test_a_span_that_cannot_be_read_is_not_sent() -> None:
    good = finished(attributes={"log.message": f"token={SECRET}"})
    bad = UnreadableSpan(name="bad", context=good.get_span_context())

    assert scrub_span(bad, SCRUBBER, False) is None
    out = scrub_spans([bad, good], SCRUBBER, False)
    assert [s.name for s in out] == [good.name]
    no_secret(out[0].to_json())


def test_a_batch_scrubs_a_shared_resource_once() -> None:
    span = finished(resource={"deployment.token": SECRET})
    first, second = scrub_spans([span, span], SCRUBBER, False)
    assert first.resource is second.resource
    assert first.resource.attributes["deployment.token"] == FILTERED


# -- log records --------------------------------------------------------------------------------


@pytest.fixture
def logs() -> Iterator[tuple[logging.Logger, InMemoryLogRecordExporter]]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "shop"}), shutdown_on_exit=False
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    with pytest.warns(DeprecationWarning):
        handler = LoggingHandler(logging.NOTSET, logger_provider=provider)
    log = logging.getLogger("tests.otlp_scrub")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    try:
        yield log, exporter
    finally:
        log.removeHandler(handler)
        log.propagate = True
        provider.shutdown()


def test_a_log_records_exception_attributes_and_extras_are_scrubbed(
    logs: tuple[logging.Logger, InMemoryLogRecordExporter],
) -> None:
    log, exporter = logs
    try:
        raise ConnectionError(f"postgres://app:{SECRET}@db/shop refused; password={SECRET}")
    except ConnectionError:
        log.exception("login failed with token=%s", SECRET, extra={"api_token": SECRET, "n": 3})
    (record,) = exporter.get_finished_logs()
    assert SECRET in record.to_json()

    clean = scrub_log_record(record, SCRUBBER, False)

    assert clean is not None
    no_secret(clean.to_json())
    assert SECRET.encode() not in encode_logs([clean]).SerializeToString()
    attributes = clean.log_record.attributes
    assert attributes is not None
    assert attributes["exception.type"] == "ConnectionError"
    assert attributes["api_token"] == FILTERED and attributes["n"] == 3
    assert "login failed" in str(clean.log_record.body)
    assert clean.log_record.trace_id == record.log_record.trace_id
    assert (clean.resource, clean.instrumentation_scope) == (
        record.resource,
        record.instrumentation_scope,
    )
    assert SECRET in record.to_json()  # the original is untouched


def test_a_mapping_body_is_scrubbed_by_key(
    logs: tuple[logging.Logger, InMemoryLogRecordExporter],
) -> None:
    log, exporter = logs
    log.info({"event": "login", "password": SECRET, "next": f"/a?token={SECRET}"})
    (record,) = exporter.get_finished_logs()
    clean = scrub_log_record(record, SCRUBBER, False)
    assert clean is not None
    no_secret(clean.to_json())


def test_a_clean_log_record_is_sent_as_it_is(
    logs: tuple[logging.Logger, InMemoryLogRecordExporter],
) -> None:
    log, exporter = logs
    log.info("order %s paid", 7)
    (record,) = exporter.get_finished_logs()
    assert scrub_log_record(record, SCRUBBER, False) is record


def test_a_log_record_that_cannot_be_read_is_not_sent(
    logs: tuple[logging.Logger, InMemoryLogRecordExporter],
) -> None:
    log, exporter = logs
    log.warning("fine")
    (good,) = exporter.get_finished_logs()
    bad = ReadableLogRecord(log_record=None, resource=good.resource)  # type: ignore[arg-type]
    assert scrub_log_record(bad, SCRUBBER, False) is None
    assert scrub_log_records([bad, good], SCRUBBER, False) == [good]

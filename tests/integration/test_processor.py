"""SentrySpanProcessor through a real SDK TracerProvider to a real HTTP socket."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from opentelemetry.sdk.trace import TracerProvider
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from otel_sentry_bridge import InvalidDsn, SentrySpanProcessor
from otel_sentry_bridge.deliver.http import SendResult
from otel_sentry_bridge.setup import opening
from otel_sentry_bridge.testing import CapturingTransport
from tests.support.receiver import SentryReceiver


def _fail() -> None:
    raise ValueError("card declined")


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    yield provider
    provider.shutdown()


def _record_error(provider: TracerProvider, name: str = "checkout") -> int:
    with provider.get_tracer("t").start_as_current_span(name) as span:
        try:
            _fail()
        except ValueError as exc:
            span.record_exception(exc)
    return span.get_span_context().trace_id


def test_exception_span_is_delivered_over_http_with_its_trace(
    provider: TracerProvider, sentry_receiver: SentryReceiver
) -> None:
    processor = SentrySpanProcessor(dsn=sentry_receiver.dsn)
    provider.add_span_processor(processor)
    trace_id = _record_error(provider)
    assert processor.force_flush(5000)
    (event,) = sentry_receiver.wait_for_events(1)
    assert event["contexts"]["trace"]["trace_id"] == format(trace_id, "032x")
    (request,) = sentry_receiver.requests
    # A typical error envelope is small: sent as it is (compress.py says why).
    assert "Content-Encoding" not in request.headers
    assert "sentry_key=publickey" in request.headers["X-Sentry-Auth"]


def test_spans_without_exceptions_are_never_queued(provider: TracerProvider) -> None:
    transport = CapturingTransport()
    processor = SentrySpanProcessor(transport=transport)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for _ in range(50):
        with tracer.start_as_current_span("fine") as span:
            span.add_event("cache.hit")
    assert processor.force_flush(1000)
    assert transport.events == []
    assert processor.bridge.pending == 0 and processor.bridge.queued == 0


def test_same_exception_on_child_and_parent_gives_one_event(provider: TracerProvider) -> None:
    transport = CapturingTransport()
    provider.add_span_processor(SentrySpanProcessor(transport=transport))
    tracer = provider.get_tracer("t")
    # Both spans record the exception as it escapes them (the SDK default).
    with (
        pytest.raises(ValueError),
        tracer.start_as_current_span("request"),
        tracer.start_as_current_span("db.query"),
    ):
        _fail()
    assert provider.force_flush(5000)
    assert len(transport.events) == 1
    assert transport.events[0]["transaction"] == "db.query"


def test_an_exception_a_child_span_recorded_is_not_sent_again_when_the_parent_logs_it(
    provider: TracerProvider,
) -> None:
    from otel_sentry_bridge.capture.api import capture_exception

    transport = CapturingTransport()
    provider.add_span_processor(SentrySpanProcessor(transport=transport))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("request"):
        try:
            with tracer.start_as_current_span("db.query"):  # records it as it escapes
                _fail()
        except ValueError as exc:
            capture_exception(exc, mechanism="logging")  # what log.exception does
    assert provider.force_flush(5000)
    assert len(transport.events) == 1


def test_two_captures_alike_in_one_trace_give_two_events(provider: TracerProvider) -> None:
    from otel_sentry_bridge.capture.api import capture_exception, capture_message

    transport = CapturingTransport()
    provider.add_span_processor(SentrySpanProcessor(transport=transport))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("request"):
        with tracer.start_as_current_span("item-1"):
            for _ in range(2):  # two exception objects, one signature
                try:
                    _fail()
                except ValueError as exc:
                    capture_exception(exc)
            capture_message("item skipped", template="item skipped")
        with tracer.start_as_current_span("item-2"):
            capture_message("item skipped", template="item skipped")
    assert provider.force_flush(5000)
    kinds = sorted("exception" in e for e in transport.events)
    assert kinds == [False, False, True, True]


_STORED = ValueError("gateway down")  # a cached failure, raised to every caller


def _raise_stored() -> None:
    raise _STORED


def test_the_same_exception_object_raised_again_later_is_an_event_each_time(
    provider: TracerProvider,
) -> None:
    """probe 2026-12-05: a stored exception (a failed future, a cached error) raised or
    logged by the next requests kept its first event id: 3 requests, 1 event."""
    from otel_sentry_bridge.capture.api import capture_exception

    transport = CapturingTransport()
    provider.add_span_processor(SentrySpanProcessor(transport=transport))
    tracer = provider.get_tracer("t")
    ids = []
    for _ in range(3):  # each a request of its own
        with tracer.start_as_current_span("request"):
            try:
                _raise_stored()
            except ValueError as exc:
                ids.append(capture_exception(exc, mechanism="logging"))
                assert capture_exception(exc) == ids[-1]  # the same occurrence: one event
    with tracer.start_as_current_span("request"):  # logged, not raised, in a new trace
        ids.append(capture_exception(_STORED, mechanism="logging"))
    assert provider.force_flush(5000)
    assert len(set(ids)) == 4 and None not in ids
    assert sorted(event["event_id"] for event in transport.events) == sorted(ids)


def _log_and_reraise() -> None:
    from otel_sentry_bridge.capture.api import capture_exception

    try:
        _fail()
    except ValueError as exc:
        capture_exception(exc, mechanism="logging")  # what log.exception does
        raise


def test_an_exception_logged_then_re_raised_through_more_frames_is_one_event(
    provider: TracerProvider,
) -> None:
    """Its traceback grows as it propagates; it is still the same occurrence (probe
    2026-12-05: a check on the traceback's head made it two events)."""
    from otel_sentry_bridge.capture.api import capture_exception

    transport = CapturingTransport()
    provider.add_span_processor(SentrySpanProcessor(transport=transport))
    with provider.get_tracer("t").start_as_current_span("request"):
        try:
            _log_and_reraise()
        except ValueError as exc:
            first = capture_exception(exc, mechanism="django", handled=False)
    try:
        _log_and_reraise()  # outside any trace: a script's crash after its log line
    except ValueError as exc:
        logged = capture_exception(exc)
        assert capture_exception(exc, mechanism="excepthook", handled=False) == logged
    assert provider.force_flush(5000)
    assert first is not None and len(transport.events) == 2


def test_a_captured_exception_stays_picklable_and_its_copy_counts_as_captured(
    provider: TracerProvider,
) -> None:
    """A Celery task's exception goes to its parent process pickled: the mark must not make
    it unpicklable (a traceback object did), and the parent's copy must read as captured."""
    import pickle

    from otel_sentry_bridge.capture.api import capture_exception, captured_event_id

    provider.add_span_processor(SentrySpanProcessor(transport=CapturingTransport()))
    with provider.get_tracer("t").start_as_current_span("task"):
        try:
            _fail()
        except ValueError as exc:
            event_id = capture_exception(exc)
            copy = pickle.loads(pickle.dumps(exc))
    assert event_id is not None
    assert captured_event_id(copy) == event_id


def test_a_mark_made_with_the_callers_span_context_is_that_traces(
    provider: TracerProvider,
) -> None:
    """``mark_captured(context=...)`` (the capture's one look-up of the current span) marks the
    occurrence in that context's trace: captured there, a new occurrence in another trace."""
    from otel_sentry_bridge.capture.api import captured_event_id, mark_captured

    tracer = provider.get_tracer("t")
    exc = ValueError("boom")
    with tracer.start_as_current_span("first") as first:
        mark_captured(exc, "e" * 32, context=first.get_span_context())
        assert captured_event_id(exc) == "e" * 32
    with tracer.start_as_current_span("second") as second:
        assert captured_event_id(exc) is None
        with tracer.start_as_current_span("other"):
            mark_captured(exc, "f" * 32, context=second.get_span_context())
        assert captured_event_id(exc) == "f" * 32


def test_a_sampled_out_error_keeps_the_resources_environment_release_and_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    from otel_sentry_bridge.capture.api import capture_exception

    resource = Resource.create(
        {"service.name": "shop", "deployment.environment.name": "staging", "service.version": "1.4"}
    )
    sampled_out = TracerProvider(sampler=ALWAYS_OFF, resource=resource)
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: sampled_out)  # the global one
    transport = CapturingTransport()
    processor = SentrySpanProcessor(transport=transport)
    sampled_out.add_span_processor(processor)
    with sampled_out.get_tracer("t").start_as_current_span("checkout"):
        try:
            _fail()
        except ValueError as exc:
            capture_exception(exc)
    assert processor.force_flush(5000)
    (event,) = transport.events
    assert (event["environment"], event["release"]) == ("staging", "1.4")
    assert event["tags"]["service.name"] == "shop"
    sampled_out.shutdown()


def test_an_error_logged_past_the_spans_event_budget_keeps_the_request_details(
    provider: TracerProvider,
) -> None:
    from otel_sentry_bridge.capture.api import capture_message

    transport = CapturingTransport()
    provider.add_span_processor(SentrySpanProcessor(transport=transport))
    attributes = {"http.request.method": "GET", "http.route": "/orders/<int:id>/"}
    attributes |= {"url.full": "http://shop.local/orders/7/"}
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("GET /orders/<int:id>/", attributes=attributes) as span:
        span.set_attribute("http.response.status_code", 500)
        capture_message("stock service down", on_span=False)  # what a spent budget does
    assert provider.force_flush(5000)
    (event,) = transport.events
    assert event["transaction"] == "/orders/{id}/"
    assert event["request"]["url"] == "http://shop.local/orders/7/"


def test_two_processors_on_one_provider_each_get_whole_events(provider: TracerProvider) -> None:
    # e.g. two DSNs, or a test's CapturingTransport next to the real processor: what the hooks
    # leave in the store (mechanism, logentry, request, local variables) is for both.
    from otel_sentry_bridge.capture.api import capture_exception

    transports = [CapturingTransport(), CapturingTransport()]
    for transport in transports:
        provider.add_span_processor(SentrySpanProcessor(transport=transport))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("request"):
        for index in range(3):
            try:
                _fail()
            except ValueError as exc:
                capture_exception(
                    exc, mechanism="logging", logentry=("item %s", [str(index)], f"item {index}")
                )
    assert provider.force_flush(5000)
    for transport in transports:
        assert sorted(e["logentry"]["formatted"] for e in transport.events) == [
            "item 0",
            "item 1",
            "item 2",
        ]
        assert {e["exception"]["values"][-1]["mechanism"]["type"] for e in transport.events} == {
            "logging"
        }


def test_same_exception_type_in_two_traces_gives_two_events(provider: TracerProvider) -> None:
    transport = CapturingTransport()
    provider.add_span_processor(SentrySpanProcessor(transport=transport))
    first, second = _record_error(provider), _record_error(provider)
    assert provider.force_flush(5000)
    trace_ids = {e["contexts"]["trace"]["trace_id"] for e in transport.events}
    assert trace_ids == {format(first, "032x"), format(second, "032x")}


def test_on_end_does_not_wait_for_a_slow_server(provider: TracerProvider) -> None:
    release = threading.Event()

    class Stuck(CapturingTransport):
        def send(self, envelope: bytes) -> SendResult:
            release.wait(10)
            return super().send(envelope)

    transport = Stuck()
    processor = SentrySpanProcessor(transport=transport, queue_size=10)
    provider.add_span_processor(processor)
    try:
        started = time.monotonic()
        for _ in range(150):  # more than the queues hold: the extra ones are counted, not waited on
            _record_error(provider)
        assert time.monotonic() - started < 5  # nobody waited for the stuck send (10 s)
        # At most 10 spans queued + 100 envelopes in the outbox + one in each thread's hands.
        assert processor.pipeline.lost[("queue_overflow", "error")] >= 150 - 112
        assert not processor.force_flush(50)
    finally:
        release.set()
    assert processor.force_flush(5000)
    lost = processor.pipeline.lost[("queue_overflow", "error")]
    assert len(transport.events) + lost == 150


def test_shutdown_drains_within_its_timeout_and_is_idempotent(provider: TracerProvider) -> None:
    transport = CapturingTransport()
    processor = SentrySpanProcessor(transport=transport, shutdown_timeout=5)
    provider.add_span_processor(processor)
    for _ in range(5):
        _record_error(provider)
    processor.shutdown()
    assert len(transport.events) == 5
    processor.shutdown()
    _record_error(provider)  # after shutdown: ignored, no error
    assert len(transport.events) == 5


def test_shutdown_gives_up_after_its_timeout(
    provider: TracerProvider, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    class Stuck(CapturingTransport):
        def send(self, envelope: bytes) -> SendResult:
            release.wait(10)
            return super().send(envelope)

    processor = SentrySpanProcessor(transport=Stuck(), shutdown_timeout=0.2)
    provider.add_span_processor(processor)
    for _ in range(3):
        _record_error(provider)
    try:
        with caplog.at_level(logging.WARNING, "otel_sentry_bridge"):
            processor.shutdown()
        assert "not sent before shutdown" in caplog.text
        assert processor.pipeline.lost[("network_error", "error")] >= 1
    finally:
        release.set()


def test_malformed_dsn_argument_raises_without_showing_the_key() -> None:
    with pytest.raises(InvalidDsn) as info:
        SentrySpanProcessor(dsn="https://topsecretkey@sentry.example.com/not-a-number")
    assert "topsecretkey" not in str(info.value)


def test_malformed_dsn_from_environment_disables_with_a_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, provider: TracerProvider
) -> None:
    monkeypatch.setenv("SENTRY_DSN", "ftp://topsecretkey@host/1")
    with caplog.at_level(logging.ERROR, "otel_sentry_bridge"):
        processor = SentrySpanProcessor()
    assert not processor.enabled
    assert "SENTRY_DSN" in caplog.text and "topsecretkey" not in caplog.text
    provider.add_span_processor(processor)
    _record_error(provider)  # no crash, nothing queued


def test_no_dsn_means_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    assert not SentrySpanProcessor().enabled


def test_dsn_from_environment(monkeypatch: pytest.MonkeyPatch, sentry_receiver: Any) -> None:
    monkeypatch.setenv("SENTRY_DSN", sentry_receiver.dsn)
    monkeypatch.setenv("SENTRY_ENVIRONMENT", "staging")
    monkeypatch.setenv("SENTRY_RELEASE", "shop@3")
    provider = TracerProvider()
    provider.add_span_processor(SentrySpanProcessor())
    _record_error(provider)
    provider.shutdown()
    (event,) = sentry_receiver.wait_for_events(1)
    assert (event["environment"], event["release"]) == ("staging", "shop@3")


def test_http_error_is_logged_once_and_never_raised(
    provider: TracerProvider, sentry_receiver: SentryReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    sentry_receiver.respond_with(400, body=b'{"detail":"bad event"}')
    sentry_receiver.respond_with(400, body=b'{"detail":"bad event"}')
    processor = SentrySpanProcessor(dsn=sentry_receiver.dsn)
    provider.add_span_processor(processor)
    with caplog.at_level(logging.WARNING, "otel_sentry_bridge"):
        _record_error(provider)
        _record_error(provider)
        assert processor.force_flush(5000)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "bad event" in warnings[0].getMessage()
    assert processor.pipeline.lost[("send_error", "error")] == 2


def test_a_request_thread_steps_aside_only_while_half_the_queue_waits(
    provider: TracerProvider,
) -> None:
    """Under a burst the worker must get the GIL: ``on_end`` sleeps briefly (releasing it)
    once half the queue is waiting, never before."""
    from otel_sentry_bridge.bridge import HAND_OVER_S

    busy = threading.Event()
    release = threading.Event()

    def stuck(event: Any) -> Any:  # runs on the worker thread: holds it
        busy.set()
        release.wait(10)
        return event

    processor = SentrySpanProcessor(transport=CapturingTransport(), queue_size=4, before_send=stuck)
    pauses: list[float] = []
    processor.bridge.step_aside = pauses.append
    provider.add_span_processor(processor)
    try:
        _record_error(provider)  # taken by the (stuck) worker
        assert busy.wait(5)
        _record_error(provider)  # 1 waiting of 4
        assert pauses == []
        _record_error(provider)  # 2 waiting: half the queue
        assert pauses == [HAND_OVER_S]
    finally:
        release.set()
    assert processor.force_flush(5000)


_KEY = "5ec7e75ec7e75ec7e75ec7e75ec7e75e"
_SECRET = _KEY[::-1]
_OTHER_KEY = "0123456789abcdef0123456789abcdef"
_REFUSED_BY_REQUESTS = [
    f"https://{_KEY}@sentry.example.com /1",  # requests: InvalidURL
    f"https://{_KEY}\t@sentry.example.com/1",  # urlsplit drops the tab
    f"https://{_KEY}@*.sentry.example.com/1",  # requests: InvalidURL
    f"https://{_KEY},x@sentry.example.com/1",
]


@pytest.mark.parametrize("dsn", _REFUSED_BY_REQUESTS)
def test_dsn_argument_that_requests_would_refuse_raises_invalid_dsn(dsn: str) -> None:
    with pytest.raises(InvalidDsn) as info:
        SentrySpanProcessor(dsn=dsn)
    assert _KEY not in str(info.value)


@pytest.mark.parametrize("dsn", _REFUSED_BY_REQUESTS)
def test_sentry_dsn_that_requests_would_refuse_disables_with_a_log(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    provider: TracerProvider,
    dsn: str,
) -> None:
    monkeypatch.setenv("SENTRY_DSN", dsn)
    with caplog.at_level(logging.ERROR, "otel_sentry_bridge"):
        processor = SentrySpanProcessor()
    assert not processor.enabled
    assert "SENTRY_DSN is invalid" in caplog.text and _KEY not in caplog.text
    provider.add_span_processor(processor)
    _record_error(provider)  # no crash, nothing queued


def _refusing_transport(*args: object, **kwargs: object) -> None:
    """requests puts a refused header's value, the key, into its message."""
    raise requests.exceptions.InvalidHeader(f"Invalid header value: Sentry sentry_key={_KEY}")


def test_any_error_building_the_transport_for_a_dsn_argument_is_an_invalid_dsn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(opening, "HttpTransport", _refusing_transport)
    with pytest.raises(InvalidDsn) as info:
        SentrySpanProcessor(dsn=f"https://{_KEY}@sentry.example.com/1")
    error = info.value
    assert "InvalidHeader" in str(error) and _KEY not in str(error)
    assert error.__cause__ is None and error.__suppress_context__  # no key in a traceback


def test_any_error_building_the_transport_for_sentry_dsn_disables_with_a_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(opening, "HttpTransport", _refusing_transport)
    monkeypatch.setenv("SENTRY_DSN", f"https://{_KEY}@sentry.example.com/1")
    with caplog.at_level(logging.ERROR, "otel_sentry_bridge"):
        processor = SentrySpanProcessor()
    assert not processor.enabled
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is None
    assert "SENTRY_DSN" in caplog.text and _KEY not in caplog.text


def _auth_echoing_server(httpserver: HTTPServer, status: int) -> str:
    """A server that refuses every envelope with ``status``, quoting the X-Sentry-Auth header
    it got (as Bugsink does for a wrong project id) and another key; returns its DSN."""

    def reply(request: Request) -> Response:
        auth = request.headers.get("X-Sentry-Auth", "")
        return Response(f"bad project for {auth}; try sentry_key={_OTHER_KEY}", status=status)

    httpserver.expect_request("/api/42/envelope/", method="POST").respond_with_handler(reply)
    return f"http://{_KEY}:{_SECRET}@127.0.0.1:{httpserver.port}/42"


@pytest.mark.parametrize("status", [401, 403])
def test_rejection_warning_hides_the_keys_the_server_echoes(
    provider: TracerProvider,
    httpserver: HTTPServer,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    processor = SentrySpanProcessor(dsn=_auth_echoing_server(httpserver, status))
    provider.add_span_processor(processor)
    with caplog.at_level(logging.WARNING, "otel_sentry_bridge"):
        _record_error(provider)
        assert processor.force_flush(5000)
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    message = warning.getMessage()
    assert f"rejected an event: HTTP {status}" in message
    assert "sentry_key=***" in message and "sentry_secret=***" in message
    for key in (_KEY, _SECRET, _OTHER_KEY):
        assert key not in caplog.text


class _HeldTransport(CapturingTransport):
    """Answers 200, but only once ``release`` is set: envelopes queue up behind the first."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.sending = threading.Event()

    def send(self, envelope: bytes) -> SendResult:
        self.sending.set()
        self.release.wait(10)
        return super().send(envelope)


def test_small_envelopes_go_as_they_are_unless_they_must_wait(provider: TracerProvider) -> None:
    """Compression costs the host more than it saves while the sender keeps up; envelopes
    that queue up (a burst, an outage) are compressed, so the bounded outbox holds more."""
    transport = _HeldTransport()
    processor = SentrySpanProcessor(transport=transport)
    provider.add_span_processor(processor)
    _record_error(provider)
    assert transport.sending.wait(5)  # the first is in flight, held
    for _ in range(3):
        _record_error(provider)
    assert processor.bridge.flush_conversion(5)
    transport.release.set()
    assert processor.force_flush(5000)
    first, *queued = transport.envelopes
    assert first[:2] != b"\x1f\x8b"
    assert len(queued) == 3
    # The second found the outbox empty (the first was in flight); the others waited.
    assert [e[:2] == b"\x1f\x8b" for e in queued] == [False, True, True]
    assert len(transport.events) == 4

"""Traces and logs to Sentry's OTLP endpoints, through real SDK providers, OpenTelemetry's own
exporters and a real loopback socket; beside a second OTLP receiver standing in for Jaeger."""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.signals import request_started
from django.test import Client
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.capture.log_handler import SpanEventHandler
from otel_sentry_bridge.convert.scrubber import FILTERED
from otel_sentry_bridge.setup import sentry_otlp
from otel_sentry_bridge.setup.config import Settings
from otel_sentry_bridge.setup.instrumentor import SentryBridgeInstrumentor
from otel_sentry_bridge.setup.sentry_otlp import (
    SentryLogsHandler,
    install_sentry_otlp,
    sentry_span_exporter,
    uninstall_sentry_otlp,
)
from otel_sentry_bridge.testing import CapturingTransport
from tests.support.otel_django import InstrumentedDjango
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import free_port
from tests.support.receiver import PUBLIC_KEY
from tests.support.sentry_otlp_receiver import (
    AUTH,
    LOGS_PATH,
    TRACES_PATH,
    OtlpRequest,
    ReceivedLog,
    SentryOtlpReceiver,
    wait_until,
)

PLANTED = "planted-otlp-zq"
SERVICE = "shop-otlp-tests"
TRACES = Settings(otlp_signals=("traces",))
LOGS = Settings(otlp_signals=("logs",))
BOTH = Settings(otlp_signals=("traces", "logs"))


@pytest.fixture
def sentry() -> Iterator[SentryOtlpReceiver]:
    with SentryOtlpReceiver() as receiver:
        yield receiver
    assert receiver.invalid == [], "the receiver got events Sentry would reject"


@pytest.fixture(autouse=True)
def quiet_receivers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process receivers log each request at INFO: exported to one of them, each such
    line would be a new request (a loop that exists only because the receiver runs here)."""
    monkeypatch.setattr(logging.getLogger("werkzeug"), "level", logging.WARNING)


@dataclass
class Otel:
    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    jaeger: OtlpReceiver

    def span_ids(self, span: Any) -> tuple[str, str]:
        context = span.get_span_context()
        return format_trace_id(context.trace_id), format_span_id(context.span_id)


@pytest.fixture
def otel(monkeypatch: pytest.MonkeyPatch) -> Iterator[Otel]:
    """A tracer provider already exporting to a Jaeger stand-in (as the application
    configured it), a logger provider, quick batch exports; all undone afterwards."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "50")
    resource = Resource.create({"service.name": SERVICE})
    with OtlpReceiver() as jaeger:
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=jaeger.traces_endpoint, timeout=5))
        )
        logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        try:
            yield Otel(tracer_provider, logger_provider, jaeger)
        finally:
            uninstall_sentry_otlp()
            tracer_provider.shutdown()
            logger_provider.shutdown()


@pytest.fixture
def app_log(monkeypatch: pytest.MonkeyPatch) -> logging.Logger:
    log = logging.getLogger("shop.checkout")
    monkeypatch.setattr(log, "level", logging.DEBUG)
    return log


def _ours(logger: logging.Logger) -> list[SentryLogsHandler]:
    return [h for h in logger.handlers if isinstance(h, SentryLogsHandler)]


# -- traces ------------------------------------------------------------------------------------


def test_spans_reach_sentry_as_they_reach_jaeger(sentry: SentryOtlpReceiver, otel: Otel) -> None:
    installed = install_sentry_otlp(TRACES, sentry.dsn, otel.tracer_provider)
    assert installed == [f"traces to http://127.0.0.1:{sentry.port}{TRACES_PATH}"]

    tracer = otel.tracer_provider.get_tracer("shop")
    with tracer.start_as_current_span("GET /checkout/", kind=SpanKind.SERVER) as root:
        with tracer.start_as_current_span("SELECT cart"):
            pass
        root.record_exception(ValueError("card declined"))
    trace_id, root_id = otel.span_ids(root)

    def ours(span: Any) -> bool:
        return bool(span.trace_id == trace_id)

    sent = sentry.wait_for_spans(ours, count=2)
    seen = otel.jaeger.wait_for_spans(ours, count=2)
    # The same spans, attributes, events and resource: nothing added, nothing lost.
    assert sorted(sent, key=lambda s: s.span_id) == sorted(seen, key=lambda s: s.span_id)
    (server,) = [s for s in sent if s.span_id == root_id]
    assert server.resource["service.name"] == SERVICE
    assert [e.name for e in server.events] == ["exception"]

    request = sentry.otlp_requests[0]
    assert request.path == TRACES_PATH
    assert request.headers["x-sentry-auth"] == f"sentry sentry_key={PUBLIC_KEY}"
    assert request.headers["content-type"] == "application/x-protobuf"
    assert request.headers["content-encoding"] == "gzip"
    assert sentry.events == []  # spans only: no envelope was sent


def test_installing_twice_adds_nothing(sentry: SentryOtlpReceiver, otel: Otel) -> None:
    assert install_sentry_otlp(BOTH, sentry.dsn, otel.tracer_provider, otel.logger_provider)
    assert install_sentry_otlp(BOTH, sentry.dsn, otel.tracer_provider, otel.logger_provider) == []
    assert len(_ours(logging.getLogger())) == 1

    with otel.tracer_provider.get_tracer("shop").start_as_current_span("once") as span:
        pass
    trace_id, _ = otel.span_ids(span)
    sentry.wait_for_spans(lambda s: s.trace_id == trace_id)
    otel.tracer_provider.force_flush()
    assert len([s for s in sentry.spans() if s.trace_id == trace_id]) == 1


def test_collector_headers_and_certificates_from_the_environment_stay_with_the_collector(
    sentry: SentryOtlpReceiver, otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20collector,x-tenant=7")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/collector-ca.pem")
    exporter = sentry_span_exporter(sentry.dsn, headers={"x-tenant": "sentry-side"})
    otel.tracer_provider.add_span_processor(BatchSpanProcessor(exporter))

    with otel.tracer_provider.get_tracer("shop").start_as_current_span("job") as span:
        pass
    trace_id, _ = otel.span_ids(span)
    sentry.wait_for_spans(lambda s: s.trace_id == trace_id)

    (request,) = sentry.otlp_requests
    assert "authorization" not in request.headers
    assert request.headers["x-tenant"] == "sentry-side"  # given explicitly: kept
    assert request.headers["x-sentry-auth"] == AUTH
    # The collector's CA is not used for Sentry (this version keeps it on the session).
    assert exporter._client._transport._session.verify is True


# -- logs --------------------------------------------------------------------------------------


def test_a_log_line_in_a_span_reaches_sentry_with_that_spans_ids(
    sentry: SentryOtlpReceiver, otel: Otel, app_log: logging.Logger
) -> None:
    installed = install_sentry_otlp(LOGS, sentry.dsn, otel.tracer_provider, otel.logger_provider)
    assert installed == [f"logs (INFO and above) to http://127.0.0.1:{sentry.port}{LOGS_PATH}"]
    (handler,) = _ours(logging.getLogger())
    assert handler.logger_provider is otel.logger_provider

    with otel.tracer_provider.get_tracer("shop").start_as_current_span("checkout") as span:
        app_log.debug("below the level")
        app_log.info("charging order %s", 7, extra={"customer_email": f"{PLANTED}@example.com"})
        try:
            {}["cart"]
        except KeyError:
            app_log.exception("checkout failed for cart %s", 42)
    trace_id, span_id = otel.span_ids(span)
    app_log.warning("last line")  # outside any span

    logs = _logs_until(sentry, "last line")
    assert [log.body for log in logs] == [
        "charging order 7",
        "checkout failed for cart 42",
        "last line",
    ]
    info, error, last = logs
    assert (info.trace_id, info.span_id) == (trace_id, span_id)
    assert (error.trace_id, error.span_id) == (trace_id, span_id)
    assert (last.trace_id, last.span_id) == ("", "")
    assert (info.severity_number, info.severity_text) == (9, "INFO")
    assert (error.severity_number, error.severity_text) == (17, "ERROR")
    assert info.scope == "shop.checkout"
    assert info.resource["service.name"] == SERVICE
    assert "customer_email" not in info.attributes  # extra= values stay out
    assert error.attributes["exception.type"] == "KeyError"
    assert '{}["cart"]' in error.attributes["exception.stacktrace"]
    assert all(PLANTED.encode() not in r.body for r in sentry.otlp_requests)
    assert {r.path for r in sentry.otlp_requests} == {LOGS_PATH}
    assert all(r.headers["x-sentry-auth"] == AUTH for r in sentry.otlp_requests)


def test_secrets_in_log_messages_are_filtered_before_they_leave(
    sentry: SentryOtlpReceiver, otel: Otel, app_log: logging.Logger
) -> None:
    install_sentry_otlp(LOGS, sentry.dsn, otel.tracer_provider, otel.logger_provider)
    app_log.info("login with token=%s", PLANTED)
    app_log.warning("connecting to postgresql://app:%s@db/shop", PLANTED)
    app_log.info("last line")
    logs = _logs_until(sentry, "last line")
    assert [log.body for log in logs] == [
        "login with token=[Filtered]",
        "connecting to postgresql://app:[Filtered]@db/shop",
        "last line",
    ]
    assert all(PLANTED.encode() not in r.body for r in sentry.otlp_requests)


def _logs_until(sentry: SentryOtlpReceiver, last_body: str) -> list[ReceivedLog]:
    """Every log record received, once the one with ``last_body`` (logged last) arrived: the
    batch processor exports in order, on one thread."""
    sentry.wait_for_logs(lambda log: log.body == last_body)
    return sentry.logs()


def test_records_of_the_bridge_and_the_http_stack_are_never_exported(
    sentry: SentryOtlpReceiver, otel: Otel, app_log: logging.Logger
) -> None:
    install_sentry_otlp(LOGS, sentry.dsn, otel.tracer_provider, otel.logger_provider)

    logging.getLogger("otel_sentry_bridge.deliver").warning("bridge warning")
    logging.getLogger("urllib3.connectionpool").warning("Retrying after connection broken")
    logging.getLogger("requests").error("requests error")
    logging.getLogger("opentelemetry.exporter.otlp").error("Failed to export")
    app_log.warning("last line")

    assert [log.body for log in _logs_until(sentry, "last line")] == ["last line"]


def test_with_the_applications_own_otel_logging_ours_only_adds_the_processor(
    sentry: SentryOtlpReceiver, otel: Otel, app_log: logging.Logger
) -> None:
    # OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED=true: OTel's handler, at NOTSET,
    # already feeds the provider. The level and the feedback loggers still hold.
    with pytest.warns(DeprecationWarning):
        theirs = LoggingHandler(logging.NOTSET, logger_provider=otel.logger_provider)
    root = logging.getLogger()
    root.addHandler(theirs)
    try:
        install_sentry_otlp(LOGS, sentry.dsn, otel.tracer_provider, otel.logger_provider)
        assert _ours(root) == []

        app_log.debug("below the level")
        logging.getLogger("urllib3.connectionpool").warning("transport warning")
        app_log.info("last line")

        logs = _logs_until(sentry, "last line")
    finally:
        root.removeHandler(theirs)
    assert [log.body for log in logs] == ["last line"]


def test_without_a_logger_provider_one_of_our_own_carries_the_tracer_providers_resource(
    sentry: SentryOtlpReceiver, otel: Otel, app_log: logging.Logger
) -> None:
    from opentelemetry._logs import get_logger_provider

    assert install_sentry_otlp(LOGS, sentry.dsn, otel.tracer_provider)
    (handler,) = _ours(logging.getLogger())
    assert handler.logger_provider is not get_logger_provider()  # never made global

    app_log.info("last line")
    (log,) = _logs_until(sentry, "last line")
    assert log.resource["service.name"] == SERVICE


def test_the_handler_comes_back_after_dictconfig_and_reaches_non_propagating_loggers(
    sentry: SentryOtlpReceiver, otel: Otel, instrumented_django: InstrumentedDjango
) -> None:
    # (instrumented_django: Django's own request_started receivers need its settings)
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    install_sentry_otlp(LOGS, sentry.dsn, otel.tracer_provider, otel.logger_provider)
    try:
        # What Django's LOGGING typically does after instrumentation ran.
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {"null": {"class": "logging.NullHandler"}},
                "root": {"handlers": ["null"], "level": "WARNING"},
                "loggers": {
                    "shop.private": {"handlers": ["null"], "level": "INFO", "propagate": False},
                    "urllib3.private": {"handlers": ["null"], "propagate": False},
                },
            }
        )
        assert _ours(root) == []
        request_started.send(sender=None)  # the per-request upkeep
        assert len(_ours(root)) == 1
        assert len(_ours(logging.getLogger("shop.private"))) == 1
        assert _ours(logging.getLogger("urllib3.private")) == []  # a feedback-loop logger

        logging.getLogger("shop.private").info("last line")
        (log,) = _logs_until(sentry, "last line")
        assert log.scope == "shop.private"
    finally:
        for name in ("shop.private", "urllib3.private"):
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
            logger.setLevel(logging.NOTSET)
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_a_warning_meeting_no_other_handler_is_still_printed_once(
    sentry: SentryOtlpReceiver, otel: Otel, capsys: pytest.CaptureFixture[str]
) -> None:
    # logging prints a WARNING that meets no handler (lastResort); ours and the bridge's
    # handler must not silence it, nor print it twice.
    alone = logging.getLogger("tests.otlp.alone")
    saved = alone.handlers[:], alone.propagate
    alone.handlers = [
        SpanEventHandler(),
        SentryLogsHandler(logging.INFO, otel.logger_provider),
    ]
    alone.propagate = False
    try:
        alone.info("an info line")
        alone.warning("stock low for sku %s", 7)
    finally:
        alone.handlers, alone.propagate = saved

    err = capsys.readouterr().err
    assert err.count("stock low for sku 7") == 1
    assert "an info line" not in err


# -- failures of the OTLP endpoint -------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    ["500", "429 Retry-After: 1", "429 Retry-After: 60", "connection refused", "hanging"],
)
def test_a_failing_endpoint_blocks_nothing_and_errors_still_arrive(
    failure: str,
    sentry: SentryOtlpReceiver,
    otel: Otel,
    app_log: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if failure != "hanging":
        monkeypatch.setattr(sentry_otlp, "EXPORT_TIMEOUT", 2.5)  # a quicker teardown
    # The log exporter's logger drops a message repeated within 20 s (SDK's DuplicateFilter),
    # however many tests ago it was logged: forget what the previous test made it say.
    for log_filter in logging.getLogger(_LOG_EXPORTER_LOGGER).filters:
        monkeypatch.delattr(log_filter, "last_log", raising=False)
    transport = CapturingTransport()
    otel.tracer_provider.add_span_processor(SentrySpanProcessor(transport=transport))
    dsn = sentry.dsn
    if failure.startswith(("500", "429")):
        status, _, retry_after = failure.partition(" Retry-After: ")
        sentry.otlp_reply(int(status), {"Retry-After": retry_after} if retry_after else None)
    elif failure == "connection refused":
        dsn = f"http://{PUBLIC_KEY}@127.0.0.1:{free_port()}/42"
    install_sentry_otlp(BOTH, dsn, otel.tracer_provider, otel.logger_provider)
    tracer = otel.tracer_provider.get_tracer("shop")
    if failure == "hanging":
        sentry.hold_otlp()
        with tracer.start_as_current_span("first request"):
            app_log.info("first line")
        sentry.wait_for_in_flight(1)  # an export is now stuck on the socket

    with caplog.at_level(logging.WARNING, logger="opentelemetry"):
        # The application's calls return: logging and ending spans only enqueue.
        with tracer.start_as_current_span("checkout") as span:
            app_log.info("charging order %s", 7)
            try:
                raise ValueError("card declined")
            except ValueError as exc:
                span.record_exception(exc)
        trace_id, _ = otel.span_ids(span)

        # ... and the bridge's error event is delivered, whatever Sentry's OTLP side does.
        (event,) = transport.wait_for(1, timeout=10)
        assert event["contexts"]["trace"]["trace_id"] == trace_id

        if failure == "hanging":
            assert sentry.in_flight >= 1, "the export should still be held"
            sentry.release_otlp()
            sentry.wait_for_spans(lambda s: s.trace_id == trace_id)
            sentry.wait_for_logs(lambda log: log.body == "charging order 7")
            return
        _check_retries(failure, sentry, caplog)


_LOG_EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http._log_exporter"


def _exporter_said(caplog: pytest.LogCaptureFixture, text: str, kind: str) -> None:
    def said() -> bool:
        return any(text in r.getMessage() and kind in r.getMessage() for r in caplog.records)

    wait_until(said, f"the {kind} exporter to log {text!r}")


def _check_retries(
    failure: str, sentry: SentryOtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """What OpenTelemetry's exporter (1.45) does on its own thread, as documented in
    docs/otlp.md."""

    def of(signal: str) -> list[OtlpRequest]:
        return [r for r in sentry.otlp_requests if r.signal == signal]

    if failure == "500":  # not retryable: one request, one error line, the batch dropped
        for kind in ("spans", "logs"):
            _exporter_said(caplog, "Failed to export", f"{kind} batch code: 500")
        assert len(of("traces")) == 1 and len(of("logs")) == 1
    elif failure == "429 Retry-After: 1":  # retried after the Retry-After delay
        sentry.wait_for_otlp_requests(lambda r: r.signal == "traces", count=2)
        sentry.wait_for_otlp_requests(lambda r: r.signal == "logs", count=2)
        _exporter_said(caplog, "retrying in 1.00s", "spans")
    elif failure == "429 Retry-After: 60":  # longer than the deadline: dropped at once
        for kind in ("spans", "logs"):
            _exporter_said(caplog, "due to timeout, max retries or shutdown", f"{kind} batch")
        assert len(of("traces")) == 1 and len(of("logs")) == 1
    else:  # connection refused: retried with backoff until the deadline, then dropped
        for kind in ("spans", "logs"):
            _exporter_said(caplog, "Transient error", f"{kind} batch")
            _exporter_said(caplog, "due to timeout, max retries or shutdown", f"{kind} batch")


# -- what goes out ------------------------------------------------------------------------------


def test_locals_request_details_and_users_stay_out_of_the_otlp_exports(
    sentry: SentryOtlpReceiver,
    instrumented_django: InstrumentedDjango,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "50")
    transport = CapturingTransport()
    bridge = SentrySpanProcessor(
        transport=transport, include_local_variables=True, send_default_pii=True
    )
    both = SynchronousMultiSpanProcessor()
    both.add_span_processor(bridge)
    both.add_span_processor(BatchSpanProcessor(sentry_span_exporter(sentry.dsn)))
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    install_sentry_otlp(LOGS, sentry.dsn, instrumented_django.provider, logger_provider)
    log = logging.getLogger("shop.views")
    handler = SpanEventHandler(settings=bridge.settings)
    log.addHandler(handler)
    try:
        with instrumented_django.processor(both):
            client = Client(raise_request_exception=False)
            client.cookies["sessionid"] = f"{PLANTED}-cookie"
            client.post(
                "/leaky-locals/", {"name": f"{PLANTED}-form"}, HTTP_X_NOTE=f"{PLANTED}-header"
            )
            client.get("/log-exception/")
            client.get("/breadcrumbs/")  # INFO and WARNING lines, then an exception
            client.get("/log-error/")  # an ERROR line without an exception
            assert bridge.force_flush(10_000)
            events = list(transport.events)
            local_spans = list(instrumented_django.exporter.get_finished_spans())
        logger_provider.force_flush()
    finally:
        log.removeHandler(handler)
        uninstall_sentry_otlp()
        logger_provider.shutdown()

    # The bridge had the planted values (locals, form, cookie, header) for Sentry's event...
    assert len(events) == 4
    assert PLANTED in repr(events[0])
    # ... and none of them went out over OTLP.
    assert [r.signal for r in sentry.otlp_requests if PLANTED.encode() in r.body] == []
    sent = sentry.wait_for_spans(count=len(local_spans))
    sentry.wait_for_logs(lambda log: log.body.startswith("payment gateway answered"))
    logs = sentry.logs()
    # django.request logs the failed request with extra={"request": ..., "status_code": ...}:
    # extra= values stay out, as they do for every record.
    assert "django.request" in {log.scope for log in logs}
    assert all(log.attributes.keys() <= LOG_ATTRIBUTES for log in logs), logs
    # The Sentry copy of each span is the SDK's own: our export path adds no attribute, and
    # removes the client's address (send_default_pii is the bridge's, not the exporter's).
    by_id = {format_span_id(s.context.span_id): s for s in local_spans}
    assert any("net.peer.ip" in (s.attributes or {}) for s in local_spans)
    for span in sent:
        local = by_id[span.span_id]
        assert span.attributes == {
            k: v for k, v in (local.attributes or {}).items() if k not in CLIENT_ADDRESS
        }
        assert [(e.name, e.attributes) for e in span.events] == [
            (e.name, dict(e.attributes or {})) for e in local.events
        ]
    # Span events, as the bridge's capture writes them: exceptions carry OpenTelemetry's
    # exception.* and the event id; log records (breadcrumbs and error messages) their
    # formatted message, level and logger. Sentry drops span events at ingestion anyway.
    names = {event.name: set() for span in sent for event in span.events}
    for span in sent:
        for event in span.events:
            names[event.name] |= set(event.attributes)
    assert set(names) == {"exception", "log"}
    assert {k for k in names["exception"] if not k.startswith("exception.")} == {"sentry.event_id"}
    assert names["log"] <= {
        "log.message",
        "sentry.level",
        "sentry.logger",
        "sentry.event_id",
        "sentry.send",
    }


# Where the instrumentations put the client's address (old and stable conventions).
CLIENT_ADDRESS = {"net.peer.ip", "net.peer.port", "client.address", "client.port"}

# What SentryLogsHandler exports as log attributes: the record's code location and exception.
LOG_ATTRIBUTES = {
    "code.file.path",
    "code.function.name",
    "code.line.number",
    "exception.type",
    "exception.message",
    "exception.stacktrace",
}


# -- scrubbed before it leaves -----------------------------------------------------------------


def _leaky_request(otel: Otel, app_log: logging.Logger) -> str:
    """A request as the instrumentations and the bridge record it, with a secret everywhere
    the privacy probe found one; returns its trace id."""
    tracer = otel.tracer_provider.get_tracer("shop")
    events = SpanEventHandler()  # the bridge's own "log" span events
    app_log.addHandler(events)
    try:
        with tracer.start_as_current_span(
            "GET /login",
            kind=SpanKind.SERVER,
            attributes={
                "http.method": "GET",
                "http.route": "/login",
                "http.url": (
                    f"http://shop.example/login?password={PLANTED}&api_key={PLANTED}&q=shoes"
                    f"&token={PLANTED}&access_token={PLANTED}&client_secret={PLANTED}"
                ),
                "http.user_agent": f"curl/8.0 token={PLANTED}",
                "http.request.header.authorization": (f"Bearer {PLANTED}",),
                "net.peer.ip": "203.0.113.9",
                "payment.iban": PLANTED,
            },
        ) as server:
            with tracer.start_as_current_span(
                "POST",
                kind=SpanKind.CLIENT,
                attributes={
                    "http.method": "POST",
                    "http.url": f"https://psp.example/v1/charge?token={PLANTED}",
                    "net.peer.name": "psp.example",
                },
            ):
                pass
            with tracer.start_as_current_span(
                "SET",
                kind=SpanKind.CLIENT,
                attributes={
                    "db.system": "postgresql",
                    "db.statement": f"SET api_token='{PLANTED}'",
                },
            ):
                pass
            app_log.warning("retrying with token=%s", PLANTED)
            try:
                raise ValueError(f"password={PLANTED} for postgres://app:{PLANTED}@db/shop")
            except ValueError as exc:
                server.record_exception(exc)
                app_log.error("checkout failed", exc_info=True)
            server.set_status(StatusCode.ERROR, f"token={PLANTED}")
    finally:
        app_log.removeHandler(events)
    return otel.span_ids(server)[0]


def test_secrets_never_reach_sentry_over_otlp_while_jaeger_gets_the_spans_as_they_are(
    sentry: SentryOtlpReceiver, otel: Otel, app_log: logging.Logger
) -> None:
    settings = Settings(otlp_signals=("traces", "logs"), denylist=("iban",))
    install_sentry_otlp(settings, sentry.dsn, otel.tracer_provider, otel.logger_provider)

    trace_id = _leaky_request(otel, app_log)

    def ours(span: Any) -> bool:
        return bool(span.trace_id == trace_id)

    sent = {s.name: s for s in sentry.wait_for_spans(ours, count=3)}
    seen = {s.name: s for s in otel.jaeger.wait_for_spans(ours, count=3)}
    logs = _logs_until(sentry, "checkout failed")

    # Nothing planted left for Sentry, in any request of either signal ...
    assert {r.signal for r in sentry.otlp_requests} == {"traces", "logs"}
    assert [r.signal for r in sentry.otlp_requests if PLANTED.encode() in r.body] == []
    # ... while the application's own exporter is untouched.
    assert PLANTED in seen["GET /login"].attributes["http.url"]
    assert seen["GET /login"].attributes["net.peer.ip"] == "203.0.113.9"
    assert PLANTED in seen["SET"].attributes["db.statement"]

    # What is not secret arrives as it was.
    server = sent["GET /login"]
    assert server.attributes["http.route"] == "/login"
    assert server.attributes["http.url"].startswith("http://shop.example/login?password=")
    assert "q=shoes" in server.attributes["http.url"]
    assert server.attributes["payment.iban"] == FILTERED  # the bridge's denylist
    assert "net.peer.ip" not in server.attributes  # the client, without send_default_pii
    assert "http.request.header.authorization" not in server.attributes
    assert server.status_code == "ERROR"
    # The same events as Jaeger's: the bridge's "log" event of the warning, then the
    # exceptions (record_exception's, and the handler's for the error line).
    assert [e.name for e in server.events] == [e.name for e in seen["GET /login"].events]
    assert [e.name for e in server.events][:2] == ["log", "exception"]
    assert server.events[0].attributes["log.message"] == f"retrying with token={FILTERED}"
    exception = server.events[1].attributes
    assert exception["exception.type"] == "ValueError"
    assert "postgres://app:" in exception["exception.message"]
    assert "Traceback" in exception["exception.stacktrace"]
    assert sent["POST"].attributes["net.peer.name"] == "psp.example"  # the server called
    assert sent["POST"].attributes["http.url"].startswith("https://psp.example/v1/charge?token=")
    assert sent["SET"].attributes["db.statement"].startswith("SET api_token")
    assert [log.body for log in logs] == [f"retrying with token={FILTERED}", "checkout failed"]
    assert logs[1].attributes["exception.type"] == "ValueError"
    assert "Traceback" in logs[1].attributes["exception.stacktrace"]


def test_with_send_default_pii_the_client_address_goes_and_credentials_still_do_not(
    sentry: SentryOtlpReceiver, otel: Otel, app_log: logging.Logger
) -> None:
    settings = Settings(otlp_signals=("traces",), send_default_pii=True)
    install_sentry_otlp(settings, sentry.dsn, otel.tracer_provider)

    trace_id = _leaky_request(otel, app_log)

    (server,) = sentry.wait_for_spans(lambda s: s.trace_id == trace_id and s.kind == "SERVER")
    assert server.attributes["net.peer.ip"] == "203.0.113.9"
    assert server.attributes["http.request.header.authorization"] == FILTERED
    assert server.attributes["payment.iban"] == PLANTED  # not in the default words
    assert PLANTED not in server.attributes["http.url"]


def test_by_hand_the_exporters_take_the_bridges_settings_from_the_environment(
    sentry: SentryOtlpReceiver, otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SENTRY_DENYLIST", "iban, bic")
    otel.tracer_provider.add_span_processor(BatchSpanProcessor(sentry_span_exporter(sentry.dsn)))
    attributes = {"payment.iban": PLANTED, "payment.bic": PLANTED, "net.peer.ip": "203.0.113.9"}
    tracer = otel.tracer_provider.get_tracer("shop")
    with tracer.start_as_current_span("pay", kind=SpanKind.SERVER, attributes=attributes) as span:
        pass
    trace_id, _ = otel.span_ids(span)

    (sent,) = sentry.wait_for_spans(lambda s: s.trace_id == trace_id)
    assert sent.attributes == {"payment.iban": FILTERED, "payment.bic": FILTERED}


def test_extras_of_the_applications_own_otel_logging_are_scrubbed_on_the_way_to_sentry(
    sentry: SentryOtlpReceiver, otel: Otel, app_log: logging.Logger
) -> None:
    with pytest.warns(DeprecationWarning):
        theirs = LoggingHandler(logging.NOTSET, logger_provider=otel.logger_provider)
    root = logging.getLogger()
    root.addHandler(theirs)
    try:
        install_sentry_otlp(LOGS, sentry.dsn, otel.tracer_provider, otel.logger_provider)
        app_log.info("login with token=%s", PLANTED, extra={"api_token": PLANTED, "order_id": 7})
        (log,) = _logs_until(sentry, f"login with token={FILTERED}")
    finally:
        root.removeHandler(theirs)
    assert log.attributes["api_token"] == FILTERED
    assert log.attributes["order_id"] == 7
    assert all(PLANTED.encode() not in r.body for r in sentry.otlp_requests)


class _UnreadableSpan(ReadableSpan):
    @property
    def attributes(self) -> Any:
        raise RuntimeError("an instrumentation's broken span")


def test_a_span_that_cannot_be_scrubbed_or_encoded_is_a_failed_export_not_an_exception(
    sentry: SentryOtlpReceiver, otel: Otel
) -> None:
    exporter = sentry_span_exporter(sentry.dsn)
    with otel.tracer_provider.get_tracer("shop").start_as_current_span("fine") as span:
        pass
    unreadable = _UnreadableSpan(name="unreadable", context=span.get_span_context())
    assert exporter.export([unreadable]) is SpanExportResult.SUCCESS  # nothing left to send
    assert sentry.otlp_requests == []
    no_context = ReadableSpan(name="no context")  # the encoder cannot write it
    assert exporter.export([no_context]) is SpanExportResult.FAILURE
    assert exporter.export(_UnreadableBatch([span])) is SpanExportResult.FAILURE
    assert sentry.otlp_requests == []
    exporter.shutdown()


class _UnreadableBatch(list[Any]):
    def __iter__(self) -> Any:
        raise RuntimeError("a batch that cannot be read")


# -- zero-code wiring and robustness -------------------------------------------------------------


def test_the_instrumentor_installs_the_signals_and_says_so(
    sentry: SentryOtlpReceiver,
    otel: Otel,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SENTRY_DSN", sentry.dsn)
    monkeypatch.setenv("OTEL_SENTRY_OTLP_SIGNALS", "traces")
    instrumentor = SentryBridgeInstrumentor()
    with caplog.at_level(logging.INFO, logger="otel_sentry_bridge"):
        instrumentor.instrument(tracer_provider=otel.tracer_provider)
    try:
        lines = [r.getMessage() for r in caplog.records if "OTLP" in r.getMessage()]
        assert len(lines) == 1 and f"traces to http://127.0.0.1:{sentry.port}" in lines[0]
        with otel.tracer_provider.get_tracer("shop").start_as_current_span("job") as span:
            pass
        trace_id, _ = otel.span_ids(span)
        sentry.wait_for_spans(lambda s: s.trace_id == trace_id)
    finally:
        instrumentor.uninstrument()


@pytest.mark.parametrize(
    ("dsn", "tracer_provider", "logger_provider", "warning"),
    [
        ("not a dsn", None, None, "not sending to Sentry's OTLP endpoints"),
        ("http://k@127.0.0.1:9/1", object(), "not a provider", "not an OpenTelemetry SDK"),
    ],
)
def test_install_never_raises(
    dsn: str,
    tracer_provider: Any,
    logger_provider: Any,
    warning: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_sentry_bridge"):
        installed = install_sentry_otlp(BOTH, dsn, tracer_provider, logger_provider)
    assert installed == []
    assert warning in caplog.text
    assert "Traceback" not in caplog.text


def test_traces_over_otlp_and_as_transactions_at_once_is_a_warning(
    sentry: SentryOtlpReceiver, otel: Otel, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(otlp_signals=("traces",), traces_sample_rate=0.5)
    with caplog.at_level(logging.WARNING, logger="otel_sentry_bridge"):
        assert install_sentry_otlp(settings, sentry.dsn, otel.tracer_provider)
    assert "Sentry gets those spans twice" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="otel_sentry_bridge"):
        install_sentry_otlp(LOGS, sentry.dsn, otel.tracer_provider, otel.logger_provider)
    assert caplog.text == ""

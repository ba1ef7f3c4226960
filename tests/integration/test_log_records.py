"""SentryLogRecordProcessor on the real SDK: ``LoggerProvider`` + ``TracerProvider`` +
``SentrySpanProcessor(transport=CapturingTransport())``. Log records with an exception become
error events with their span's trace, error records message events; everything a span-event
error gets (frames, scrubbing, ignore list, sampling, before_send) applies; and one error seen
as a span event and as a log record is one event, whatever comes first."""

from __future__ import annotations

import logging
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge import attributes as attr
from otel_sentry_bridge.capture.api import capture_exception, captured_event_id
from otel_sentry_bridge.capture.log_handler import MAX_PARAMS, SpanEventHandler
from otel_sentry_bridge.capture.log_records import SentryLogRecordProcessor
from otel_sentry_bridge.capture.signal_opt_in import emit_exception_log, severity_for
from otel_sentry_bridge.convert.scrubber import FILTERED
from otel_sentry_bridge.testing import CapturingTransport
from tests.support.log_args import CountingArgs, LookupOnly


class PaymentError(Exception):
    pass


def _charge(amount: int) -> None:
    card = "visa"  # noqa: F841  (a local variable for include_local_variables)
    raise PaymentError(f"declined {amount}")


@dataclass
class Stack:
    tracer_provider: TracerProvider
    processor: SentrySpanProcessor
    transport: CapturingTransport
    logger_provider: LoggerProvider
    loggers: list[logging.Logger] = field(default_factory=list)

    @property
    def tracer(self) -> trace.Tracer:
        return self.tracer_provider.get_tracer("tests.log_records")

    def emit(self, scope: str = "app", **kwargs: Any) -> None:
        kwargs.setdefault("severity_number", SeverityNumber.ERROR)
        self.logger_provider.get_logger(scope).emit(**kwargs)

    def events(self) -> list[dict[str, Any]]:
        assert self.tracer_provider.force_flush(5000)
        return list(self.transport.events)

    def logger(self, name: str, *handlers: logging.Handler) -> logging.Logger:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        for handler in handlers:
            logger.addHandler(handler)
        self.loggers.append(logger)
        return logger

    def otel_handler(self) -> logging.Handler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return LoggingHandler(logger_provider=self.logger_provider)

    def span_event_handler(self) -> SpanEventHandler:
        return SpanEventHandler(settings=self.processor.settings)


@pytest.fixture
def make() -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []

    def make(sampler: Any = None, **options: Any) -> Stack:
        transport = CapturingTransport()
        tracer_provider = TracerProvider(sampler=sampler) if sampler else TracerProvider()
        processor = SentrySpanProcessor(transport=transport, **options)
        tracer_provider.add_span_processor(processor)
        logger_provider = LoggerProvider(shutdown_on_exit=False)
        logger_provider.add_log_record_processor(SentryLogRecordProcessor())
        stacks.append(Stack(tracer_provider, processor, transport, logger_provider))
        return stacks[-1]

    yield make
    for stack in stacks:
        for logger in stack.loggers:
            for handler in logger.handlers[:]:
                logger.removeHandler(handler)
            logger.propagate = True
        stack.logger_provider.shutdown()
        stack.tracer_provider.shutdown()


@pytest.fixture
def stack(make: Callable[..., Stack]) -> Stack:
    return make()


def _hex(number: int, width: int) -> str:
    return format(number, f"0{width}x")


def _trace_of(event: dict[str, Any]) -> tuple[str, str]:
    context = event["contexts"]["trace"]
    return context["trace_id"], context["span_id"]


def _ids(span: trace.Span) -> tuple[str, str]:
    context = span.get_span_context()
    return _hex(context.trace_id, 32), _hex(context.span_id, 16)


# -- errors and messages from log records ---------------------------------------------------


def test_an_exception_record_in_a_span_is_one_event_with_the_spans_ids_and_frames(
    stack: Stack,
) -> None:
    with stack.tracer.start_as_current_span("checkout") as span:
        try:
            _charge(12)
        except PaymentError as exc:
            stack.emit(body="charge failed", exception=exc)
            error = exc
    (event,) = stack.events()
    assert _trace_of(event) == _ids(span)
    assert event["event_id"] == captured_event_id(error)
    assert (event["level"], event["logger"]) == ("error", "app")
    assert event["logentry"]["formatted"] == "charge failed"
    main = event["exception"]["values"][-1]
    assert (main["type"], main["value"], main["module"]) == (
        "PaymentError",
        "declined 12",
        __name__,
    )
    assert main["mechanism"] == {"type": "logging", "handled": True}
    innermost = main["stacktrace"]["frames"][-1]
    assert (innermost["function"], innermost["in_app"]) == ("_charge", True)
    assert innermost["context_line"].strip() == 'raise PaymentError(f"declined {amount}")'


def test_an_error_record_without_exception_is_a_message_event(stack: Stack) -> None:
    with stack.tracer.start_as_current_span("checkout") as span:
        stack.emit(body="stock is negative", attributes={"sku": "A-1"})
    (event,) = stack.events()
    assert "exception" not in event
    assert event["logentry"] == {"message": "stock is negative", "formatted": "stock is negative"}
    assert (event["level"], event["logger"]) == ("error", "app")
    assert event["extra"] == {"sku": "A-1"}
    assert _trace_of(event) == _ids(span)


def test_an_info_record_gives_nothing(stack: Stack) -> None:
    with stack.tracer.start_as_current_span("checkout"):
        stack.emit(severity_number=SeverityNumber.INFO, body="all fine")
        stack.emit(severity_number=SeverityNumber.WARN, body="a little odd")
    assert stack.events() == []
    assert stack.processor.bridge.queued == 0


def test_a_sampled_out_trace_still_gives_the_event_with_its_trace_id(
    make: Callable[..., Stack],
) -> None:
    stack = make(sampler=ALWAYS_OFF)
    with stack.tracer.start_as_current_span("checkout") as span:
        assert not span.is_recording() and span.get_span_context().is_valid
        try:
            _charge(3)
        except PaymentError as exc:
            stack.emit(body="charge failed", exception=exc)
        stack.emit(body="and a message")
    events = stack.events()
    assert len(events) == 2
    assert {_trace_of(e) for e in events} == {_ids(span)}


def test_a_record_outside_any_trace_gets_new_ids(stack: Stack) -> None:
    try:
        _charge(1)
    except PaymentError as exc:
        stack.emit(body="batch failed", exception=exc)
    (event,) = stack.events()
    trace_id, span_id = _trace_of(event)
    assert int(trace_id, 16) != 0 and int(span_id, 16) != 0


@pytest.mark.parametrize(
    ("severity", "level"),
    [(SeverityNumber.WARN, "warning"), (SeverityNumber.FATAL2, "fatal"), (None, "error")],
)
def test_an_exception_at_any_severity_is_an_event_at_that_level(
    stack: Stack, severity: SeverityNumber | None, level: str
) -> None:
    try:
        _charge(2)
    except PaymentError as exc:
        stack.emit(severity_number=severity, body="x", exception=exc)
    (event,) = stack.events()
    assert event["level"] == level


def test_the_bridges_event_level_decides_for_messages(make: Callable[..., Stack]) -> None:
    stack = make(event_level=logging.WARNING)
    stack.emit(severity_number=SeverityNumber.WARN, body="disk 91% full")
    stack.emit(severity_number=SeverityNumber.INFO, body="disk 50% full")
    (event,) = stack.events()
    assert (event["level"], event["logentry"]["formatted"]) == ("warning", "disk 91% full")


# -- what span-event errors get applies --------------------------------------------------------


def test_secrets_in_the_message_and_attributes_are_filtered(stack: Stack) -> None:
    stack.emit(body="login failed password=hunter2", attributes={"api_key": "k-123", "n": 1})
    (event,) = stack.events()
    assert event["logentry"]["formatted"] == f"login failed password={FILTERED}"
    assert event["extra"] == {"api_key": FILTERED, "n": 1}
    assert "hunter2" not in str(event) and "k-123" not in str(event)


def test_ignored_exceptions_apply(make: Callable[..., Stack]) -> None:
    stack = make(ignored_exceptions=[f"{__name__}.PaymentError"])
    try:
        _charge(5)
    except PaymentError as exc:
        stack.emit(body="x", exception=exc)
    assert stack.events() == []


def test_sample_rate_applies(make: Callable[..., Stack]) -> None:
    stack = make(sample_rate=0.0)
    stack.emit(body="dropped")
    assert stack.events() == []
    assert stack.processor.pipeline.lost[("sample_rate", "error")] == 1


def test_before_send_applies(make: Callable[..., Stack]) -> None:
    def before_send(event: dict[str, Any]) -> dict[str, Any]:
        return {**event, "tags": {**event.get("tags", {}), "seen": "yes"}}

    stack = make(before_send=before_send)
    stack.emit(body="tagged")
    (event,) = stack.events()
    assert event["tags"]["seen"] == "yes"


def test_local_variables_when_asked(make: Callable[..., Stack]) -> None:
    stack = make(include_local_variables=True)
    try:
        _charge(7)
    except PaymentError as exc:
        stack.emit(body="x", exception=exc)
    (event,) = stack.events()
    innermost = event["exception"]["values"][-1]["stacktrace"]["frames"][-1]
    assert innermost["vars"]["card"] == "visa"


def test_records_of_opentelemetry_loggers_are_ignored(stack: Stack) -> None:
    logger = stack.logger("opentelemetry.sdk.tests", stack.otel_handler())
    with stack.tracer.start_as_current_span("export"):
        try:
            _charge(8)
        except PaymentError:
            logger.exception("export failed")
        logger.error("export failed again")
    assert stack.events() == []
    assert stack.processor.bridge.queued == 0


# -- the logging bridge: OTel's LoggingHandler -----------------------------------------------


def test_logging_handler_alone_gives_the_logging_records_message_and_extra(stack: Stack) -> None:
    logger = stack.logger("tests.log_records.alone", stack.otel_handler())
    with stack.tracer.start_as_current_span("checkout") as span:
        try:
            _charge(9)
        except PaymentError as exc:
            logger.exception("charge %s failed", 9, extra={"order": 77})
            error = exc
        logger.error("refund %s failed", 9)
    first, second = stack.events()
    assert first["event_id"] == captured_event_id(error)
    assert first["logger"] == "tests.log_records.alone"
    assert first["logentry"] == {
        "message": "charge %s failed",
        "params": ["9"],
        "formatted": "charge 9 failed",
    }
    assert first["extra"] == {"order": 77}
    assert first["exception"]["values"][-1]["module"] == __name__
    assert second["logentry"]["message"] == "refund %s failed"
    assert {_trace_of(first), _trace_of(second)} == {_ids(span)}


def test_logging_handler_reads_only_the_kept_arguments_of_a_huge_mapping(stack: Stack) -> None:
    logger = stack.logger("tests.log_records.huge", stack.otel_handler())
    args = CountingArgs(100_000)
    logger.error("value %(k7)s", args)
    (event,) = stack.events()
    assert event["logentry"]["formatted"] == "value 7"
    assert event["logentry"]["params"] == [str(n) for n in range(MAX_PARAMS)]
    assert args.listed <= MAX_PARAMS + 1  # not 100,000: the cost is bounded


def test_logging_handler_arguments_that_cannot_be_listed_still_give_the_event(
    stack: Stack,
) -> None:
    logger = stack.logger("tests.log_records.lookup", stack.otel_handler())
    with stack.tracer.start_as_current_span("login") as span:
        logger.error("login failed for %(user)s", LookupOnly())
    (event,) = stack.events()
    assert event["logentry"] == {
        "message": "login failed for %(user)s",
        "formatted": "login failed for bob",
    }
    assert _trace_of(event) == _ids(span)


HandlerSetup = Callable[[Stack], logging.Logger]


def _otel_first(stack: Stack) -> logging.Logger:
    return stack.logger("tests.log_records.both", stack.otel_handler(), stack.span_event_handler())


def _ours_first(stack: Stack) -> logging.Logger:
    return stack.logger("tests.log_records.both", stack.span_event_handler(), stack.otel_handler())


def _ours_on_the_parent(stack: Stack) -> logging.Logger:
    stack.logger("tests.log_records.parent", stack.span_event_handler())
    child = stack.logger("tests.log_records.parent.child", stack.otel_handler())
    child.propagate = True
    return child


HANDLER_SETUPS = pytest.mark.parametrize(
    "setup", [_otel_first, _ours_first, _ours_on_the_parent], ids=lambda f: f.__name__[1:]
)


@HANDLER_SETUPS
def test_logger_exception_seen_by_both_handlers_is_one_event(
    stack: Stack, setup: HandlerSetup
) -> None:
    logger = setup(stack)
    expected = []
    spans = []
    for n in range(20):
        with stack.tracer.start_as_current_span(f"request {n}") as span:
            try:
                _charge(n)
            except PaymentError as exc:
                logger.exception("charge %s failed", n)
                expected.append((captured_event_id(exc), _ids(span), f"declined {n}"))
        spans.append(span)
    events = stack.events()
    assert sorted((e["event_id"], _trace_of(e), _value(e)) for e in events) == sorted(expected)
    assert {e["logentry"]["message"] for e in events} == {"charge %s failed"}
    # SpanEventHandler's capture is the one sent: its span event (what Jaeger shows) is there.
    for span, (event_id, _, _) in zip(spans, expected, strict=True):
        (recorded,) = [e for e in span.events if e.name == "exception"]
        assert recorded.attributes[attr.EVENT_ID] == event_id


@HANDLER_SETUPS
def test_an_error_message_seen_by_both_handlers_is_one_event(
    stack: Stack, setup: HandlerSetup
) -> None:
    logger = setup(stack)
    for n in range(20):
        with stack.tracer.start_as_current_span(f"request {n}"):
            logger.error("stock of %s is negative", n)
    events = stack.events()
    assert sorted(e["logentry"]["formatted"] for e in events) == sorted(
        f"stock of {n} is negative" for n in range(20)
    )
    assert {e["logentry"]["message"] for e in events} == {"stock of %s is negative"}


def test_an_exception_our_hook_captured_is_not_sent_again_from_its_log_record(
    stack: Stack,
) -> None:
    logger = stack.logger("django.request", stack.otel_handler())
    with stack.tracer.start_as_current_span("GET /pay"):
        try:
            _charge(4)
        except PaymentError as exc:
            event_id = capture_exception(exc, mechanism="django", handled=False)
            logger.error("Internal Server Error: /pay", exc_info=True)
        logger.error("Internal Server Error: /pay")  # a 500 the view returned: not an error
    (event,) = stack.events()
    assert event["event_id"] == event_id
    assert event["exception"]["values"][-1]["mechanism"]["type"] == "django"


def test_a_hook_capturing_the_exception_after_its_log_record_gets_the_same_event(
    stack: Stack,
) -> None:
    logger = stack.logger("tests.log_records.view", stack.otel_handler())
    with stack.tracer.start_as_current_span("GET /pay"):
        try:
            try:
                _charge(6)
            except PaymentError:
                logger.exception("payment failed")
                raise
        except PaymentError as exc:  # e.g. Django's got_request_exception, further up
            event_id = capture_exception(exc, mechanism="django", handled=False)
    (event,) = stack.events()
    assert event["event_id"] == event_id
    assert event["logger"] == "tests.log_records.view"


def _value(event: dict[str, Any]) -> str:
    return str(event["exception"]["values"][-1]["value"])


# -- one event when a span also records the exception, in either order ----------------------


def test_log_record_converted_before_the_span_copy_gives_one_event(stack: Stack) -> None:
    with pytest.raises(PaymentError), stack.tracer.start_as_current_span("checkout") as span:
        try:
            _charge(10)
        except PaymentError as exc:
            stack.emit(body="charge failed", exception=exc)
            raise  # the SDK records it on the span as it escapes (no event id)
    assert _exception_events(span) == 1
    (event,) = stack.events()
    assert event["logger"] == "app"  # the log record's copy went first, and is the one sent
    assert _trace_of(event) == _ids(span)


def test_span_copy_converted_before_the_log_record_gives_one_event(stack: Stack) -> None:
    with (
        pytest.raises(PaymentError) as raised,
        stack.tracer.start_as_current_span("checkout") as span,
    ):
        _charge(11)
    # The span ended (and was queued) first; the record is emitted afterwards in its context.
    stack.emit(body="charge failed", exception=raised.value, context=_context_of(span))
    assert stack.processor.bridge.queued == 2
    (event,) = stack.events()
    assert "logger" not in event  # the span's copy went first, and is the one sent
    assert _trace_of(event) == _ids(span)


def _exception_events(span: Any) -> int:
    return sum(event.name == "exception" for event in span.events)


def _context_of(span: trace.Span) -> Any:
    return trace.set_span_in_context(trace.NonRecordingSpan(span.get_span_context()))


# -- records with only the exception.* text (no exception object) ---------------------------


def _text_only(exc: BaseException) -> dict[str, Any]:
    """What OTel's logging handlers write: bare class name, str(args[0]), the traceback."""
    return {
        "exception.type": type(exc).__name__,
        "exception.message": str(exc.args[0]),
        "exception.stacktrace": "".join(traceback.format_exception(exc)),
    }


def test_a_text_only_record_in_a_span_is_an_exception_event(stack: Stack) -> None:
    with stack.tracer.start_as_current_span("checkout") as span:
        try:
            _charge(13)
        except PaymentError as exc:
            stack.emit(body="x", attributes=_text_only(exc))
    (event,) = stack.events()
    assert "event_id" in event and _trace_of(event) == _ids(span)
    main = event["exception"]["values"][-1]
    assert (main["type"], main["module"], main["value"]) == (
        "PaymentError",
        __name__,
        "declined 13",
    )
    assert main["stacktrace"]["frames"][-1]["function"] == "_charge"


@pytest.mark.parametrize("log_first", [True, False], ids=["log-first", "span-first"])
def test_a_text_only_record_and_the_span_copy_are_one_event_in_either_order(
    stack: Stack, log_first: bool
) -> None:
    with pytest.raises(PaymentError) as raised, stack.tracer.start_as_current_span("s") as span:
        try:
            _charge(14)
        except PaymentError as exc:
            if log_first:
                stack.emit(body="x", attributes=_text_only(exc))
            raise
    if not log_first:
        stack.emit(body="x", attributes=_text_only(raised.value), context=_context_of(span))
    assert stack.processor.bridge.queued == 2
    (event,) = stack.events()
    assert _value(event) == "declined 14"


def test_a_text_only_record_outside_any_span_is_an_exception_event(stack: Stack) -> None:
    try:
        _charge(15)
    except PaymentError as exc:
        stack.emit(body="x", attributes=_text_only(exc))
    (event,) = stack.events()
    assert _value(event) == "declined 15"


# -- our own captures as log records (OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN) -----------------


def test_a_capture_emitted_as_a_log_record_is_not_sent_again(stack: Stack) -> None:
    exporter = InMemoryLogRecordExporter()
    stack.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    with stack.tracer.start_as_current_span("GET /pay") as span:
        try:
            _charge(16)
        except PaymentError as exc:
            emitted = emit_exception_log(
                exc,
                "a" * 32,
                severity_for("error", handled=False),
                {"http.route": "/pay"},
                mechanism="django",
                logger_provider=stack.logger_provider,
            )
    assert emitted
    (exported,) = exporter.get_finished_logs()
    record = exported.log_record
    assert record.event_name == "otel_sentry_bridge.django.exception"
    assert (record.severity_number, record.severity_text) == (SeverityNumber.ERROR, "ERROR")
    assert (_hex(record.trace_id, 32), _hex(record.span_id, 16)) == _ids(span)
    assert record.attributes is not None
    assert record.attributes[attr.EVENT_ID] == "a" * 32
    assert record.attributes["exception.type"] == f"{__name__}.PaymentError"
    assert record.attributes["exception.message"] == "declined 16"
    assert "in _charge\n" in str(record.attributes["exception.stacktrace"])
    assert record.attributes["http.route"] == "/pay"
    # SentryLogRecordProcessor on the same provider leaves it alone: the capture's own event
    # goes through the bridge (here: nowhere, as nothing else captured it).
    assert stack.processor.bridge.queued == 0
    assert stack.events() == []


def test_no_log_record_without_a_logger_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry._logs import NoOpLoggerProvider
    from opentelemetry._logs._internal import ProxyLoggerProvider

    from otel_sentry_bridge.capture import signal_opt_in

    # The global provider before anything sets one (other tests may have set it).
    monkeypatch.setattr(signal_opt_in, "get_logger_provider", ProxyLoggerProvider)
    exc = PaymentError("x")
    assert not emit_exception_log(exc, "b" * 32, SeverityNumber.ERROR)
    assert not emit_exception_log(
        exc, "b" * 32, SeverityNumber.ERROR, logger_provider=NoOpLoggerProvider()
    )

"""SpanEventHandler outside Django: loops, thresholds, and captures with no span at all."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from opentelemetry.sdk.trace import TracerProvider

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.capture.log_handler import MAX_PARAMS, SpanEventHandler
from otel_sentry_bridge.testing import CapturingTransport
from tests.support.log_args import CountingArgs, LookupOnly

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


def test_a_logged_exception_is_one_exception_event_of_the_semantic_conventions(
    setup: Setup,
) -> None:
    """The span gets what ``Span.record_exception`` writes (type, message, stack trace; not
    the obsolete ``exception.escaped``) and the Sentry event id that ties it to the event."""
    provider, transport, logger = setup
    with provider.get_tracer("t").start_as_current_span("s") as span:
        try:
            {}["cart"]
        except KeyError:
            logger.exception("checkout failed")
    assert provider.force_flush(5000)
    (event,) = transport.events
    (span_event,) = span.events  # type: ignore[attr-defined]
    assert span_event.name == "exception"
    attributes = dict(span_event.attributes or {})
    assert set(attributes) == {
        "exception.type",
        "exception.message",
        "exception.stacktrace",
        "sentry.event_id",
    }
    assert (attributes["exception.type"], attributes["exception.message"]) == ("KeyError", "'cart'")
    assert str(attributes["exception.stacktrace"]).endswith("KeyError: 'cart'\n")
    assert attributes["sentry.event_id"] == event["event_id"]


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


@contextmanager
def only_our_handler(name: str) -> Iterator[logging.Logger]:
    """A logger whose records meet our handler and no other: it does not propagate, and
    pytest's capture handlers (which pytest also puts on non-propagating loggers) are taken
    off for the duration."""
    logger = logging.getLogger(name)
    saved = logger.handlers[:], logger.propagate, logger.level
    logger.handlers = [SpanEventHandler()]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        yield logger
    finally:
        logger.handlers, logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])


def test_a_record_meeting_no_other_handler_still_prints_as_logging_would(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without our handler, logging would print WARNING and above on stderr (lastResort):
    # attaching it must not silence that.
    provider, transport, _ = setup
    tracer = provider.get_tracer("t")
    with only_our_handler("tests.alone") as alone, tracer.start_as_current_span("s"):
        alone.info("an info line")
        alone.warning("stock low for sku %s", 7)
        try:
            {}["k"]
        except KeyError:
            alone.exception("card declined for order %s", 17)
    provider.force_flush()

    err = capsys.readouterr().err
    assert "stock low for sku 7" in err
    assert "card declined for order 17" in err and "KeyError: 'k'" in err
    assert "an info line" not in err  # lastResort's own threshold is WARNING
    assert len(transport.events) == 1  # and the error still became an event


def test_nothing_extra_is_printed_when_another_handler_takes_the_record(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    provider, transport, _ = setup
    with only_our_handler("tests.alone") as alone:
        alone.addHandler(logging.NullHandler())
        alone.error("handled elsewhere")
    provider.force_flush()

    assert "handled elsewhere" not in capsys.readouterr().err
    assert len(transport.events) == 1


# -- arguments and extras of any shape: bounded cost, and the event is never lost -------------


class Shown:
    """An argument that counts how often its ``repr`` is taken (its ``str`` is free)."""

    def __init__(self, reprs: list[int]) -> None:
        self.reprs = reprs

    def __str__(self) -> str:
        return "shown"

    def __repr__(self) -> str:
        self.reprs[0] += 1
        return "Shown()"


def test_only_the_kept_arguments_of_a_huge_mapping_are_read(setup: Setup) -> None:
    provider, transport, logger = setup
    args = CountingArgs(100_000)
    logger.error("value %(k7)s", args)
    assert provider.force_flush(5000)
    (event,) = transport.events
    assert event["logentry"]["formatted"] == "value 7"
    assert event["logentry"]["params"] == [str(n) for n in range(MAX_PARAMS)]
    assert args.listed <= MAX_PARAMS + 1  # not 100,000: the cost is bounded


def test_only_the_kept_arguments_of_a_huge_tuple_are_read(setup: Setup) -> None:
    provider, transport, logger = setup
    reprs = [0]
    logger.error("%s," * 1000, *[Shown(reprs) for _ in range(1000)])
    assert provider.force_flush(5000)
    (event,) = transport.events
    assert event["logentry"]["params"] == ["Shown()"] * MAX_PARAMS
    assert reprs[0] <= MAX_PARAMS


def test_arguments_that_cannot_be_listed_still_give_the_event(setup: Setup) -> None:
    provider, transport, logger = setup
    logger.error("login failed for %(user)s", LookupOnly())
    assert provider.force_flush(5000)
    (event,) = transport.events
    assert event["logentry"]["formatted"] == "login failed for bob"
    assert "params" not in event["logentry"]


def test_an_integer_too_long_to_print_still_gives_the_event(setup: Setup) -> None:
    # str() and repr() of an int past sys.get_int_max_str_digits() (4300) raise ValueError.
    provider, transport, logger = setup
    record = logger.makeRecord(
        logger.name, logging.ERROR, __file__, 1, "total %s", (10**5000,), None
    )
    SpanEventHandler().handle(record)  # straight to the handler: pytest's would raise on it
    assert provider.force_flush(5000)
    (event,) = transport.events
    (param,) = event["logentry"]["params"]
    assert "bits" in param and len(param) < 100


def test_extra_keys_that_are_not_strings_still_give_the_events(setup: Setup) -> None:
    provider, transport, logger = setup
    # typeshed says str keys; logging itself takes any key
    logger.error("with an int key", extra={1: "v", "order": 7})  # type: ignore[dict-item]
    with provider.get_tracer("t").start_as_current_span("s"):
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("with a tuple key", extra={("a", "b"): "w"})  # type: ignore[dict-item]
    assert provider.force_flush(5000)
    message, error = sorted(transport.events, key=lambda e: "exception" in e)
    assert message["extra"] == {"1": "v", "order": 7}
    assert error["exception"]["values"][-1]["type"] == "ValueError"
    assert error["extra"] == {"('a', 'b')": "w"}


def _record_created_at(logger: logging.Logger, message: str, created: object) -> logging.LogRecord:
    """A WARNING record whose ``created`` a filter (or ``makeLogRecord``) has replaced."""
    return logging.makeLogRecord(
        {
            "name": logger.name,
            "levelno": logging.WARNING,
            "levelname": "WARNING",
            "msg": message,
            "created": created,
        }
    )


def test_a_record_with_an_odd_creation_time_never_costs_a_later_event(setup: Setup) -> None:
    provider, transport, logger = setup
    when = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    with provider.get_tracer("t").start_as_current_span("s"):
        logger.handle(_record_created_at(logger, "as a datetime", when))
        logger.handle(_record_created_at(logger, "as text", "yesterday"))
        logger.error("after the odd records")
    logger.handle(_record_created_at(logger, "outside any span", float("nan")))
    logger.error("after the odd record, outside any span")
    assert provider.force_flush(5000)
    in_span, outside = sorted(transport.events, key=lambda e: len(e["logentry"]["formatted"]))
    assert in_span["logentry"]["formatted"] == "after the odd records"
    crumbs = {c["message"]: c for c in in_span["breadcrumbs"]["values"]}
    assert list(crumbs) == ["as a datetime", "as text"]
    assert crumbs["as a datetime"]["timestamp"] == when.timestamp()
    assert isinstance(crumbs["as text"]["timestamp"], float)  # when it was handled
    assert outside["breadcrumbs"]["values"][-1]["message"] == "outside any span"

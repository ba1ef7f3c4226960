"""SentryLogRecordProcessor's parts: severity mapping, the ``exception.*`` text rewritten as
``record_exception`` writes it, what is skipped on the emitting thread, and the wiring."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge import attributes as attr
from otel_sentry_bridge.capture import log_records
from otel_sentry_bridge.capture.log_records import (
    SentryLogRecordProcessor,
    _as_recorded,
    install_log_record_processor,
    python_level,
)
from otel_sentry_bridge.capture.signal_opt_in import (
    ENV_VAR,
    event_name,
    exception_signal,
    severity_for,
)
from otel_sentry_bridge.capture.traceback_text import exception_message, exception_type_name
from otel_sentry_bridge.testing import CapturingTransport


class Declined(Exception):
    class Nested(Exception):
        pass


class Wrapped(Exception):
    def __str__(self) -> str:
        return f"wrapped<{self.args[0]}>"


@pytest.mark.parametrize(
    ("number", "text", "level"),
    [
        (SeverityNumber.ERROR, None, 40),
        (SeverityNumber.ERROR2, None, 41),
        (SeverityNumber.ERROR4, None, 43),
        (SeverityNumber.WARN, None, 30),
        (SeverityNumber.WARN3, None, 32),
        (SeverityNumber.FATAL, None, 50),
        (SeverityNumber.FATAL4, None, 53),
        (SeverityNumber.INFO, None, 20),
        (SeverityNumber.DEBUG, None, 10),
        (SeverityNumber.TRACE, None, 5),
        (17, None, 40),
        (SeverityNumber.UNSPECIFIED, "ERROR", 40),
        (None, "WARN", 30),
        (None, "warning", 30),
        (None, "FATAL2", 50),
        (None, "CRITICAL", 50),
        (None, "loud", 0),
        (None, None, 0),
    ],
)
def test_severity_maps_to_python_levels(number: Any, text: str | None, level: int) -> None:
    assert python_level(number, text) == level


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def _as_logging_handler_writes(exc: BaseException) -> tuple[str, str, str]:
    """exception.type, .message and .stacktrace as OTel's LoggingHandler writes them."""
    message = str(exc.args[0]) if exc.args else ""
    return type(exc).__name__, message, "".join(traceback.format_exception(exc))


def _chained() -> BaseException:
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise Declined("outer: ValueError: not me") from inner
    except Declined as outer:
        return outer


def _with_note() -> BaseException:
    exc = _raised(Declined("card declined"))
    exc.__notes__ = ["retry later"]  # add_note() (3.11+) on 3.10 too
    return exc


@pytest.mark.parametrize(
    "exc",
    [
        _raised(Declined("card declined")),
        _raised(Declined.Nested("deep")),
        _raised(KeyError("k")),
        _raised(ValueError("a", 2)),
        _raised(ValueError()),
        _raised(Wrapped("x")),
        _raised(Declined("two\nlines")),
        _chained(),
        _with_note(),
        _raised(type("MainError", (Exception,), {"__module__": "__main__"})("in a script")),
    ],
    ids=[
        "custom",
        "nested",
        "keyerror",
        "args",
        "empty",
        "str",
        "multiline",
        "chain",
        "note",
        "main",
    ],
)
def test_logging_handler_text_is_rewritten_as_record_exception_writes_it(
    exc: BaseException,
) -> None:
    type_name, message, stacktrace = _as_logging_handler_writes(exc)
    assert _as_recorded(type_name, message, stacktrace) == (
        exception_type_name(type(exc)),
        exception_message(exc),
    )


def test_text_that_cannot_be_read_without_doubt_is_kept() -> None:
    # Cut short by an attribute length limit: no line of the raised exception.
    assert _as_recorded("Declined", "boom", 'Traceback...\n  File "x.py", line 1') == (
        "Declined",
        "boom",
    )
    # The name only inside a message or an indented line (an exception group's member).
    text = "Traceback...\nOther: mentions Declined: here\n  | Declined: member\n"
    assert _as_recorded("Declined", "boom", text) == ("Declined", "boom")
    # Already qualified, or no text at all.
    assert _as_recorded("pkg.Declined", "boom", "") == ("pkg.Declined", "boom")
    assert _as_recorded("", "boom", "Traceback") == ("", "boom")


# -- the processor on a real SDK LoggerProvider ----------------------------------------------

Setup = tuple[TracerProvider, SentrySpanProcessor, CapturingTransport, LoggerProvider]


@pytest.fixture
def setup() -> Iterator[Setup]:
    transport = CapturingTransport()
    provider = TracerProvider()
    processor = SentrySpanProcessor(transport=transport)
    provider.add_span_processor(processor)
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(SentryLogRecordProcessor())
    try:
        yield provider, processor, transport, logger_provider
    finally:
        logger_provider.shutdown()
        provider.shutdown()


def _emit_error(logger_provider: LoggerProvider, scope: str, **kwargs: Any) -> None:
    logger_provider.get_logger(scope).emit(
        severity_number=SeverityNumber.ERROR, body="it failed", **kwargs
    )


@pytest.mark.parametrize(
    "scope",
    ["opentelemetry.sdk._logs", "urllib3.connectionpool", "requests", "otel_sentry_bridge"],
)
def test_feedback_loop_scopes_are_ignored(setup: Setup, scope: str) -> None:
    _, processor, _, logger_provider = setup
    _emit_error(logger_provider, scope, exception=_raised(Declined("x")))
    _emit_error(logger_provider, scope)
    assert processor.bridge.queued == 0


def test_feedback_loop_logger_attribute_is_ignored(setup: Setup) -> None:
    _, processor, _, logger_provider = setup
    _emit_error(logger_provider, "", attributes={"logger.name": "urllib3.util"})
    assert processor.bridge.queued == 0


def test_records_our_hooks_emitted_are_ignored(setup: Setup) -> None:
    _, processor, _, logger_provider = setup
    exc = _raised(Declined("x"))
    _emit_error(logger_provider, "app", exception=exc, attributes={attr.EVENT_ID: "0" * 32})
    assert processor.bridge.queued == 0


def test_records_made_on_the_bridge_threads_are_ignored(setup: Setup) -> None:
    _, processor, _, logger_provider = setup
    thread = threading.Thread(
        target=_emit_error,
        args=(logger_provider, "app"),
        kwargs={"exception": _raised(Declined("x"))},
        name="otel-sentry-bridge-test",
    )
    thread.start()
    thread.join()
    assert processor.bridge.queued == 0


def test_below_event_level_without_exception_queues_nothing(setup: Setup) -> None:
    _, processor, _, logger_provider = setup
    logger_provider.get_logger("app").emit(severity_number=SeverityNumber.WARN, body="hm")
    assert processor.bridge.queued == 0
    _emit_error(logger_provider, "app")
    assert processor.bridge.queued == 1


def test_nothing_happens_without_a_bridge() -> None:
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(SentryLogRecordProcessor())
    exc = _raised(Declined("x"))
    _emit_error(logger_provider, "app", exception=exc)  # no bridge: no error either
    assert not hasattr(exc, "__otel_sentry_event_id__")


def test_a_shut_down_processor_takes_nothing(setup: Setup) -> None:
    _, processor, _, _ = setup
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    ours = SentryLogRecordProcessor()
    logger_provider.add_log_record_processor(ours)
    logger_provider.shutdown()
    _emit_error(logger_provider, "app", exception=_raised(Declined("x")))
    assert processor.bridge.queued == 0


def test_force_flush_waits_for_the_bridges(setup: Setup) -> None:
    _, _, transport, logger_provider = setup
    _emit_error(logger_provider, "app", exception=_raised(Declined("x")))
    assert logger_provider.force_flush(5000)
    assert len(transport.events) == 1


def test_a_failing_record_never_reaches_the_application(setup: Setup) -> None:
    _, processor, _, _ = setup

    class Broken:
        @property
        def log_record(self) -> Any:
            raise RuntimeError("broken")

    SentryLogRecordProcessor().on_emit(Broken())  # type: ignore[arg-type]
    assert processor.bridge.queued == 0


# -- wiring ----------------------------------------------------------------------------------


def test_install_adds_one_processor_per_sdk_provider(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, transport, _ = setup
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    monkeypatch.setattr(log_records, "get_logger_provider", lambda: logger_provider)
    assert install_log_record_processor()
    assert install_log_record_processor()  # again: nothing more
    _emit_error(logger_provider, "app", exception=_raised(Declined("once")))
    assert logger_provider.force_flush(5000)
    assert [e["exception"]["values"][-1]["value"] for e in transport.events] == ["once"]
    logger_provider.shutdown()


def test_install_needs_an_sdk_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_records, "get_logger_provider", lambda: object())
    assert not install_log_record_processor()
    assert not install_log_record_processor(object())


# -- OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "signal"),
    [
        (None, "spans"),
        ("", "spans"),
        ("logs", "logs"),
        ("LOGS", "logs"),
        ("logs/dup", "both"),
        ("http, logs/dup", "both"),
        ("logs,logs/dup", "both"),
        ("database,logs", "logs"),
        ("spans", "spans"),
        ("log", "spans"),
    ],
)
def test_exception_signal_reads_the_opt_in(value: str | None, signal: str) -> None:
    environ = {} if value is None else {ENV_VAR: value}
    assert exception_signal(environ) == signal


def test_exception_signal_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "logs/dup")
    assert exception_signal() == "both"
    monkeypatch.delenv(ENV_VAR)
    assert exception_signal() == "spans"


def test_event_names_say_which_hook_captured_and_are_never_the_generic_one() -> None:
    assert event_name("django") == "otel_sentry_bridge.django.exception"
    assert event_name("") == "otel_sentry_bridge.generic.exception"
    assert event_name("weird name/1") == "otel_sentry_bridge.weird_name_1.exception"
    assert event_name("exception") != "exception"


@pytest.mark.parametrize(
    ("level", "handled", "severity"),
    [
        ("error", True, SeverityNumber.ERROR),
        ("fatal", False, SeverityNumber.FATAL),
        ("warning", True, SeverityNumber.WARN),
        ("warning", False, SeverityNumber.ERROR),
        ("info", True, SeverityNumber.INFO),
        ("nonsense", True, SeverityNumber.ERROR),
    ],
)
def test_severity_of_a_capture(level: str, handled: bool, severity: SeverityNumber) -> None:
    assert severity_for(level, handled) == severity

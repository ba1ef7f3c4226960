"""The zero-code instrumentor in-process: no SDK, logging installation, dictConfig."""

from __future__ import annotations

import logging
import logging.config
import sys
import threading
from collections.abc import Iterator

import pytest
from django.core.signals import request_started
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import ProxyTracerProvider

from otel_sentry_bridge.capture.log_handler import SpanEventHandler
from otel_sentry_bridge.setup.instrumentor import SentryBridgeInstrumentor
from tests.support.otel_django import InstrumentedDjango


@pytest.fixture
def instrumentor(monkeypatch: pytest.MonkeyPatch) -> Iterator[SentryBridgeInstrumentor]:
    monkeypatch.setenv("SENTRY_DSN", "http://key@127.0.0.1:9/1")
    instrumentor = SentryBridgeInstrumentor()
    yield instrumentor
    instrumentor.uninstrument()


def _ours(logger: logging.Logger) -> list[logging.Handler]:
    return [h for h in logger.handlers if isinstance(h, SpanEventHandler)]


def test_without_an_sdk_provider_it_warns_and_does_nothing(
    instrumentor: SentryBridgeInstrumentor, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "otel_sentry_bridge"):
        instrumentor.instrument(tracer_provider=ProxyTracerProvider())
    assert "no OpenTelemetry SDK tracer provider" in caplog.text
    assert SentryBridgeInstrumentor.processor is None
    assert _ours(logging.getLogger()) == []


def test_with_an_sdk_provider_it_adds_the_processor_and_the_handler(
    instrumentor: SentryBridgeInstrumentor,
) -> None:
    provider = TracerProvider()
    instrumentor.instrument(tracer_provider=provider)
    processor = SentryBridgeInstrumentor.processor
    assert processor is not None
    assert processor in provider._active_span_processor._span_processors
    assert len(_ours(logging.getLogger())) == 1
    instrumentor.uninstrument()
    assert _ours(logging.getLogger()) == []
    provider.shutdown()


def test_handler_survives_dictconfig_and_reaches_non_propagating_loggers(
    instrumentor: SentryBridgeInstrumentor,
    instrumented_django: InstrumentedDjango,  # Django's own request_started receivers need it
) -> None:
    root = logging.getLogger()
    saved = list(root.handlers)
    provider = TracerProvider()
    instrumentor.instrument(tracer_provider=provider)
    try:
        # What Django's LOGGING typically does after instrumentation ran.
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {"null": {"class": "logging.NullHandler"}},
                "root": {"handlers": ["null"], "level": "WARNING"},
                "loggers": {
                    "shop.private": {"handlers": ["null"], "propagate": False},
                    "urllib3.private": {"handlers": ["null"], "propagate": False},
                },
            }
        )
        assert _ours(root) == []
        request_started.send(sender=None)  # the per-request upkeep
        assert len(_ours(root)) == 1
        assert len(_ours(logging.getLogger("shop.private"))) == 1
        assert _ours(logging.getLogger("urllib3.private")) == []  # a feedback-loop logger
        request_started.send(sender=None)
        assert len(_ours(root)) == 1  # idempotent
    finally:
        instrumentor.uninstrument()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        provider.shutdown()


def test_without_dsn_nothing_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    instrumentor = SentryBridgeInstrumentor()
    instrumentor.instrument(tracer_provider=TracerProvider())
    try:
        assert SentryBridgeInstrumentor.processor is None
        assert _ours(logging.getLogger()) == []
    finally:
        instrumentor.uninstrument()


# -- what a correct setup says, SENTRY_DEBUG, crashes outside requests -----------------------

_STARTUP = "otel-sentry-bridge: sending errors to"


def _startup_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(_STARTUP)]


def test_a_correct_setup_logs_one_info_line_naming_where_errors_go_but_not_the_key(
    instrumentor: SentryBridgeInstrumentor,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SENTRY_DSN", "https://pubkey:secretkey@sentry.example.com:9000/42")
    resource = Resource.create({"deployment.environment.name": "staging", "service.version": "2.1"})
    provider = TracerProvider(resource=resource)
    with caplog.at_level(logging.INFO, "otel_sentry_bridge"):
        instrumentor.instrument(tracer_provider=provider)
    try:
        (line,) = _startup_lines(caplog)
        assert line.levelno == logging.INFO
        assert line.name == "otel_sentry_bridge"
        assert line.getMessage() == (
            "otel-sentry-bridge: sending errors to sentry.example.com:9000 project 42 "
            "(environment staging, release 2.1)"
        )
        assert "pubkey" not in caplog.text
        assert "secretkey" not in caplog.text
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


def test_the_startup_line_shows_the_settings_and_the_defaults_sentry_will_get(
    instrumentor: SentryBridgeInstrumentor,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SENTRY_DSN", "http://key@127.0.0.1:9/1")
    provider = TracerProvider(resource=Resource.create({"service.version": "latest"}))
    with caplog.at_level(logging.INFO, "otel_sentry_bridge"):
        instrumentor.instrument(tracer_provider=provider)
    try:
        (line,) = _startup_lines(caplog)
        # "latest" is a release Sentry drops: the events go without one.
        assert line.getMessage().endswith(
            "to 127.0.0.1:9 project 1 (environment production, release none)"
        )
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    monkeypatch.setenv("SENTRY_ENVIRONMENT", "qa")
    monkeypatch.setenv("SENTRY_RELEASE", "shop@3")
    caplog.clear()
    with caplog.at_level(logging.INFO, "otel_sentry_bridge"):
        instrumentor.instrument(tracer_provider=(provider := TracerProvider()))
    try:
        (line,) = _startup_lines(caplog)
        assert line.getMessage().endswith("(environment qa, release shop@3)")
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


def test_without_a_dsn_there_is_no_startup_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    instrumentor = SentryBridgeInstrumentor()
    with caplog.at_level(logging.INFO, "otel_sentry_bridge"):
        instrumentor.instrument(tracer_provider=TracerProvider())
    instrumentor.uninstrument()
    assert _startup_lines(caplog) == []


def _stderr_handlers() -> list[logging.Handler]:
    return [
        h
        for h in logging.getLogger("otel_sentry_bridge").handlers
        if isinstance(h, logging.StreamHandler)
    ]


def test_sentry_debug_prints_what_the_bridge_does_on_stderr(
    instrumentor: SentryBridgeInstrumentor,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger("otel_sentry_bridge")
    level = logger.level
    monkeypatch.setenv("SENTRY_DEBUG", "true")
    provider = TracerProvider()
    instrumentor.instrument(tracer_provider=provider)
    try:
        (handler,) = _stderr_handlers()
        assert handler.level == logging.DEBUG
        assert logger.isEnabledFor(logging.DEBUG)
        logger.debug("otel-sentry-bridge: a debug line")
        err = capsys.readouterr().err
        assert f"{_STARTUP} 127.0.0.1:9 project 1" in err  # the INFO line, visible now
        assert "otel-sentry-bridge: a debug line" in err
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    assert _stderr_handlers() == []
    assert logger.level == level
    monkeypatch.delenv("SENTRY_DEBUG")
    instrumentor.instrument(tracer_provider=(provider := TracerProvider()))
    try:
        assert _stderr_handlers() == []
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


def test_instrument_chains_the_excepthooks_and_uninstrument_restores_them(
    instrumentor: SentryBridgeInstrumentor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def sys_hook(*args: object) -> None:
        return None

    def thread_hook(*args: object) -> None:
        return None

    monkeypatch.setattr(sys, "excepthook", sys_hook)
    monkeypatch.setattr(threading, "excepthook", thread_hook)
    provider = TracerProvider()
    instrumentor.instrument(tracer_provider=provider)
    try:
        assert sys.excepthook is not sys_hook
        assert threading.excepthook is not thread_hook
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    assert sys.excepthook is sys_hook
    assert threading.excepthook is thread_hook

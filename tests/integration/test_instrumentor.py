"""The zero-code instrumentor in-process: no SDK, logging installation, dictConfig."""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Iterator

import pytest
from django.core.signals import request_started
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import ProxyTracerProvider

from otel_sentry_bridge.capture.log_handler import SpanEventHandler
from otel_sentry_bridge.setup.instrumentor import SentryBridgeInstrumentor


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

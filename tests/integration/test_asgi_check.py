"""The one warning for ASGI requests that no instrumentation traces (the OTel Django
instrumentation needs opentelemetry-instrumentation-asgi to trace them)."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.capture import asgi_check as untraced
from otel_sentry_bridge.testing import CapturingTransport
from tests.support.otel_django import InstrumentedDjango

_PACKAGE = "opentelemetry.instrumentation.asgi"


@pytest.fixture
def fresh(instrumented_django: InstrumentedDjango) -> Iterator[None]:
    """An active bridge of its own: the warning is said once per bridge."""
    processor = SentrySpanProcessor(transport=CapturingTransport())
    try:
        yield
    finally:
        processor.shutdown()


def _asgi_request() -> Any:
    from django.core.handlers.asgi import ASGIRequest

    scope = {"type": "http", "method": "GET", "path": "/boom/", "headers": [], "query_string": b""}
    return ASGIRequest(scope, io.BytesIO())


def _wsgi_request() -> Any:
    from django.test import RequestFactory

    return RequestFactory().get("/boom/")


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_warns_once_naming_the_missing_package(
    fresh: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, _PACKAGE, None)  # import fails, as when not installed
    with caplog.at_level(logging.WARNING, logger="otel_sentry_bridge"):
        untraced.warn_if_untraced_asgi(_asgi_request())
        untraced.warn_if_untraced_asgi(_asgi_request())
    (message,) = _warnings(caplog)
    assert "pip install opentelemetry-instrumentation-asgi" in message


def test_silent_when_the_package_is_installed(
    fresh: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_sentry_bridge"):
        untraced.warn_if_untraced_asgi(_asgi_request())
    assert _warnings(caplog) == []


def test_silent_for_wsgi_requests(
    fresh: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, _PACKAGE, None)
    with caplog.at_level(logging.WARNING, logger="otel_sentry_bridge"):
        untraced.warn_if_untraced_asgi(_wsgi_request())
    assert _warnings(caplog) == []


def test_silent_when_another_instrumentation_made_a_span(
    fresh: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, _PACKAGE, None)
    tracer = TracerProvider().get_tracer("test")
    with (
        caplog.at_level(logging.WARNING, logger="otel_sentry_bridge"),
        trace.use_span(tracer.start_span("request"), end_on_exit=True),
    ):
        untraced.warn_if_untraced_asgi(_asgi_request())
    assert _warnings(caplog) == []

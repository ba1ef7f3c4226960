"""Environment and release values Sentry would drop are replaced before sending.

The ``sentry_receiver`` fixture runs every event through relay and fails the test on any
``invalid_data``, which is what these values used to produce (the event lost the field).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_sentry_bridge import SentrySpanProcessor
from tests.support.receiver import SentryReceiver


def _send_one_error(resource: dict[str, Any]) -> None:
    provider = TracerProvider(resource=Resource(resource))
    provider.add_span_processor(SentrySpanProcessor())
    with provider.get_tracer("t").start_as_current_span("checkout") as span:
        span.record_exception(ValueError("card declined"))
    provider.shutdown()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("SENTRY_ENVIRONMENT", "SENTRY_RELEASE", "OTEL_RESOURCE_ATTRIBUTES"):
        monkeypatch.delenv(variable, raising=False)


@pytest.mark.parametrize(
    ("environment", "release"),
    [("a/b c", "latest"), ("e" * 65, "r" * 201), ("None", ".."), ("prod\nuction", "1.0\t2")],
)
def test_invalid_env_vars_fall_back_to_the_resource_and_relay_keeps_them(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    sentry_receiver: SentryReceiver,
    environment: str,
    release: str,
) -> None:
    monkeypatch.setenv("SENTRY_DSN", sentry_receiver.dsn)
    monkeypatch.setenv("SENTRY_ENVIRONMENT", environment)
    monkeypatch.setenv("SENTRY_RELEASE", release)

    with caplog.at_level(logging.WARNING, "otel_sentry_bridge"):
        _send_one_error({"deployment.environment.name": "staging", "service.version": "2.0"})

    (event,) = sentry_receiver.wait_for_events(1)
    assert (event["environment"], event["release"]) == ("staging", "2.0")
    assert sentry_receiver.invalid == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("SENTRY_ENVIRONMENT" in w for w in warnings) == 1
    assert sum("SENTRY_RELEASE" in w for w in warnings) == 1


def test_invalid_resource_values_are_not_sent_and_reported_once(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    sentry_receiver: SentryReceiver,
) -> None:
    monkeypatch.setenv("SENTRY_DSN", sentry_receiver.dsn)
    provider = TracerProvider(
        resource=Resource({"deployment.environment.name": "s" * 100, "service.version": "latest"})
    )
    processor = SentrySpanProcessor()
    provider.add_span_processor(processor)

    with caplog.at_level(logging.WARNING, "otel_sentry_bridge"):
        for n in range(3):
            with provider.get_tracer("t").start_as_current_span(f"checkout-{n}") as span:
                span.record_exception(ValueError(f"card declined {n}"))
        assert processor.force_flush(5000)
        events = sentry_receiver.wait_for_events(3)
    provider.shutdown()

    assert [(e["environment"], e.get("release")) for e in events] == [("production", None)] * 3
    assert sentry_receiver.invalid == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("deployment.environment.name" in w for w in warnings) == 1
    assert sum("service.version" in w for w in warnings) == 1


def test_quoted_dsn_from_an_env_file_delivers(
    monkeypatch: pytest.MonkeyPatch, sentry_receiver: SentryReceiver
) -> None:
    monkeypatch.setenv("SENTRY_DSN", f'"{sentry_receiver.dsn}"')

    _send_one_error({"service.name": "shop"})

    (event,) = sentry_receiver.wait_for_events(1)
    assert event["environment"] == "production"

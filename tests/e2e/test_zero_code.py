"""The example shop under a real ``opentelemetry-instrument``: errors in a real Bugsink, spans
at a real OTLP/HTTP receiver, tied together by the trace id."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.bugsink import BugsinkServer
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.processes import BIN, REPO, SHOP, base_env, get, shop_env, start_shop
from tests.support.receiver import SentryReceiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@contextmanager
def _shop(env: dict[str, str], log: Path) -> Iterator[str]:
    server, base = start_shop(env, log)
    try:
        yield base
    finally:
        server.stop()


def _shop_env(dsn: str, otlp: OtlpReceiver, environment: str) -> dict[str, str]:
    return shop_env(dsn, otlp.traces_endpoint, SENTRY_ENVIRONMENT=environment)


def test_each_error_is_one_bugsink_event_whose_trace_reached_the_otlp_receiver(
    bugsink: BugsinkServer, otlp: OtlpReceiver, tmp_path: Path
) -> None:
    environment = f"e2e-{uuid.uuid4().hex[:8]}"
    env = _shop_env(bugsink.dsn, otlp, environment)
    with _shop(env, tmp_path / "shop.log") as base:
        assert get(f"{base}/orders/999/") == 500
        assert get(f"{base}/checkout/") == 502
        assert get(f"{base}/inventory/") == 500
        assert get(f"{base}/missing/") == 404
        assert get(f"{base}/payment/") == 402  # last: once it is in, all before it are too

        def ours(event: dict[str, Any]) -> bool:
            return bool(event["data"].get("environment") == environment)

        events = bugsink.wait_for_events(4, timeout=60, where=ours)
        while not events[-1]["data"].get("logentry"):
            events = bugsink.wait_for_events(len(events) + 1, timeout=30, where=ours)
        titles = [(e["data"].get("transaction"), _title(e["data"])) for e in events]
        assert titles == [
            ("/orders/{order_id}/", "OrderNotFound"),
            ("/checkout/", "ZeroDivisionError"),
            ("/inventory/", "HTTPError"),
            ("/payment/", "message"),
        ]
        for event in events:
            trace = event["data"]["contexts"]["trace"]
            span = _span_of(otlp, trace["trace_id"], trace["span_id"])
            expected = "log" if _title(event["data"]) == "message" else "exception"
            assert any(e.name == expected for e in span.events), span
        inventory = events[2]["data"]["contexts"]["trace"]["trace_id"]
        client_spans = otlp.wait_for_spans(
            lambda s: s.trace_id == inventory and s.kind == "CLIENT", count=1
        )
        assert client_spans[0].attributes.get("http.method", "GET") == "GET"


def _title(data: dict[str, Any]) -> str:
    values = (data.get("exception") or {}).get("values") or []
    return str(values[-1]["type"]) if values else "message"


def _span_of(otlp: OtlpReceiver, trace_id: str, span_id: str) -> ReceivedSpan:
    (span,) = otlp.wait_for_spans(lambda s: s.trace_id == trace_id and s.span_id == span_id)
    return span


def _instrumented(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    return _run_instrumented([sys.executable, "-c", script], REPO, **env)


def _run_instrumented(
    command: list[str], cwd: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    exporters = {"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "none"}
    return subprocess.run(
        [str(BIN / "opentelemetry-instrument"), *command],
        env=base_env(**{**exporters, "OTEL_LOGS_EXPORTER": "none", **env}),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


_PROBE = (
    "from otel_sentry_bridge.setup.instrumentor import SentryBridgeInstrumentor as I;"
    "print('attached' if I.processor is not None else 'not attached')"
)


def test_instrumentor_attaches_with_a_dsn(otlp: OtlpReceiver) -> None:
    result = _instrumented(_PROBE, SENTRY_DSN="http://key@127.0.0.1:9/1")
    assert result.stdout.strip() == "attached", result.stderr


def test_instrumentor_can_be_disabled_by_name() -> None:
    result = _instrumented(
        _PROBE,
        SENTRY_DSN="http://key@127.0.0.1:9/1",
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="sentry_bridge",
    )
    assert result.stdout.strip() == "not attached", result.stderr


def test_instrumentor_without_dsn_logs_and_does_nothing() -> None:
    script = (
        "import logging; logging.basicConfig(level=logging.INFO);"
        "from opentelemetry.instrumentation.auto_instrumentation import initialize;"
        "initialize();" + _PROBE
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=base_env(
            OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none"
        ),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.stdout.strip() == "not attached", result.stderr
    assert result.stderr.count("SENTRY_DSN is not set") == 1


def test_without_dsn_or_logging_configuration_the_warning_is_still_printed() -> None:
    result = _instrumented(_PROBE)
    assert result.stdout.strip() == "not attached", result.stderr
    assert result.stderr.count("SENTRY_DSN is not set") == 1, result.stderr


def test_an_app_without_logging_configuration_still_prints_its_errors(
    sentry_receiver: SentryReceiver,
) -> None:
    # Python prints WARNING+ records that meet no handler (logging.lastResort); the bridge's
    # handler on the root logger must not swallow them.
    script = (
        "import logging, sys; log = logging.getLogger('shop.payments');"
        "log.info('an info line'); log.warning('card expires soon for order %s', 6);"
        "\ntry:\n    {}['token']\nexcept KeyError:\n"
        "    log.exception('card declined for order %s', 7)\n"
        "from opentelemetry import trace; trace.get_tracer_provider().force_flush()"
    )
    result = _instrumented(script, SENTRY_DSN=sentry_receiver.dsn)
    assert result.returncode == 0, result.stderr
    assert "card expires soon for order 6" in result.stderr
    assert "card declined for order 7" in result.stderr and "KeyError: 'token'" in result.stderr
    assert "an info line" not in result.stderr
    [event] = sentry_receiver.wait_for_events(1)
    assert event["logentry"]["formatted"] == "card declined for order 7"


def test_our_middleware_is_inserted_inside_the_otel_one() -> None:
    # Inside the OTel middleware's span: a mid-stream error then knows its request's trace.
    script = (
        "from django.conf import settings; m = settings.MIDDLEWARE;"
        "ours = [i for i, p in enumerate(m) if p.startswith('otel_sentry_bridge.')];"
        "otel = [i for i, p in enumerate(m) if p.startswith('opentelemetry.')];"
        "print(len(ours), ours[0] - otel[0])"
    )
    result = _instrumented(
        script,
        SENTRY_DSN="http://key@127.0.0.1:9/1",
        DJANGO_SETTINGS_MODULE="shop.settings",
        PYTHONPATH=f"{SHOP}{os.pathsep}{REPO}",
    )
    assert result.stdout.strip() == "1 1", result.stderr


def test_under_the_stable_http_conventions_a_logged_error_keeps_its_url(
    sentry_receiver: SentryReceiver, otlp: OtlpReceiver, tmp_path: Path
) -> None:
    # runserver's span then has no url.path: the URL must come from Django's request
    env = shop_env(sentry_receiver.dsn, otlp.traces_endpoint, OTEL_SEMCONV_STABILITY_OPT_IN="http")
    with _shop(env, tmp_path / "shop.log") as base:
        assert get(f"{base}/payment/?attempt=2") == 402
        (event,) = sentry_receiver.wait_for_events(1)
    assert event["request"]["url"] == f"{base}/payment/"
    assert event["request"]["query_string"] == "attempt=2"
    assert event["transaction"] == "/payment/"


def test_the_django_settings_warning_is_for_django_processes_only() -> None:
    # Django is installed here, but a script (or a Celery worker) is not a Django process
    script = _instrumented(_PROBE, SENTRY_DSN="http://key@127.0.0.1:9/1")
    assert "DJANGO_SETTINGS_MODULE" not in script.stderr, script.stderr
    manage = _run_instrumented(
        [str(BIN / "python"), "manage.py", "check"],
        SHOP,
        SENTRY_DSN="http://key@127.0.0.1:9/1",
        OTEL_TRACES_EXPORTER="none",
    )
    assert manage.stderr.count("DJANGO_SETTINGS_MODULE is not set") == 1, manage.stderr


def test_invalid_env_value_is_reported_once_naming_the_variable() -> None:
    result = _instrumented(
        _PROBE, SENTRY_DSN="http://key@127.0.0.1:9/1", OTEL_SENTRY_QUEUE_SIZE="lots"
    )
    assert result.stdout.strip() == "attached", result.stderr
    assert result.stderr.count("OTEL_SENTRY_QUEUE_SIZE") == 1, result.stderr


def test_malformed_dsn_does_not_break_the_application() -> None:
    result = _instrumented("print('app ran')", SENTRY_DSN="not a dsn")
    assert result.returncode == 0
    assert result.stdout.strip() == "app ran"
    assert "SENTRY_DSN is invalid" in result.stderr

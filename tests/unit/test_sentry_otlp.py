"""Sentry's OTLP endpoints from a DSN, the exporters' options, the two settings."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs._internal import std_to_otel

from otel_sentry_bridge.errors import ConfigError, InvalidDsn
from otel_sentry_bridge.setup import sentry_logs, sentry_otlp
from otel_sentry_bridge.setup.config import ENV_VARS, Settings, load_settings
from otel_sentry_bridge.setup.dsn import Dsn
from otel_sentry_bridge.setup.sentry_otlp import (
    otlp_endpoints,
    otlp_headers,
    sentry_log_exporter,
    sentry_span_exporter,
)

KEY = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("dsn", "base"),
    [
        (f"https://{KEY}@o1.ingest.sentry.io/4506", "https://o1.ingest.sentry.io/api/4506"),
        (f"http://{KEY}@sentry.local:9000/7", "http://sentry.local:9000/api/7"),
        (
            f"http://{KEY}@sentry.local:9000/prefix/sub/7",
            "http://sentry.local:9000/prefix/sub/api/7",
        ),
        (f"http://{KEY}@[::1]:8000/3", "http://[::1]:8000/api/3"),
        (f"https://{KEY}@[2001:db8::5]/3/", "https://[2001:db8::5]/api/3"),
        (f"HTTPS://{KEY}:legacy-secret@Sentry.Example.COM/12", "https://sentry.example.com/api/12"),
    ],
)
def test_endpoints_keep_scheme_host_port_and_path_prefix(dsn: str, base: str) -> None:
    traces, logs = otlp_endpoints(dsn)

    assert traces == f"{base}/integration/otlp/v1/traces"
    assert logs == f"{base}/integration/otlp/v1/logs"
    assert otlp_endpoints(Dsn.parse(dsn)) == (traces, logs)


def test_the_header_carries_the_public_key_only() -> None:
    headers = otlp_headers(f"https://{KEY}:legacy-secret@sentry.example.com/12")

    assert headers == {"x-sentry-auth": f"sentry sentry_key={KEY}"}


def test_a_malformed_dsn_is_invalid_without_showing_its_key() -> None:
    with pytest.raises(InvalidDsn) as caught:
        otlp_endpoints(f"ftp://{KEY}@sentry.example.com/1")
    assert KEY not in str(caught.value)


def test_the_exporters_are_opentelemetrys_own() -> None:
    dsn = f"https://{KEY}@o1.ingest.sentry.io/4506"

    assert isinstance(sentry_span_exporter(dsn), OTLPSpanExporter)
    assert isinstance(sentry_log_exporter(Dsn.parse(dsn), timeout=3), OTLPLogExporter)


def test_the_endpoint_comes_from_the_dsn() -> None:
    with pytest.raises(TypeError, match="endpoint"):
        sentry_span_exporter(f"https://{KEY}@o1.ingest.sentry.io/1", endpoint="http://x/v1/traces")


def test_header_names_are_read_from_the_environment_as_the_exporter_reads_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Basic%20abc, x-tenant = t1")
    assert sentry_otlp._env_header_names("OTEL_EXPORTER_OTLP_TRACES_HEADERS") == {
        "authorization",
        "x-tenant",
    }
    # The signal's own variable replaces the generic one, as in the exporter.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "api-key=k")
    assert sentry_otlp._env_header_names("OTEL_EXPORTER_OTLP_TRACES_HEADERS") == {"api-key"}
    assert sentry_otlp._env_header_names("OTEL_EXPORTER_OTLP_LOGS_HEADERS") == {
        "authorization",
        "x-tenant",
    }


@pytest.mark.parametrize("threshold", range(0, 61))
def test_the_severity_gate_never_drops_what_the_handler_lets_through(threshold: int) -> None:
    floor = sentry_logs.severity_floor(threshold)
    for level in range(threshold, 61):
        assert std_to_otel(level).value >= floor, (level, threshold)
    if threshold in (10, 20, 30, 40, 50):  # the named levels are exact
        assert std_to_otel(threshold - 1).value < floor
        assert std_to_otel(threshold).value == floor


# -- settings --------------------------------------------------------------------------------


def _load(environ: dict[str, str], warnings: list[str]) -> Settings:
    return load_settings({}, environ=environ, django={}, warn=warnings.append)


def test_both_settings_have_env_vars_and_defaults() -> None:
    assert ENV_VARS["OTEL_SENTRY_OTLP_SIGNALS"] == "otlp_signals"
    assert ENV_VARS["OTEL_SENTRY_LOG_LEVEL"] == "log_level"
    assert Settings().otlp_signals == ()
    assert Settings().log_level == logging.INFO


def test_signals_are_a_comma_list_in_any_case_each_once() -> None:
    warnings: list[str] = []
    settings = _load({"OTEL_SENTRY_OTLP_SIGNALS": " traces, LOGS ,traces,"}, warnings)

    assert settings.otlp_signals == ("traces", "logs")
    assert warnings == []
    assert _load({"OTEL_SENTRY_OTLP_SIGNALS": ""}, warnings).otlp_signals == ()


def test_an_unknown_signal_in_the_environment_is_one_warning_naming_it() -> None:
    warnings: list[str] = []
    settings = _load({"OTEL_SENTRY_OTLP_SIGNALS": "traces,metrics"}, warnings)

    assert settings.otlp_signals == ()  # the default is kept
    (warning,) = warnings
    assert "OTEL_SENTRY_OTLP_SIGNALS" in warning and "'metrics'" in warning


def test_an_unknown_signal_as_an_option_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="'spans'"):
        load_settings({"otlp_signals": ["traces", "spans"]}, environ={}, django={})
    settings = load_settings({"otlp_signals": ["logs"]}, environ={}, django={})
    assert settings.otlp_signals == ("logs",)


def test_the_log_level_takes_names_and_numbers() -> None:
    warnings: list[str] = []

    assert _load({"OTEL_SENTRY_LOG_LEVEL": "warning"}, warnings).log_level == logging.WARNING
    assert _load({"OTEL_SENTRY_LOG_LEVEL": "15"}, warnings).log_level == 15
    assert warnings == []
    assert _load({"OTEL_SENTRY_LOG_LEVEL": "loud"}, warnings).log_level == logging.INFO
    (warning,) = warnings
    assert "OTEL_SENTRY_LOG_LEVEL" in warning

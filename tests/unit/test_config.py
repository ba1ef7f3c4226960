from __future__ import annotations

import logging
import os
from typing import Any

import pytest

from otel_sentry_bridge.errors import ConfigError, InvalidDsn
from otel_sentry_bridge.setup.config import (
    DEFAULT_IGNORED_EXCEPTIONS,
    ENV_VARS,
    Settings,
    load_settings,
)

SECRET_DSN = "https://public:supersecret@sentry.example.com/42"


class Warnings:
    """A ``warn`` callback that records its messages."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        self.messages.append(message)


def load(
    options: dict[str, Any] | None = None,
    *,
    environ: dict[str, str] | None = None,
    django: dict[str, Any] | None = None,
    warn: Warnings | None = None,
) -> Settings:
    """load_settings isolated from the real process environment and Django settings."""
    return load_settings(
        options,
        environ=environ if environ is not None else {},
        django=django if django is not None else {},
        warn=warn if warn is not None else Warnings(),
    )


# -- defaults and precedence -----------------------------------------------------------------


def test_no_sources_give_the_documented_defaults() -> None:
    warn = Warnings()

    settings = load(warn=warn)

    assert settings == Settings()
    assert settings.dsn is None
    assert settings.sample_rate == 1.0
    assert settings.event_level == logging.ERROR
    assert settings.ignored_exceptions == DEFAULT_IGNORED_EXCEPTIONS
    assert warn.messages == []


def test_keyword_option_beats_env_and_django() -> None:
    settings = load(
        {"environment": "from-kwarg"},
        environ={"SENTRY_ENVIRONMENT": "from-env"},
        django={"environment": "from-django"},
    )

    assert settings.environment == "from-kwarg"


def test_env_var_beats_django_setting() -> None:
    settings = load(
        environ={"SENTRY_ENVIRONMENT": "from-env"},
        django={"environment": "from-django"},
    )

    assert settings.environment == "from-env"


def test_django_setting_beats_default() -> None:
    settings = load(django={"environment": "from-django", "queue_size": 7})

    assert settings.environment == "from-django"
    assert settings.queue_size == 7


def test_each_field_takes_precedence_independently_of_the_others() -> None:
    settings = load(
        {"release": "kw-release"},
        environ={"SENTRY_ENVIRONMENT": "env-environment"},
        django={"server_name": "django-host", "release": "django-release"},
    )

    assert settings.release == "kw-release"
    assert settings.environment == "env-environment"
    assert settings.server_name == "django-host"


def test_reads_os_environ_when_no_environ_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_RELEASE", "from-os-environ")

    settings = load_settings(django={}, warn=Warnings())

    assert settings.release == "from-os-environ"


# -- environment variables -------------------------------------------------------------------

# Every variable in ENV_VARS: (raw value, field, expected parsed value).
ENV_CASES: dict[str, tuple[str, str, Any]] = {
    "SENTRY_DSN": (
        " https://key@sentry.example.com/1\n",
        "dsn",
        "https://key@sentry.example.com/1",
    ),
    "SENTRY_ENVIRONMENT": ("staging", "environment", "staging"),
    "SENTRY_RELEASE": ("shop@1.2.3", "release", "shop@1.2.3"),
    "SENTRY_SERVER_NAME": ("web-1", "server_name", "web-1"),
    "SENTRY_SAMPLE_RATE": ("0.25", "sample_rate", 0.25),
    "SENTRY_TRACES_SAMPLE_RATE": ("0.1", "traces_sample_rate", 0.1),
    "SENTRY_SEND_DEFAULT_PII": ("true", "send_default_pii", True),
    "OTEL_SENTRY_IN_APP_INCLUDE": ("shop, billing ,", "in_app_include", ("shop", "billing")),
    "OTEL_SENTRY_IN_APP_EXCLUDE": ("vendor", "in_app_exclude", ("vendor",)),
    "OTEL_SENTRY_CONTEXT_LINES": ("3", "context_lines", 3),
    "OTEL_SENTRY_QUEUE_SIZE": ("250", "queue_size", 250),
    "OTEL_SENTRY_HTTP_TIMEOUT": ("1.5", "http_timeout", 1.5),
    "OTEL_SENTRY_SHUTDOWN_TIMEOUT": ("0.5", "shutdown_timeout", 0.5),
    "OTEL_SENTRY_GZIP": ("0", "gzip", False),
    "OTEL_SENTRY_HELPER_PROCESS": ("yes", "helper_process", True),
    "SENTRY_DEBUG": ("True", "debug", True),
    "OTEL_SENTRY_EVENT_LEVEL": ("WARNING", "event_level", logging.WARNING),
    "OTEL_SENTRY_BREADCRUMB_LEVEL": ("30", "breadcrumb_level", 30),
    "OTEL_SENTRY_MAX_BREADCRUMBS": ("10", "max_breadcrumbs", 10),
    "OTEL_SENTRY_MAX_LOG_EVENTS_PER_SPAN": ("8", "max_log_events_per_span", 8),
    "OTEL_SENTRY_IGNORED_EXCEPTIONS": (
        "KeyError,myapp.errors.Gone",
        "ignored_exceptions",
        (*DEFAULT_IGNORED_EXCEPTIONS, "KeyError", "myapp.errors.Gone"),
    ),
    "OTEL_SENTRY_INCLUDE_LOCAL_VARIABLES": ("yes", "include_local_variables", True),
    "OTEL_SENTRY_RESPONSE_HEADER": ("on", "response_header", True),
    "OTEL_SENTRY_TRACE_URL_TEMPLATE": (
        "https://jaeger.example.com/trace/{trace_id}",
        "trace_url_template",
        "https://jaeger.example.com/trace/{trace_id}",
    ),
    "OTEL_SENTRY_SPOOL_DIR": ("/var/spool/sentry", "spool_dir", "/var/spool/sentry"),
    "OTEL_SENTRY_SPOOL_MAX_BYTES": ("1048576", "spool_max_bytes", 1048576),
    "OTEL_SENTRY_DENYLIST": ("ssn, iban", "denylist", ("ssn", "iban")),
    "OTEL_SENTRY_MAX_REQUEST_BODY_SIZE": (" Small", "max_request_body_size", "small"),
    "OTEL_SENTRY_OTLP_SIGNALS": ("traces, LOGS", "otlp_signals", ("traces", "logs")),
    "OTEL_SENTRY_LOG_LEVEL": ("warning", "log_level", logging.WARNING),
}


def test_env_var_table_covers_every_env_var() -> None:
    assert set(ENV_CASES) == set(ENV_VARS)
    assert {variable: case[1] for variable, case in ENV_CASES.items()} == ENV_VARS


@pytest.mark.parametrize("variable", sorted(ENV_CASES))
def test_env_var_is_parsed_to_the_field_type(variable: str) -> None:
    raw, name, expected = ENV_CASES[variable]
    warn = Warnings()

    settings = load(environ={variable: raw}, warn=warn)

    value = getattr(settings, name)
    assert value == expected
    assert type(value) is type(expected)
    assert value != getattr(Settings(), name)  # the case really changes the default
    assert warn.messages == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        (" on ", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("off", False),
    ],
)
def test_boolean_env_values(raw: str, expected: bool) -> None:
    settings = load(environ={"SENTRY_SEND_DEFAULT_PII": raw, "OTEL_SENTRY_GZIP": raw})

    assert settings.send_default_pii is expected
    assert settings.gzip is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("auto", "auto"), (" AUTO ", "auto"), ("true", True), ("1", True), ("false", False)],
)
def test_helper_process_is_auto_by_default_and_takes_auto_true_or_false(
    raw: str, expected: object
) -> None:
    assert load().helper_process == "auto"
    assert load(environ={"OTEL_SENTRY_HELPER_PROCESS": raw}).helper_process == expected
    assert load({"helper_process": raw}).helper_process == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("WARNING", logging.WARNING),
        ("warning", logging.WARNING),
        ("30", 30),
        ("DEBUG", logging.DEBUG),
        ("critical", logging.CRITICAL),
        ("5", 5),
    ],
)
def test_level_env_values_accept_names_and_numbers(raw: str, expected: int) -> None:
    settings = load(environ={"OTEL_SENTRY_EVENT_LEVEL": raw, "OTEL_SENTRY_BREADCRUMB_LEVEL": raw})

    assert settings.event_level == expected
    assert settings.breadcrumb_level == expected


def test_comma_list_env_value_drops_blanks_and_whitespace() -> None:
    settings = load(environ={"OTEL_SENTRY_IN_APP_INCLUDE": " a ,, b.c ,  "})

    assert settings.in_app_include == ("a", "b.c")


def test_empty_comma_list_env_value_is_an_empty_tuple() -> None:
    settings = load(environ={"OTEL_SENTRY_IN_APP_INCLUDE": ""})

    assert settings.in_app_include == ()


def test_ignored_exceptions_are_added_to_the_defaults() -> None:
    """probe 2026-12-05: a user's own type replaced the defaults, and every Http404 and
    PermissionDenied the OTel Django middleware records became an event."""
    settings = load(environ={"OTEL_SENTRY_IGNORED_EXCEPTIONS": "shop.PaymentDeclined"})

    assert settings.ignored_exceptions == (*DEFAULT_IGNORED_EXCEPTIONS, "shop.PaymentDeclined")
    assert load(environ={"OTEL_SENTRY_IGNORED_EXCEPTIONS": ""}).ignored_exceptions == (
        DEFAULT_IGNORED_EXCEPTIONS
    )


def test_a_default_ignored_exception_can_be_taken_out() -> None:
    settings = load(
        environ={"OTEL_SENTRY_IGNORED_EXCEPTIONS": "-django.core.exceptions.PermissionDenied"}
    )

    assert "django.core.exceptions.PermissionDenied" not in settings.ignored_exceptions
    assert "django.http.response.Http404" in settings.ignored_exceptions


def test_blank_optional_string_env_value_means_unset() -> None:
    settings = load(environ={"SENTRY_DSN": "  ", "SENTRY_ENVIRONMENT": ""})

    assert settings.dsn is None
    assert settings.environment is None


# -- invalid environment values: one warning, default kept -----------------------------------


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("SENTRY_SAMPLE_RATE", "2"),
        ("SENTRY_SAMPLE_RATE", "-0.1"),
        ("SENTRY_SAMPLE_RATE", "nan"),
        ("SENTRY_SAMPLE_RATE", "often"),
        ("SENTRY_SEND_DEFAULT_PII", "maybe"),
        ("OTEL_SENTRY_GZIP", "2"),
        ("OTEL_SENTRY_CONTEXT_LINES", "-1"),
        ("OTEL_SENTRY_CONTEXT_LINES", "1.5"),
        ("OTEL_SENTRY_QUEUE_SIZE", "lots"),
        ("OTEL_SENTRY_QUEUE_SIZE", "0"),  # probe 2026-12-05: silently 1, events dropped
        ("OTEL_SENTRY_HTTP_TIMEOUT", "-3"),
        ("OTEL_SENTRY_HTTP_TIMEOUT", "0"),  # probe: the bridge turned itself off
        ("OTEL_SENTRY_HTTP_TIMEOUT", "1e10"),  # probe: every POST failed (time_t)
        ("OTEL_SENTRY_HTTP_TIMEOUT", "inf"),
        ("OTEL_SENTRY_SHUTDOWN_TIMEOUT", "soon"),
        ("OTEL_SENTRY_SHUTDOWN_TIMEOUT", "inf"),  # probe: join(inf) raised, 0 events sent
        ("OTEL_SENTRY_SHUTDOWN_TIMEOUT", "1e10"),
        ("OTEL_SENTRY_EVENT_LEVEL", "LOUD"),
        ("OTEL_SENTRY_BREADCRUMB_LEVEL", "-5"),
        ("OTEL_SENTRY_MAX_BREADCRUMBS", ""),
        ("OTEL_SENTRY_TRACE_URL_TEMPLATE", "https://jaeger.example.com/trace/"),
        ("OTEL_SENTRY_MAX_REQUEST_BODY_SIZE", "10000"),
        # Names Sentry would drop (see test_sentry_names for the rules against relay).
        ("SENTRY_ENVIRONMENT", "e" * 65),
        ("SENTRY_ENVIRONMENT", "é" * 32 + "e"),  # 65 bytes
        ("SENTRY_ENVIRONMENT", "prod\nuction"),
        ("SENTRY_ENVIRONMENT", "a/b c"),
        ("SENTRY_ENVIRONMENT", "None"),
        ("SENTRY_ENVIRONMENT", ".."),
        ("SENTRY_RELEASE", "r" * 201),
        ("SENTRY_RELEASE", ".."),
        ("SENTRY_RELEASE", "latest"),
        ("SENTRY_RELEASE", "1.0\tbeta"),
        ("SENTRY_RELEASE", "a\\b"),
    ],
)
def test_invalid_env_value_warns_once_naming_the_variable_and_keeps_default(
    variable: str, raw: str
) -> None:
    warn = Warnings()

    settings = load(environ={variable: raw}, warn=warn)

    assert settings == Settings()
    assert len(warn.messages) == 1
    assert variable in warn.messages[0]


@pytest.mark.parametrize(
    ("variable", "raw", "expected"),
    [
        ("SENTRY_ENVIRONMENT", "e" * 64, "e" * 64),
        ("SENTRY_ENVIRONMENT", "é" * 32, "é" * 32),  # 64 bytes
        ("SENTRY_ENVIRONMENT", "eu west", "eu west"),
        ("SENTRY_ENVIRONMENT", "prödüktion", "prödüktion"),
        ("SENTRY_ENVIRONMENT", "latest", "latest"),
        ("SENTRY_ENVIRONMENT", " staging\n", "staging"),  # trimmed before the check
        ("SENTRY_RELEASE", "r" * 200, "r" * 200),
        ("SENTRY_RELEASE", "my app 1.0", "my app 1.0"),
        ("SENTRY_RELEASE", "None", "None"),
        ("SENTRY_RELEASE", "...", "..."),
        ("SENTRY_RELEASE", "1.0\n", "1.0"),
    ],
)
def test_env_names_sentry_keeps_are_accepted_without_warning(
    variable: str, raw: str, expected: str
) -> None:
    warn = Warnings()

    settings = load(environ={variable: raw}, warn=warn)

    assert getattr(settings, ENV_VARS[variable]) == expected
    assert warn.messages == []


def test_invalid_environment_message_says_why_sentry_drops_it() -> None:
    warn = Warnings()

    load(environ={"SENTRY_ENVIRONMENT": "a/b c", "SENTRY_RELEASE": "latest"}, warn=warn)

    assert len(warn.messages) == 2
    environment, release = sorted(warn.messages)
    assert environment.startswith("SENTRY_ENVIRONMENT") and "'/'" in environment
    assert release.startswith("SENTRY_RELEASE") and "reserved" in release


def test_invalid_environment_in_django_settings_warns_and_keeps_the_default() -> None:
    warn = Warnings()

    settings = load(django={"ENVIRONMENT": "None", "release": "r" * 201}, warn=warn)

    assert (settings.environment, settings.release) == (None, None)
    assert len(warn.messages) == 2
    assert all("OTEL_SENTRY_BRIDGE" in message for message in warn.messages)


def test_invalid_env_value_keeps_the_django_value_below_it() -> None:
    warn = Warnings()

    settings = load(environ={"SENTRY_SAMPLE_RATE": "2"}, django={"sample_rate": 0.5}, warn=warn)

    assert settings.sample_rate == 0.5
    assert len(warn.messages) == 1


def test_invalid_env_value_does_not_affect_other_env_values() -> None:
    warn = Warnings()

    settings = load(environ={"SENTRY_SAMPLE_RATE": "2", "SENTRY_ENVIRONMENT": "staging"}, warn=warn)

    assert settings.environment == "staging"
    assert settings.sample_rate == 1.0
    assert len(warn.messages) == 1


def test_invalid_env_value_is_overridden_by_a_valid_keyword_without_raising() -> None:
    warn = Warnings()

    settings = load({"sample_rate": 0.3}, environ={"SENTRY_SAMPLE_RATE": "2"}, warn=warn)

    assert settings.sample_rate == 0.3
    assert len(warn.messages) == 1


def test_default_warn_logs_to_the_package_logger(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SENTRY_SAMPLE_RATE", "2")

    with caplog.at_level(logging.WARNING, logger="otel_sentry_bridge"):
        settings = load_settings(django={})

    assert settings.sample_rate == 1.0
    messages = [r.getMessage() for r in caplog.records if r.name == "otel_sentry_bridge"]
    assert len(messages) == 1
    assert "SENTRY_SAMPLE_RATE" in messages[0]


# -- keyword options: errors raise -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sample_rate", 2),
        ("sample_rate", "often"),
        ("sample_rate", None),
        ("send_default_pii", "maybe"),
        ("context_lines", -1),
        ("queue_size", "many"),
        ("http_timeout", -0.5),
        ("shutdown_timeout", float("nan")),
        ("event_level", "LOUD"),
        ("breadcrumb_level", True),
        ("in_app_include", 5),
        ("trace_url_template", "https://jaeger.example.com/trace/"),
        ("before_send", "not callable"),
        ("max_request_body_size", "large"),
        ("helper_process", "sometimes"),
        ("queue_size", 0),
        ("http_timeout", 0),
        ("http_timeout", float("inf")),
        ("shutdown_timeout", float("inf")),
        ("environment", "e" * 65),
        ("environment", "none"),
        ("environment", "qa/eu"),
        ("release", "r" * 201),
        ("release", "LATEST"),
        ("release", "1.0\n2"),
    ],
)
def test_invalid_keyword_option_raises_config_error_naming_it(name: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        load({name: value})

    assert repr(name) in str(info.value)


def test_unknown_keyword_option_raises_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="sample_rat"):
        load({"sample_rat": 0.5})


def test_keyword_options_are_converted_like_env_values() -> None:
    settings = load(
        {
            "event_level": "warning",
            "gzip": "off",
            "in_app_include": ["shop", "billing"],
            "ignored_exceptions": "KeyError, ValueError",
            "sample_rate": "0.5",
        }
    )

    assert settings.event_level == logging.WARNING
    assert settings.gzip is False
    assert settings.in_app_include == ("shop", "billing")
    assert settings.ignored_exceptions == (*DEFAULT_IGNORED_EXCEPTIONS, "KeyError", "ValueError")
    assert settings.sample_rate == 0.5


def test_before_send_callable_is_kept() -> None:
    def before_send(event: dict[str, Any]) -> dict[str, Any] | None:
        return event

    assert load({"before_send": before_send}).before_send is before_send


def test_sentry_sdk_style_before_send_with_a_hint_is_kept() -> None:
    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        return event

    assert load({"before_send": before_send}).before_send is before_send


@pytest.mark.parametrize(
    "before_send",
    [lambda: None, lambda event, hint, more: None, lambda *, event: None],
    ids=["no-argument", "three-arguments", "keyword-only"],
)
def test_before_send_that_cannot_take_an_event_raises_config_error(before_send: Any) -> None:
    with pytest.raises(ConfigError, match=r"'before_send'.*must accept"):
        load({"before_send": before_send})


# -- the DSN is a secret -----------------------------------------------------------------------


def test_sample_rate_env_error_names_the_variable_and_not_the_dsn() -> None:
    warn = Warnings()

    load(environ={"SENTRY_DSN": SECRET_DSN, "SENTRY_SAMPLE_RATE": "2"}, warn=warn)

    assert len(warn.messages) == 1
    assert "SENTRY_SAMPLE_RATE" in warn.messages[0]
    assert "supersecret" not in warn.messages[0]


def test_weird_dsn_option_type_is_rejected_without_showing_the_value() -> None:
    with pytest.raises(InvalidDsn) as info:  # a ConfigError, as SentrySpanProcessor documents
        load({"dsn": SECRET_DSN.encode()})

    message = str(info.value)
    assert "'dsn'" in message
    assert "<hidden>" in message
    assert "supersecret" not in message
    assert "sentry.example.com" not in message


def test_weird_dsn_in_django_settings_warns_without_showing_the_value() -> None:
    warn = Warnings()

    settings = load(django={"DSN": [SECRET_DSN]}, warn=warn)

    assert settings.dsn is None
    assert len(warn.messages) == 1
    assert "<hidden>" in warn.messages[0]
    assert "supersecret" not in warn.messages[0]


def test_dsn_option_error_hides_secrets_raised_while_reading_the_value() -> None:
    class Leaky:
        def __str__(self) -> str:
            raise ValueError(f"cannot use {SECRET_DSN}")

    with pytest.raises(ConfigError) as info:
        load({"dsn": Leaky()})

    assert "<hidden>" in str(info.value)
    assert "supersecret" not in str(info.value)


def test_settings_repr_does_not_show_the_dsn() -> None:
    text = repr(Settings(dsn="https://secret@host/1"))

    assert "secret" not in text
    assert "host/1" not in text
    assert "dsn=<set>" in text


def test_settings_repr_without_dsn_says_none() -> None:
    assert "dsn=None" in repr(Settings())


def test_loaded_settings_repr_does_not_show_the_dsn() -> None:
    settings = load(environ={"SENTRY_DSN": SECRET_DSN})

    assert settings.dsn == SECRET_DSN
    assert "supersecret" not in repr(settings)
    assert "supersecret" not in str(settings)


# -- trace URL template ----------------------------------------------------------------------


def test_trace_url_template_with_placeholder_is_accepted() -> None:
    template = "https://grafana.example.com/explore?trace={trace_id}&x=1"

    assert load({"trace_url_template": template}).trace_url_template == template


def test_trace_url_template_without_placeholder_raises_naming_it() -> None:
    with pytest.raises(ConfigError, match="trace_url_template") as info:
        load({"trace_url_template": "https://jaeger.example.com/trace/{span_id}"})

    assert "{trace_id}" in str(info.value)


# -- Django setting ----------------------------------------------------------------------------


def test_django_keys_are_case_insensitive() -> None:
    warn = Warnings()

    settings = load(
        django={"DSN": SECRET_DSN, "SAMPLE_RATE": "0.5", "Environment": "prod-eu"}, warn=warn
    )

    assert settings.dsn == SECRET_DSN
    assert settings.sample_rate == 0.5
    assert settings.environment == "prod-eu"
    assert warn.messages == []


def test_unknown_django_key_warns_and_is_ignored() -> None:
    warn = Warnings()

    settings = load(django={"SAMPLE_RAT": 0.5}, warn=warn)

    assert settings == Settings()
    assert len(warn.messages) == 1
    assert "SAMPLE_RAT" in warn.messages[0]


def test_invalid_django_value_warns_naming_the_key_and_keeps_default() -> None:
    warn = Warnings()

    settings = load(django={"SAMPLE_RATE": 7}, warn=warn)

    assert settings.sample_rate == 1.0
    assert len(warn.messages) == 1
    assert "OTEL_SENTRY_BRIDGE" in warn.messages[0]
    assert "SAMPLE_RATE" in warn.messages[0]


def test_the_django_setting_is_read_before_anything_loaded_django(tmp_path: Any) -> None:
    # Zero-code mode may build the settings before Django loaded its own (lazily, on first
    # use): with DJANGO_SETTINGS_MODULE set, OTEL_SENTRY_BRIDGE is read all the same.
    import subprocess
    import sys

    (tmp_path / "early_settings.py").write_text(
        'SECRET_KEY = "x"\nOTEL_SENTRY_BRIDGE = {"environment": "from-django"}\n'
    )
    script = (
        "from otel_sentry_bridge.setup.config import load_settings\n"
        "print(load_settings(environ={}).environment)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "early_settings", "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "from-django"

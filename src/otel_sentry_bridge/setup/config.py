"""Typed, validated settings, read once from keyword arguments, env vars and Django settings.

Precedence, highest first: keyword arguments, environment variables, the Django setting
``OTEL_SENTRY_BRIDGE = {...}``, then the defaults below. A keyword argument with a bad value
raises :class:`ConfigError`; a bad environment or Django value is reported once as a warning
naming its source, and the default is used, so a typo in a deployment never stops the app.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..convert.sentry_names import environment_problem, release_problem
from ..errors import ConfigError, InvalidDsn

__all__ = [
    "DEFAULT_IGNORED_EXCEPTIONS",
    "ENV_VARS",
    "Settings",
    "before_send_takes_hint",
    "load_settings",
]

_log = logging.getLogger("otel_sentry_bridge")

# Django's client errors: a 404 or 403 is not a bug. Subclasses are matched too.
DEFAULT_IGNORED_EXCEPTIONS: tuple[str, ...] = (
    "django.http.response.Http404",
    "django.core.exceptions.PermissionDenied",
    "django.core.exceptions.SuspiciousOperation",
)


@dataclass(frozen=True)
class Settings:
    """Everything the bridge can be told. Immutable; build it with :func:`load_settings`."""

    dsn: str | None = None
    environment: str | None = (
        None  # None: resource deployment.environment[.name], else "production"
    )
    release: str | None = None  # None: resource service.version
    server_name: str | None = None  # None: resource host.name, else the hostname
    sample_rate: float = 1.0
    # > 0: local root spans and their children also go to Sentry as transactions (opt-in).
    traces_sample_rate: float = 0.0
    send_default_pii: bool = False
    in_app_include: tuple[str, ...] = ()
    in_app_exclude: tuple[str, ...] = ()
    context_lines: int = 5
    queue_size: int = 1000
    http_timeout: float = 5.0
    shutdown_timeout: float = 2.0
    gzip: bool = True
    # The bridge's own log on stderr, down to DEBUG (zero-code mode; see the instrumentor).
    debug: bool = False
    event_level: int = logging.ERROR
    breadcrumb_level: int = logging.INFO
    max_breadcrumbs: int = 100
    max_log_events_per_span: int = 64
    ignored_exceptions: tuple[str, ...] = DEFAULT_IGNORED_EXCEPTIONS
    include_local_variables: bool = False
    response_header: bool = False
    trace_url_template: str | None = None
    spool_dir: str | None = None
    spool_max_bytes: int = 64 * 1024 * 1024
    denylist: tuple[str, ...] = ()  # extra key words to scrub, on top of the default list
    # Request bodies sent with errors (as sentry-sdk): never, small (1000 bytes), medium
    # (10000 bytes) or always.
    max_request_body_size: str = "medium"
    # Also send these signals ("traces", "logs") to Sentry's OTLP endpoints (docs/otlp.md).
    otlp_signals: tuple[str, ...] = ()
    log_level: int = logging.INFO  # Python log records at or above it go to Sentry's OTLP logs
    # Convert and send in a helper process (docs/performance.md): the request threads only
    # hand each error over through a pipe, and the work runs on another core, off the GIL.
    # "auto": only while errors come faster than the process should convert them itself (a
    # storm), the helper ending once they stop; True: from the first error; False: never.
    helper_process: bool | Literal["auto"] = "auto"
    # before_send(event) or, as in sentry-sdk, before_send(event, hint): the event to send
    # (edited or not), or None to drop it.
    before_send: Callable[..., Any] | None = field(default=None, compare=False)

    def __repr__(self) -> str:  # the DSN may hold a secret: never print it whole
        return f"Settings(dsn={'<set>' if self.dsn else None}, environment={self.environment!r})"


# Environment variable -> Settings field.
ENV_VARS: dict[str, str] = {
    "SENTRY_DSN": "dsn",
    "SENTRY_ENVIRONMENT": "environment",
    "SENTRY_RELEASE": "release",
    "SENTRY_SERVER_NAME": "server_name",
    "SENTRY_SAMPLE_RATE": "sample_rate",
    "SENTRY_TRACES_SAMPLE_RATE": "traces_sample_rate",
    "SENTRY_SEND_DEFAULT_PII": "send_default_pii",
    "OTEL_SENTRY_IN_APP_INCLUDE": "in_app_include",
    "OTEL_SENTRY_IN_APP_EXCLUDE": "in_app_exclude",
    "OTEL_SENTRY_CONTEXT_LINES": "context_lines",
    "OTEL_SENTRY_QUEUE_SIZE": "queue_size",
    "OTEL_SENTRY_HTTP_TIMEOUT": "http_timeout",
    "OTEL_SENTRY_SHUTDOWN_TIMEOUT": "shutdown_timeout",
    "OTEL_SENTRY_GZIP": "gzip",
    "SENTRY_DEBUG": "debug",
    "OTEL_SENTRY_EVENT_LEVEL": "event_level",
    "OTEL_SENTRY_BREADCRUMB_LEVEL": "breadcrumb_level",
    "OTEL_SENTRY_MAX_BREADCRUMBS": "max_breadcrumbs",
    "OTEL_SENTRY_MAX_LOG_EVENTS_PER_SPAN": "max_log_events_per_span",
    "OTEL_SENTRY_IGNORED_EXCEPTIONS": "ignored_exceptions",
    "OTEL_SENTRY_INCLUDE_LOCAL_VARIABLES": "include_local_variables",
    "OTEL_SENTRY_RESPONSE_HEADER": "response_header",
    "OTEL_SENTRY_TRACE_URL_TEMPLATE": "trace_url_template",
    "OTEL_SENTRY_SPOOL_DIR": "spool_dir",
    "OTEL_SENTRY_SPOOL_MAX_BYTES": "spool_max_bytes",
    "OTEL_SENTRY_DENYLIST": "denylist",
    "OTEL_SENTRY_MAX_REQUEST_BODY_SIZE": "max_request_body_size",
    "OTEL_SENTRY_OTLP_SIGNALS": "otlp_signals",
    "OTEL_SENTRY_LOG_LEVEL": "log_level",
    "OTEL_SENTRY_HELPER_PROCESS": "helper_process",
}

_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true/false")


def _to_helper_mode(value: Any) -> bool | Literal["auto"]:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        return _to_bool(value)
    except ValueError:
        raise ValueError("expected auto, true or false") from None


def _to_level(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().upper()
    if text.isdigit():
        return int(text)
    level = logging.getLevelName(text)
    if not isinstance(level, int):
        raise ValueError("expected a logging level name such as ERROR or a number")
    return level


def _to_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(str(part) for part in value)


def _to_ignored(value: Any) -> tuple[str, ...]:
    """The default ignored types plus the given ones; ``-name`` takes a default out (to
    report ``PermissionDenied`` after all): a user adding a type of their own does not bring
    every 404 back."""
    names = list(DEFAULT_IGNORED_EXCEPTIONS)
    for name in _to_tuple(value):
        if name.startswith("-"):
            names = [kept for kept in names if kept != name[1:].strip()]
        elif name not in names:
            names.append(name)
    return tuple(names)


_OTLP_SIGNALS = ("traces", "logs")


def _to_otlp_signals(value: Any) -> tuple[str, ...]:
    names = tuple(name.strip().lower() for name in _to_tuple(value) if name.strip())
    for name in names:
        if name not in _OTLP_SIGNALS:
            raise ValueError(f"unknown signal {name!r} (expected some of: traces, logs)")
    return tuple(dict.fromkeys(names))  # in order, each once


_BODY_SIZES = ("never", "small", "medium", "always")


def _to_body_size(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in _BODY_SIZES:
        raise ValueError("expected one of: never, small, medium, always")
    return text


def _to_positive_int(value: Any) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _to_queue_size(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be at least 1")
    return number


def _seconds_within(highest: float, *, zero: bool) -> Any:
    """A converter to seconds: finite, above 0 (or 0 too with ``zero``), at most
    ``highest`` (a thread join or a socket timeout of ``inf`` or 1e10 s fails or never ends)."""

    def convert(value: Any) -> float:
        number = float(value)
        low_ok = number >= 0 if zero else number > 0
        if not (low_ok and number <= highest):  # also rejects NaN and inf
            bound = "0" if zero else "above 0"
            raise ValueError(f"must be {bound} and at most {highest:g} seconds")
        return number

    return convert


def _to_rate(value: Any) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError("must be between 0 and 1")
    return number


def _to_optional_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _sentry_name(problem_of: Callable[[str], str | None]) -> Callable[[Any], str | None]:
    """A converter refusing a name Sentry would drop, so that the default (the resource's
    value, else "production" for the environment) reaches Sentry instead of no value."""

    def convert(value: Any) -> str | None:
        text = _to_optional_str(value)
        problem = problem_of(text) if text is not None else None
        if problem:
            raise ValueError(problem)
        return text

    return convert


_to_environment = _sentry_name(environment_problem)
_to_release = _sentry_name(release_problem)


def _to_dsn(value: Any) -> str | None:
    # Only a string: str() of anything else is never a usable DSN, and could run code that
    # puts the secret into the error message.
    if value is not None and not isinstance(value, str):
        raise TypeError(f"must be a string, not {type(value).__name__}")
    return _to_optional_str(value)


def _to_template(value: Any) -> str | None:
    text = _to_optional_str(value)
    if text is not None and "{trace_id}" not in text:
        raise ValueError("must contain {trace_id}")
    return text


def before_send_takes_hint(before_send: Callable[..., Any]) -> bool:
    """True for a sentry-sdk style ``before_send(event, hint)``, False for ``before_send(event)``.

    Decided once, from the signature: calling with two arguments and retrying with one on
    TypeError would also retry a TypeError raised inside the function. Raises ValueError when
    it accepts neither.
    """
    try:
        signature = inspect.signature(before_send)
    except (TypeError, ValueError):  # no signature to read (some builtins): the plain form
        return False
    for args in ((None, None), (None,)):
        try:
            signature.bind(*args)
        except TypeError:
            continue
        return len(args) == 2
    raise ValueError("must accept (event) or (event, hint)")


def _to_before_send(value: Any) -> Any:
    if value is not None:
        if not callable(value):
            raise ValueError("must be callable")
        before_send_takes_hint(value)  # a wrong signature fails here, not on every event
    return value


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "dsn": _to_dsn,
    "environment": _to_environment,
    "release": _to_release,
    "server_name": _to_optional_str,
    "sample_rate": _to_rate,
    "traces_sample_rate": _to_rate,
    "send_default_pii": _to_bool,
    "in_app_include": _to_tuple,
    "in_app_exclude": _to_tuple,
    "context_lines": _to_positive_int,
    "queue_size": _to_queue_size,
    "http_timeout": _seconds_within(300.0, zero=False),
    "shutdown_timeout": _seconds_within(3600.0, zero=True),
    "gzip": _to_bool,
    "debug": _to_bool,
    "event_level": _to_level,
    "breadcrumb_level": _to_level,
    "max_breadcrumbs": _to_positive_int,
    "max_log_events_per_span": _to_positive_int,
    "ignored_exceptions": _to_ignored,
    "include_local_variables": _to_bool,
    "response_header": _to_bool,
    "trace_url_template": _to_template,
    "spool_dir": _to_optional_str,
    "spool_max_bytes": _to_positive_int,
    "denylist": _to_tuple,
    "max_request_body_size": _to_body_size,
    "otlp_signals": _to_otlp_signals,
    "log_level": _to_level,
    "helper_process": _to_helper_mode,
    "before_send": _to_before_send,
}


def _convert(name: str, value: Any, source: str) -> Any:
    try:
        return _CONVERTERS[name](value)
    except (TypeError, ValueError) as exc:
        shown = "<hidden>" if name == "dsn" else repr(value)
        error = InvalidDsn if name == "dsn" else ConfigError  # InvalidDsn is a ConfigError
        raise error(f"{source}: invalid value {shown}: {exc}") from None


def _django_options() -> Mapping[str, Any]:
    """The ``OTEL_SENTRY_BRIDGE`` Django setting, or nothing when Django is not configured.

    Django loads its settings lazily, on first use: in zero-code mode the bridge may be set up
    before anything used them, so with ``DJANGO_SETTINGS_MODULE`` set they are loaded here
    (as the OTel Django instrumentation does when it reads ``MIDDLEWARE``)."""
    if "django" not in sys.modules and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return {}  # not a Django process: do not import Django for nothing
    try:
        from django.conf import settings as django_settings

        if not django_settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
            return {}
        options = getattr(django_settings, "OTEL_SENTRY_BRIDGE", None) or {}
    except Exception:  # settings module broken or not importable: not ours to report
        return {}
    return options if isinstance(options, Mapping) else {}


def load_settings(
    options: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    django: Mapping[str, Any] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Settings:
    """Build :class:`Settings` from keyword ``options``, ``environ`` and Django settings.

    ``environ`` defaults to ``os.environ`` and ``django`` to the ``OTEL_SENTRY_BRIDGE`` Django
    setting. Unknown or invalid keyword options raise :class:`ConfigError`; problems in the
    other sources go to ``warn`` (default: a logged warning) and their defaults are kept.
    """
    report = warn or _log.warning
    values: dict[str, Any] = {}

    for key, value in (django if django is not None else _django_options()).items():
        name = str(key).lower()
        if name not in _FIELDS:
            report(f"OTEL_SENTRY_BRIDGE[{key!r}]: unknown option, ignored")
            continue
        try:
            values[name] = _convert(name, value, f"OTEL_SENTRY_BRIDGE[{key!r}]")
        except ConfigError as exc:
            report(str(exc))

    env = os.environ if environ is None else environ
    for variable, name in ENV_VARS.items():
        if variable in env:
            try:
                values[name] = _convert(name, env[variable], variable)
            except ConfigError as exc:
                report(str(exc))

    for name, value in (options or {}).items():
        if name not in _FIELDS:
            raise ConfigError(f"unknown option {name!r}")
        values[name] = _convert(name, value, f"option {name!r}")

    return Settings(**values)

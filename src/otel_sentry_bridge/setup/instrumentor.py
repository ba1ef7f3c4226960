"""The ``sentry_bridge`` instrumentor that ``opentelemetry-instrument`` loads by itself.

With ``SENTRY_DSN`` set, it adds :class:`SentrySpanProcessor` to the SDK tracer provider,
connects the Django signal hook (and the Celery ``task_failure`` hook when Celery is
installed), and puts :class:`SpanEventHandler` on the root logger (and on
loggers that do not propagate), re-attaching it at each request if Django's ``LOGGING`` setup
removed it. Turn it off with ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=sentry_bridge``.

Any exception during auto-instrumentation disables *all* instrumentations, so nothing here
raises: problems are logged once and the instrumentor steps aside.

A correct setup says so in one INFO line on the ``otel_sentry_bridge`` logger, naming the
Sentry host, project, environment and release (never the key). It is an INFO line, not a
warning, because nothing is wrong; so it is seen where the application's logging shows INFO
records of that logger, and always with ``SENTRY_DEBUG=true``: that puts a stderr handler on
the ``otel_sentry_bridge`` logger at DEBUG (until ``uninstrument``), which then also shows
what the bridge captures and each envelope it sends with the HTTP status. The logger still
propagates, so an application handler at DEBUG prints those lines too.

Crashes outside requests (an exception escaping a script, a management command or a thread)
reach Sentry through the chained ``sys.excepthook`` and ``threading.excepthook``
(:mod:`..capture.excepthooks`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from ..capture.excepthooks import install_excepthooks, uninstall_excepthooks
from ..capture.log_handler import SpanEventHandler
from ..capture.log_install import HandlerInstaller
from ..capture.log_records import install_log_record_processor
from ..convert.event import ENVIRONMENT_KEYS
from ..convert.sentry_names import environment_problem, release_problem
from ..processor import SentrySpanProcessor
from .config import Settings, load_settings
from .dsn import Dsn

__all__ = ["SentryBridgeInstrumentor"]

_log = logging.getLogger("otel_sentry_bridge")
_MIDDLEWARE = "otel_sentry_bridge.django.middleware.SentryEventIdMiddleware"
_OTEL_MIDDLEWARE = "opentelemetry.instrumentation.django.middleware"


class SentryBridgeInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Zero-code wiring. ``instrument(**options)`` takes the settings as keyword arguments."""

    processor: SentrySpanProcessor | None = None
    installer: HandlerInstaller | None = None
    debug: tuple[logging.Handler, int] | None = None  # SENTRY_DEBUG: handler, previous level

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()  # Django is optional: logging capture works without it

    def _instrument(self, **kwargs: Any) -> None:
        try:
            self._install(kwargs)
        except Exception:
            _log.warning("otel-sentry-bridge: could not instrument; disabled", exc_info=True)

    def _install(self, kwargs: dict[str, Any]) -> None:
        provider = kwargs.pop("tracer_provider", None) or trace.get_tracer_provider()
        options = {k: v for k, v in kwargs.items() if k in Settings.__dataclass_fields__}
        settings = load_settings(options)
        _debug_logging(settings)
        if not settings.dsn:
            # A warning: opentelemetry-instrument loaded us, so errors were meant to go
            # somewhere (and INFO lines are invisible without logging configuration).
            _log.warning(
                "otel-sentry-bridge: SENTRY_DSN is not set; not sending errors to Sentry "
                "(turn this off with OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=sentry_bridge)"
            )
            return
        if not hasattr(provider, "add_span_processor"):
            _log.warning(
                "otel-sentry-bridge: no OpenTelemetry SDK tracer provider (got %s); errors are "
                "not sent. Is OTEL_TRACES_EXPORTER/the SDK configurator set up?",
                type(provider).__name__,
            )
            return
        processor = SentrySpanProcessor(settings=settings)
        if not processor.enabled:
            return
        provider.add_span_processor(processor)
        SentryBridgeInstrumentor.processor = processor
        # Exceptions that instrumentations emit as OTel log records (the semantic conventions'
        # move from span events to logs): on the SDK LoggerProvider, when there is one.
        install_log_record_processor()

        installer = HandlerInstaller(SpanEventHandler(settings=settings))
        installer.install()
        processor.bridge.log_installer = installer
        SentryBridgeInstrumentor.installer = installer
        _install_django(installer)
        _install_celery()
        install_excepthooks()
        _install_sentry_otlp(settings, provider)
        _log_destination(settings, provider)

    def _uninstrument(self, **kwargs: Any) -> None:
        if "otel_sentry_bridge.setup.sentry_otlp" in sys.modules:
            from .sentry_otlp import uninstall_sentry_otlp

            uninstall_sentry_otlp()
        uninstall_excepthooks()
        installer, SentryBridgeInstrumentor.installer = SentryBridgeInstrumentor.installer, None
        if installer is not None:
            installer.uninstall()
        processor, SentryBridgeInstrumentor.processor = SentryBridgeInstrumentor.processor, None
        if processor is not None:
            processor.shutdown()
        try:
            from ..capture.django_hooks import uninstall

            uninstall()
            _disconnect_logging_upkeep()
        except ImportError:
            pass
        celery_hooks = sys.modules.get("otel_sentry_bridge.capture.celery_hooks")
        if celery_hooks is not None:
            celery_hooks.uninstall()
        _undo_debug_logging()


def _debug_logging(settings: Settings) -> None:
    """``SENTRY_DEBUG``: the bridge's own log, down to DEBUG, on stderr (once)."""
    if not settings.debug or SentryBridgeInstrumentor.debug is not None:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    SentryBridgeInstrumentor.debug = (handler, _log.level)
    _log.addHandler(handler)
    _log.setLevel(logging.DEBUG)


def _undo_debug_logging() -> None:
    debug, SentryBridgeInstrumentor.debug = SentryBridgeInstrumentor.debug, None
    if debug is not None:
        handler, level = debug
        _log.removeHandler(handler)
        _log.setLevel(level)


def _log_destination(settings: Settings, provider: Any) -> None:
    """The one line of a correct setup: where errors go, as which environment and release
    (what events get when neither sets its own: the settings, else the resource, else
    Sentry's defaults). Never the key."""
    dsn = Dsn.parse(settings.dsn)
    resource = getattr(getattr(provider, "resource", None), "attributes", None) or {}
    environment = settings.environment or _resource_name(
        resource, ENVIRONMENT_KEYS, environment_problem
    )
    release = settings.release or _resource_name(resource, ("service.version",), release_problem)
    _log.info(
        "otel-sentry-bridge: sending errors to %s project %s (environment %s, release %s)",
        dsn.netloc,
        dsn.project_id,
        environment or "production",
        release or "none",
    )


def _resource_name(
    resource: Any, keys: tuple[str, ...], problem: Callable[[str], str | None]
) -> str | None:
    """The first of ``keys`` with a value Sentry keeps (as the events will have it)."""
    for key in keys:
        text = str(resource.get(key) or "").strip()
        if text and not problem(text):
            return text
    return None


def _disconnect_logging_upkeep() -> None:
    from django.core.signals import request_started

    request_started.disconnect(dispatch_uid="otel_sentry_bridge.logging_upkeep")


def _install_celery() -> None:
    """Connect the Celery hooks when Celery is installed (a worker, or a web process that
    enqueues: the hooks cost nothing until a task fails)."""
    try:
        if importlib.util.find_spec("celery") is None:
            return
        from ..celery import install

        install()
    except Exception:  # a broken Celery must not take the rest of the bridge down
        _log.warning("otel-sentry-bridge: could not connect the Celery hooks", exc_info=True)


def _install_django(installer: HandlerInstaller) -> None:
    try:
        from django.core.signals import request_started
    except ImportError:
        return  # not a Django process
    from ..capture.django_hooks import install

    install()
    # Django's LOGGING (dictConfig) may drop the root handler after we attached it; the first
    # thing every request does is put it back if needed.
    request_started.connect(
        lambda **_: installer.ensure(), weak=False, dispatch_uid="otel_sentry_bridge.logging_upkeep"
    )
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        # Django is importable, but this may not be a Django process at all (a Celery worker,
        # a script): only a web server or manage.py gets the warning.
        report = _log.warning if _serves_django() else _log.debug
        report(
            "otel-sentry-bridge: DJANGO_SETTINGS_MODULE is not set; opentelemetry-instrument "
            "reads Django settings before manage.py sets it: export it"
        )
        return
    _add_middleware()  # the event-id header, and errors raised while a response streams


_DJANGO_COMMANDS = frozenset(
    {
        "manage.py",
        "django-admin",
        "gunicorn",
        "uvicorn",
        "daphne",
        "hypercorn",
        "uwsgi",
        "waitress-serve",
        "granian",
    }
)


def _serves_django() -> bool:
    return os.path.basename(sys.argv[0] if sys.argv else "") in _DJANGO_COMMANDS


def _add_middleware() -> None:
    """Put our middleware just inside the OTel Django middleware (first when that is not
    there yet: the OTel instrumentor inserts its own first when it runs later). Inside the
    request's span, it knows the trace of an error raised while the response streams; and it
    still sees the final response of every view."""
    from django.conf import settings as django_settings

    for name in ("MIDDLEWARE", "MIDDLEWARE_CLASSES"):
        current = getattr(django_settings, name, None)
        if current is None:
            continue
        middleware = list(current)
        if _MIDDLEWARE not in middleware:
            otel = [i for i, path in enumerate(middleware) if path.startswith(_OTEL_MIDDLEWARE)]
            middleware.insert(otel[0] + 1 if otel else 0, _MIDDLEWARE)
            setattr(django_settings, name, middleware)
        return


def _install_sentry_otlp(settings: Settings, provider: Any) -> None:
    """``OTEL_SENTRY_OTLP_SIGNALS``: traces and/or logs to Sentry's OTLP endpoints as well."""
    if not settings.otlp_signals:
        return
    try:
        from .dsn import Dsn
        from .sentry_otlp import install_sentry_otlp

        installed = install_sentry_otlp(settings, Dsn.parse(settings.dsn), provider)
    except Exception:  # never into auto-instrumentation
        _log.warning("otel-sentry-bridge: could not set up Sentry's OTLP export", exc_info=True)
        return
    if installed:
        _log.info("otel-sentry-bridge: also sending to Sentry via OTLP: %s", "; ".join(installed))

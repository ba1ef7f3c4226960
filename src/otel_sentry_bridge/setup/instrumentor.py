"""The ``sentry_bridge`` instrumentor that ``opentelemetry-instrument`` loads by itself.

With ``SENTRY_DSN`` set, it adds :class:`SentrySpanProcessor` to the SDK tracer provider,
connects the Django signal hook (and the Celery ``task_failure`` hook when Celery is
installed), and puts :class:`SpanEventHandler` on the root logger (and on
loggers that do not propagate), re-attaching it at each request if Django's ``LOGGING`` setup
removed it. Turn it off with ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=sentry_bridge``.

Any exception during auto-instrumentation disables *all* instrumentations, so nothing here
raises: problems are logged once and the instrumentor steps aside.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from ..capture.log_handler import SpanEventHandler
from ..capture.log_install import HandlerInstaller
from ..processor import SentrySpanProcessor
from .config import Settings, load_settings

__all__ = ["SentryBridgeInstrumentor"]

_log = logging.getLogger("otel_sentry_bridge")
_MIDDLEWARE = "otel_sentry_bridge.django.middleware.SentryEventIdMiddleware"
_OTEL_MIDDLEWARE = "opentelemetry.instrumentation.django.middleware"


class SentryBridgeInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Zero-code wiring. ``instrument(**options)`` takes the settings as keyword arguments."""

    processor: SentrySpanProcessor | None = None
    installer: HandlerInstaller | None = None

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

        installer = HandlerInstaller(SpanEventHandler(settings=settings))
        installer.install()
        processor.bridge.log_installer = installer
        SentryBridgeInstrumentor.installer = installer
        _install_django(installer)
        _install_celery()
        _install_sentry_otlp(settings, provider)

    def _uninstrument(self, **kwargs: Any) -> None:
        if "otel_sentry_bridge.setup.sentry_otlp" in sys.modules:
            from .sentry_otlp import uninstall_sentry_otlp

            uninstall_sentry_otlp()
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

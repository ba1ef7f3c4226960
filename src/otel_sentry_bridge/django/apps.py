"""The AppConfig for users who configure OpenTelemetry by hand."""

from __future__ import annotations

from django.apps import AppConfig


class OtelSentryBridgeConfig(AppConfig):  # type: ignore[misc]  # Django ships no types
    name = "otel_sentry_bridge.django"
    label = "otel_sentry_bridge"
    verbose_name = "OpenTelemetry -> Sentry bridge"

    def ready(self) -> None:
        from ..capture.django_hooks import install

        install()

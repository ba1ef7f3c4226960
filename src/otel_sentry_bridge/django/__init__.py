"""Django integration: add ``"otel_sentry_bridge.django"`` to ``INSTALLED_APPS``.

Its AppConfig connects :func:`~otel_sentry_bridge.capture.django_hooks.install`, which the
zero-code
instrumentor uses too.
"""

from ..capture.django_hooks import install, uninstall

__all__ = ["install", "uninstall"]

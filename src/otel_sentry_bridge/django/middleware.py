"""The middleware's public path: ``MIDDLEWARE`` may name
``otel_sentry_bridge.django.middleware.SentryEventIdMiddleware``. The code lives in
:mod:`otel_sentry_bridge.capture.django_middleware`."""

from otel_sentry_bridge.capture.django_middleware import *  # noqa: F403
from otel_sentry_bridge.capture.django_middleware import __all__ as __all__

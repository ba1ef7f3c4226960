"""The log handler's public path: a ``LOGGING`` setting may name
``otel_sentry_bridge.logging.SpanEventHandler``. The code lives in
:mod:`otel_sentry_bridge.capture.log_handler`."""

from otel_sentry_bridge.capture.log_handler import *  # noqa: F403
from otel_sentry_bridge.capture.log_handler import __all__ as __all__

"""Errors from OpenTelemetry span events, sent to Sentry with their trace context."""

from ._version import __version__
from .config import Settings, load_settings
from .errors import ConfigError, InvalidDsn
from .processor import SentrySpanProcessor

__all__ = [
    "ConfigError",
    "InvalidDsn",
    "SentrySpanProcessor",
    "Settings",
    "__version__",
    "load_settings",
]

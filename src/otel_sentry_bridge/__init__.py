"""Errors from OpenTelemetry span events, sent to Sentry with their trace context."""

from ._version import __version__
from .capture.excepthooks import install_excepthooks
from .errors import ConfigError, InvalidDsn
from .processor import SentrySpanProcessor
from .setup.config import Settings, load_settings

__all__ = [
    "ConfigError",
    "InvalidDsn",
    "SentrySpanProcessor",
    "Settings",
    "__version__",
    "install_excepthooks",
    "load_settings",
]

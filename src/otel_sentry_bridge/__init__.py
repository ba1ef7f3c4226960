"""Errors from OpenTelemetry span events, sent to Sentry with their trace context."""

from ._version import __version__
from .config import Settings, load_settings
from .errors import ConfigError, InvalidDsn

__all__ = ["ConfigError", "InvalidDsn", "Settings", "__version__", "load_settings"]

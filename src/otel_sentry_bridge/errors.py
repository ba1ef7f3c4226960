"""Exceptions raised to users of the Python API (never on the request path)."""

__all__ = ["ConfigError", "InvalidDsn"]


class ConfigError(ValueError):
    """A configuration value is invalid. The message names the setting, never a secret."""


class InvalidDsn(ConfigError):
    """The Sentry DSN cannot be parsed. The message never includes the DSN's secret parts."""

"""The package version, in one place."""

__all__ = ["SDK_NAME", "__version__"]

__version__ = "0.1.0"
SDK_NAME = "otel-sentry-bridge"

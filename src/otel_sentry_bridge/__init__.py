"""Errors from OpenTelemetry span events, sent to Sentry with their trace context.

The public names are imported when first used, not with the package: every module of it
(``otel_sentry_bridge.offload.helper``, the helper process's entry point, among them) starts
by importing this file, and the span processor brings the OpenTelemetry SDK and ``requests``
with it, which a helper process never needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
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

# Public name -> the module (relative to this package) that defines it.
_HOMES = {
    "ConfigError": ".errors",
    "InvalidDsn": ".errors",
    "SentrySpanProcessor": ".processor",
    "Settings": ".setup.config",
    "install_excepthooks": ".capture.excepthooks",
    "load_settings": ".setup.config",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home, __name__), name)
    globals()[name] = value  # found here directly from now on
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

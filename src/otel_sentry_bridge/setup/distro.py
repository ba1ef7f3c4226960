"""``opentelemetry-instrument`` defaults that work with what this package installs.

opentelemetry-distro defaults the OTLP protocol to gRPC, which needs the gRPC exporter and its
native wheels. This distro defaults to ``http/protobuf`` (the exporter this package depends
on); every value can still be overridden with the usual ``OTEL_*`` variables.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.sdk._configuration import _OTelSDKConfigurator

__all__ = ["DEFAULTS", "SentryBridgeConfigurator", "SentryBridgeDistro"]

DEFAULTS = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_LOGS_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
}


class SentryBridgeConfigurator(_OTelSDKConfigurator):
    """The SDK's own configurator (tracer provider, exporters from ``OTEL_*``)."""


class SentryBridgeDistro(BaseDistro):  # type: ignore[misc]
    def _configure(self, **kwargs: Any) -> None:
        for name, value in DEFAULTS.items():
            os.environ.setdefault(name, value)

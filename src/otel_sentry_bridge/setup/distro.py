"""``opentelemetry-instrument`` defaults that work with what this package installs.

opentelemetry-distro defaults the OTLP protocol to gRPC, which needs the gRPC exporter and its
native wheels. This distro defaults to ``http/protobuf`` (the exporter this package depends
on); every value can still be overridden with the usual ``OTEL_*`` variables.

Only one distro and one configurator run: ``opentelemetry-instrument`` takes those named by
``OTEL_PYTHON_DISTRO`` and ``OTEL_PYTHON_CONFIGURATOR``, else the first entry point of each
group it finds (file-system order: with opentelemetry-distro installed beside this package,
either may come first). opentelemetry-distro's gRPC default would then abort
auto-instrumentation before any code of this package runs; :mod:`.launcher_env`, which the
launcher imports first, sets the ``http/protobuf`` default when the gRPC exporter is not
installed, so both distros work (tests/e2e/test_distro_compat.py).
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

"""Defaults for the program ``opentelemetry-instrument`` starts, set in its launcher.

``opentelemetry-instrument`` imports the module of every ``opentelemetry_environment_variables``
entry point before it starts the program (to offer their variables as options), and the
program inherits the launcher's environment. That is the one moment this package can act
before a distro is chosen: with several installed (``opentelemetry-distro`` is what every
guide says to install), the first found wins, and opentelemetry-distro defaults the OTLP
protocol to gRPC, whose exporter is usually not installed; auto-instrumentation then aborts
(``Requested component 'otlp_proto_grpc' not found``) before any code of ours runs, and no
error reaches Sentry.

So, when the gRPC exporter is not installed, the protocol defaults to ``http/protobuf`` (the
exporter this package depends on). A protocol the user set wins; so does an installed gRPC
exporter. This module defines no ``OTEL_*`` names: it adds no command-line options.
"""

from __future__ import annotations

import importlib.util
import os

__all__: list[str] = []

_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"


def _grpc_exporter_installed() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is not None
    except (ImportError, ValueError):
        return False


if not _grpc_exporter_installed():
    os.environ.setdefault(_PROTOCOL, "http/protobuf")

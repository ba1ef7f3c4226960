"""The helper's environment: no OpenTelemetry auto-instrumentation, this package importable."""

from __future__ import annotations

import os

from otel_sentry_bridge.offload.link import HELPER_MARKER, helper_environment

SITE = "/venv/lib/python3.11/site-packages"
AUTO = f"{SITE}/opentelemetry/instrumentation/auto_instrumentation"


def test_auto_instrumentation_leaves_the_path_and_the_package_comes_first() -> None:
    env = helper_environment(
        {"PYTHONPATH": os.pathsep.join([AUTO, "/app", "/src"]), "SENTRY_DSN": "x"}, "/src"
    )
    assert env["PYTHONPATH"].split(os.pathsep) == ["/src", "/app"]
    assert env["SENTRY_DSN"] == "x" and env[HELPER_MARKER] == "1"


def test_without_a_pythonpath_only_the_package_is_on_it() -> None:
    assert helper_environment({}, "/src")["PYTHONPATH"] == "/src"

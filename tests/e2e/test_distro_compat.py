"""``opentelemetry-instrument`` with ``opentelemetry-distro`` installed too, as every OTel guide
says to install it: errors must still reach Sentry.

opentelemetry-distro is installed once per session with ``pip install --target`` into a
directory put first on ``PYTHONPATH`` (never into the test venv: there its entry points would
race ours in every zero-code test). First on ``sys.path``, its distro and configurator are the
ones ``opentelemetry-instrument`` picks: the case where its gRPC default applies.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.support.processes import BIN, REPO, base_env
from tests.support.receiver import SentryReceiver

pytestmark = pytest.mark.e2e

# A logged error: the bridge's log handler reports it once the instrumentor attached.
_SCRIPT = (
    "import logging; log = logging.getLogger('shop.checkout')\n"
    "try:\n    {}['token']\nexcept KeyError:\n"
    "    log.exception('checkout failed for order %s', 7)\n"
    "from opentelemetry import trace; trace.get_tracer_provider().force_flush()\n"
)


@pytest.fixture(scope="session")
def otel_distro(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding opentelemetry-distro of the installed instrumentation's release."""
    release = version("opentelemetry-instrumentation")
    target = tmp_path_factory.mktemp("opentelemetry-distro")
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",  # its dependencies are the venv's own: nothing may shadow them
                "--target",
                str(target),
                f"opentelemetry-distro=={release}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip could not download opentelemetry-distro=={release} in 300 s")
    if result.returncode != 0 or not (target / "opentelemetry" / "distro").is_dir():
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"pip could not install opentelemetry-distro=={release}: {reason}")
    return target


def _instrumented(
    distro_dir: Path, receiver: SentryReceiver, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = base_env(
        SENTRY_DSN=receiver.dsn,
        # Spans go nowhere (no collector here); the metrics and logs pipelines are off.
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://127.0.0.1:9/v1/traces",
        OTEL_BSP_EXPORT_TIMEOUT="500",
        OTEL_EXPORTER_OTLP_TIMEOUT="1",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        **env,
    )
    environment["PYTHONPATH"] = os.pathsep.join([str(distro_dir), str(REPO)])
    return subprocess.run(
        [str(BIN / "opentelemetry-instrument"), sys.executable, "-c", _SCRIPT],
        env=environment,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=REPO,
    )


def _assert_the_error_arrived(
    result: subprocess.CompletedProcess[str], receiver: SentryReceiver
) -> None:
    assert result.returncode == 0, result.stderr
    assert "Failed to auto initialize OpenTelemetry" not in result.stderr, result.stderr
    (event,) = receiver.wait_for_events(1, timeout=5)
    assert event["logentry"]["formatted"] == "checkout failed for order 7"
    assert event["exception"]["values"][-1]["type"] == "KeyError"


def test_an_error_reaches_sentry_with_opentelemetry_distro_installed(
    otel_distro: Path, sentry_receiver: SentryReceiver
) -> None:
    result = _instrumented(otel_distro, sentry_receiver)
    _assert_the_error_arrived(result, sentry_receiver)


def test_the_protocol_the_user_sets_wins_over_the_distros_default(
    otel_distro: Path, sentry_receiver: SentryReceiver
) -> None:
    result = _instrumented(
        otel_distro, sentry_receiver, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf"
    )
    _assert_the_error_arrived(result, sentry_receiver)


def test_naming_this_packages_distro_and_configurator_makes_its_defaults_apply(
    otel_distro: Path, sentry_receiver: SentryReceiver
) -> None:
    result = _instrumented(
        otel_distro,
        sentry_receiver,
        OTEL_PYTHON_DISTRO="sentry_bridge",
        OTEL_PYTHON_CONFIGURATOR="sentry_bridge",
    )
    _assert_the_error_arrived(result, sentry_receiver)

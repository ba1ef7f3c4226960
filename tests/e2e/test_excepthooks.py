"""Crashes outside requests under a real ``opentelemetry-instrument``: a script that raises at
top level, a thread whose target raises and a Django management command that raises each give
one unhandled event at a loopback Sentry, and the traceback is still printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import BIN, REPO, base_env
from tests.support.receiver import SentryReceiver

pytestmark = pytest.mark.e2e


def _instrumented(
    command: list[str], receiver: SentryReceiver, cwd: Path = REPO, **env: str
) -> subprocess.CompletedProcess[str]:
    """``command`` under opentelemetry-instrument, errors to ``receiver``, no OTel exporter
    (Sentry only, no collector)."""
    return subprocess.run(
        [str(BIN / "opentelemetry-instrument"), *command],
        env=base_env(
            SENTRY_DSN=receiver.dsn,
            OTEL_TRACES_EXPORTER="none",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def _only_event(receiver: SentryReceiver, result: subprocess.CompletedProcess[str]) -> Any:
    """The one event the finished process sent (it sent everything before exiting)."""
    events = receiver.wait_for_events(1, timeout=5)
    assert len(events) == 1, (events, result.stderr)
    return events[0]


def _check_unhandled(event: dict[str, Any], mechanism: str, type_name: str, value: str) -> None:
    exception = event["exception"]["values"][-1]
    assert exception["type"] == type_name
    assert exception["value"] == value
    assert exception["mechanism"]["type"] == mechanism
    assert exception["mechanism"]["handled"] is False
    # The process's random instance id stays out of the tags (it would split every tag's
    # statistics per process) but is still in the resource context.
    assert "service.instance.id" not in event.get("tags", {})
    assert "service.instance.id" in event["contexts"]["otel"]["resource"]


def test_a_script_that_raises_at_top_level(sentry_receiver: SentryReceiver, tmp_path: Path) -> None:
    script = tmp_path / "nightly.py"
    script.write_text('print("started")\nraise RuntimeError("crash at top level")\n')

    result = _instrumented([sys.executable, str(script)], sentry_receiver)

    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: crash at top level" in result.stderr
    event = _only_event(sentry_receiver, result)
    _check_unhandled(event, "excepthook", "RuntimeError", "crash at top level")
    assert event["transaction"] == "nightly.py"
    assert event["level"] == "error"


def test_a_thread_that_raises(sentry_receiver: SentryReceiver, tmp_path: Path) -> None:
    script = tmp_path / "threads.py"
    script.write_text(
        "import threading\n"
        "def work():\n"
        "    raise ValueError('crash in a thread')\n"
        "thread = threading.Thread(target=work)\n"
        "thread.start()\n"
        "thread.join()\n"
        "print('main thread goes on')\n"
    )

    result = _instrumented([sys.executable, str(script)], sentry_receiver)

    assert result.returncode == 0, result.stderr
    assert "main thread goes on" in result.stdout
    assert "Exception in thread" in result.stderr  # threading's own hook still ran
    assert "ValueError: crash in a thread" in result.stderr
    event = _only_event(sentry_receiver, result)
    _check_unhandled(event, "threading", "ValueError", "crash in a thread")
    assert event["transaction"] == "work"


def test_a_django_management_command_that_raises(
    sentry_receiver: SentryReceiver, tmp_path: Path
) -> None:
    # The test project, with its management commands installed.
    (tmp_path / "crash_settings.py").write_text(
        "from tests.djangoapp.settings import *  # noqa: F403\n"
        "INSTALLED_APPS = [a for a in INSTALLED_APPS if a != 'tests.djangoapp']  # noqa: F405\n"
        "INSTALLED_APPS.append('tests.djangoapp')\n"
    )

    result = _instrumented(
        [str(BIN / "django-admin"), "crash"],
        sentry_receiver,
        DJANGO_SETTINGS_MODULE="crash_settings",
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]),
    )

    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "NightlyJobFailed: the nightly job failed" in result.stderr
    event = _only_event(sentry_receiver, result)
    _check_unhandled(event, "excepthook", "NightlyJobFailed", "the nightly job failed")
    exception = event["exception"]["values"][-1]
    assert exception["module"] == "tests.djangoapp.management.commands.crash"
    assert event["transaction"] == "django-admin"


def test_a_crash_that_was_logged_first_is_one_event(
    sentry_receiver: SentryReceiver, tmp_path: Path
) -> None:
    script = tmp_path / "logged.py"
    script.write_text(
        "import logging\n"
        "try:\n"
        "    raise KeyError('order 7')\n"
        "except KeyError:\n"
        "    logging.getLogger('jobs').exception('could not load the order')\n"
        "    raise\n"
    )

    result = _instrumented([sys.executable, str(script)], sentry_receiver)

    assert result.returncode == 1
    assert "KeyError: 'order 7'" in result.stderr
    event = _only_event(sentry_receiver, result)
    assert event["exception"]["values"][-1]["mechanism"]["type"] == "logging"

"""Delivery across real processes: kill -9 with a spool, gunicorn --preload workers."""

from __future__ import annotations

import signal
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.processes import (
    BIN,
    ServerProcess,
    base_env,
    free_port,
    get,
    helpers_with,
    wait_until_gone,
)
from tests.support.receiver import SentryReceiver

pytestmark = pytest.mark.e2e


def _wait_ready(process: ServerProcess, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while "ready" not in process.output():
        assert process.proc.poll() is None, process.output()
        assert time.monotonic() < deadline, process.output()
        time.sleep(0.05)


@pytest.mark.parametrize("helper", [False, True], ids=["in-process", "helper-process"])
def test_kill_9_with_a_spool_then_restart_delivers_every_event(
    tmp_path: Path, helper: bool
) -> None:
    port = free_port()
    dsn = f"http://publickey@127.0.0.1:{port}/42"
    spool = tmp_path / "spool"
    env = base_env(**({"OTEL_SENTRY_HELPER_PROCESS": "true"} if helper else {}))
    app = ServerProcess(
        [sys.executable, "-m", "tests.support.spool_app", dsn, str(spool), "25"],
        env,
        tmp_path / "first.log",
    )
    try:
        _wait_ready(app)  # errors recorded while Sentry is down
    finally:
        app.stop(signal.SIGKILL)
    with SentryReceiver(port=port) as receiver:
        restarted = ServerProcess(
            [sys.executable, "-m", "tests.support.spool_app", dsn, str(spool), "0"],
            env,
            tmp_path / "second.log",
        )
        try:
            accepted = receiver.wait_for_accepted(25, timeout=30)
        finally:
            restarted.stop()
    values = sorted(e["exception"]["values"][-1]["value"] for e in accepted)
    assert values == sorted(f"failure {n}" for n in range(25))
    assert len({e["event_id"] for e in accepted}) == 25
    assert receiver.invalid == []


@pytest.mark.parametrize("helper", [False, True], ids=["in-process", "helper-process"])
def test_gunicorn_preload_workers_each_deliver_their_events_once(
    sentry_receiver: SentryReceiver, tmp_path: Path, helper: bool
) -> None:
    port = free_port()
    tag = uuid.uuid4().hex
    extra = {"OTEL_SENTRY_HELPER_PROCESS": "true", "E2E_TAG": tag} if helper else {}
    server = ServerProcess(
        [
            str(BIN / "gunicorn"),
            "tests.djangoapp.otel_wsgi:application",
            "--preload",
            "--workers",
            "3",
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "10",
        ],
        base_env(SENTRY_DSN=sentry_receiver.dsn, **extra),
        tmp_path / "gunicorn.log",
    )
    requests = 45
    try:
        server.wait_http(f"http://127.0.0.1:{port}/ok/")
        with ThreadPoolExecutor(max_workers=9) as pool:
            statuses = list(
                pool.map(lambda _: get(f"http://127.0.0.1:{port}/worker-error/"), range(requests))
            )
        assert statuses == [200] * requests
        sentry_receiver.wait_for_accepted(requests, timeout=30)
        if helper:  # one helper per worker (the master made no error: it started none)
            assert len(helpers_with("E2E_TAG", tag)) == 3, server.output()[-3000:]
    finally:
        server.stop()  # graceful: each worker flushes at exit
    events = sentry_receiver.accepted
    assert len(events) == requests  # nothing sent twice, by a worker or the master
    assert len({e["event_id"] for e in events}) == requests
    pids = {e["extra"]["worker_pid"] for e in events}
    assert len(pids) == 3, server.output()[-3000:]
    if helper:
        wait_until_gone("E2E_TAG", tag)  # no helper outlives its worker


def test_with_default_settings_a_storm_of_errors_moves_to_a_helper_and_none_is_lost(
    sentry_receiver: SentryReceiver, tmp_path: Path
) -> None:
    """The example shop under ``opentelemetry-instrument``, no helper setting: a few errors
    are converted in its process, a storm of them starts a helper (helper_process "auto");
    every error arrives once, and the helper ends with the shop."""
    from tests.support.otlp_receiver import OtlpReceiver
    from tests.support.processes import shop_env, start_shop

    tag = uuid.uuid4().hex
    with OtlpReceiver() as otlp:
        env = shop_env(sentry_receiver.dsn, otlp.traces_endpoint, E2E_TAG=tag)
        server, base = start_shop(env, tmp_path / "shop.log")
        try:
            for _ in range(5):
                assert get(f"{base}/orders/9999/") == 500
            sentry_receiver.wait_for_accepted(5, timeout=30)
            assert helpers_with("E2E_TAG", tag) == []  # five errors: no helper

            storm = 400
            with ThreadPoolExecutor(max_workers=8) as pool:
                statuses = list(pool.map(lambda _: get(f"{base}/orders/9999/"), range(storm)))
            assert statuses == [500] * storm
            sentry_receiver.wait_for_accepted(5 + storm, timeout=60)
            assert len(helpers_with("E2E_TAG", tag)) == 1, server.output()[-3000:]
        finally:
            server.stop()  # the shop flushes at exit; its helper sends what it has and ends
    wait_until_gone("E2E_TAG", tag)
    events = sentry_receiver.accepted
    assert len(events) == 5 + storm
    assert len({e["event_id"] for e in events}) == 5 + storm
    assert {e["exception"]["values"][-1]["type"] for e in events} == {"OrderNotFound"}

"""The capture hooks in a real gunicorn worker, events over a real socket."""

from __future__ import annotations

import contextlib
import http.client
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import BIN, ServerProcess, base_env, free_port, get
from tests.support.receiver import SentryReceiver

pytestmark = pytest.mark.e2e


@contextmanager
def _serve(receiver: SentryReceiver, tmp_path: Path, **env: str) -> Iterator[str]:
    port = free_port()
    server = ServerProcess(
        [
            str(BIN / "gunicorn"),
            "tests.djangoapp.otel_wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--graceful-timeout",
            "5",
        ],
        base_env(SENTRY_DSN=receiver.dsn, **env),
        tmp_path / "gunicorn.log",
    )
    try:
        server.wait_http(f"http://127.0.0.1:{port}/ok/")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


_MARKER = "payment gateway answered %s for order %s"  # the /log-error/ view's message


def _until_marker(receiver: SentryReceiver, base: str) -> list[dict[str, Any]]:
    """Every event received, up to a final marker (a logged error without exception). The
    queue is FIFO, so once the marker has arrived, everything sent before it has too."""
    assert get(f"{base}/log-error/") == 200
    wanted = 1
    while True:
        events = receiver.wait_for_events(wanted, timeout=15)
        if events[-1].get("logentry", {}).get("message") == _MARKER:
            return events[:-1]
        wanted = len(events) + 1


@pytest.fixture
def server(sentry_receiver: SentryReceiver, tmp_path: Path) -> Iterator[str]:
    with _serve(sentry_receiver, tmp_path) as base:
        yield base


def _mechanism(event: dict[str, Any]) -> str:
    if "exception" not in event:
        return "message"
    return str(event["exception"]["values"][-1]["mechanism"]["type"])


def test_each_failure_is_one_event_in_a_real_server(
    server: str, sentry_receiver: SentryReceiver
) -> None:
    assert get(f"{server}/boom/") == 500
    assert get(f"{server}/not-found/") == 404
    assert get(f"{server}/log-exception/") == 200
    assert get(f"{server}/breadcrumbs/") == 500
    assert get(f"{server}/many-logs/") == 500
    assert get(f"{server}/unserialisable-extra/") == 200
    events = _until_marker(sentry_receiver, server)
    kinds = [(_mechanism(e), e.get("transaction")) for e in events]
    assert kinds == [
        ("django", "/boom/"),
        ("logging", "/log-exception/"),
        ("django", "/breadcrumbs/"),
        ("django", "/many-logs/"),
        ("message", "/unserialisable-extra/"),
    ]
    assert events[3]["breadcrumbs"]["values"][-1]["message"] == "noise 199"
    assert set(events[4]["extra"]) >= {"opaque", "cycle", "raw"}
    crumbs = events[2]["breadcrumbs"]["values"]
    assert [c["message"] for c in crumbs][-2:] == [
        "step one: cart loaded",
        "step two: stock is low for sku-1",
    ]
    assert all(e["request"]["url"].startswith(server) for e in events)


def test_an_error_while_streaming_is_one_event_of_the_request(
    server: str, sentry_receiver: SentryReceiver
) -> None:
    # gunicorn has sent the status line when the iterator fails: the client sees a cut body,
    # and gunicorn logs the exception (gunicorn.error), which must not be a second event.
    conn = http.client.HTTPConnection(server.removeprefix("http://"), timeout=10)
    conn.request("GET", "/export/")
    response = conn.getresponse()
    assert response.status == 200
    with contextlib.suppress(http.client.HTTPException, OSError):
        response.read()
    conn.close()
    (event,) = _until_marker(sentry_receiver, server)
    assert event["transaction"] == "/export/"
    main = event["exception"]["values"][-1]
    assert main["type"] == "OrderLookupError"
    assert main["mechanism"] == {"type": "django", "handled": False}
    assert event["request"]["url"] == f"{server}/export/"
    assert int(event["contexts"]["trace"]["trace_id"], 16) != 0


def test_sampled_out_traces_still_reach_sentry(
    sentry_receiver: SentryReceiver, tmp_path: Path
) -> None:
    with _serve(sentry_receiver, tmp_path, OTEL_TRACES_SAMPLER="always_off") as base:
        assert get(f"{base}/boom/") == 500
        (event,) = _until_marker(sentry_receiver, base)
        trace_id = event["contexts"]["trace"]["trace_id"]
        assert len(trace_id) == 32 and int(trace_id, 16) != 0
        assert event["exception"]["values"][-1]["type"] == "OrderLookupError"


def test_a_client_that_withholds_its_body_never_holds_the_hook(
    server: str, sentry_receiver: SentryReceiver
) -> None:
    """probe 2026-12-05: the signal hook read a body the view had not read, and a client
    that announced 5,000 bytes and sent none held the worker until gunicorn killed it (and
    the event with it). The body is read only when the server holds it already."""
    import socket

    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(
            b"POST /boom/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000\r\n\r\n"
        )
        reply = client.recv(64)  # the 500 comes while the body is still owed
    assert reply.startswith(b"HTTP/1.1 500")
    (event,) = _until_marker(sentry_receiver, server)
    assert event["transaction"] == "/boom/"
    assert "data" not in event["request"]

"""``otel-sentry-bridge test`` as a user runs it: the installed console script."""

from __future__ import annotations

import re
import subprocess

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from otel_sentry_bridge.setup import cli
from tests.support.bugsink import BugsinkServer
from tests.support.processes import BIN, base_env, free_port
from tests.support.receiver import SentryReceiver

pytestmark = pytest.mark.e2e

KEY = "5ec7e75ec7e75ec7e75ec7e75ec7e75e"
SECRET = KEY[::-1]
OTHER_KEY = "0123456789abcdef0123456789abcdef"


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "otel-sentry-bridge"), *args],
        env=base_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_test_command_delivers_to_a_live_server(bugsink: BugsinkServer) -> None:
    result = _cli("test", SENTRY_DSN=bugsink.dsn)
    assert result.returncode == 0, result.stderr
    event_id = re.search(r"event id: ([0-9a-f]{32})", result.stdout)
    trace_id = re.search(r"trace id: ([0-9a-f]{32})", result.stdout)
    assert event_id and trace_id, result.stdout
    (stored,) = bugsink.wait_for_events(
        1, where=lambda e: e["data"]["event_id"] == event_id.group(1)
    )
    assert stored["data"]["contexts"]["trace"]["trace_id"] == trace_id.group(1)
    assert stored["data"]["exception"]["values"][-1]["type"] == "BridgeTestError"


@pytest.mark.parametrize(
    "dsn", ["nonsense", "ftp://key@host/1", "https://host/1", "https://key@host/"]
)
def test_bad_dsn_exits_2_with_a_message_and_no_secret(dsn: str) -> None:
    result = _cli("test", "--dsn", dsn)
    assert result.returncode == 2
    assert result.stderr.startswith("error:")
    assert "key@" not in result.stderr


@pytest.mark.parametrize(
    "dsn",
    [
        f"https://{KEY}@sentry.example.com /1",
        f"https://{KEY}\t@sentry.example.com/1",
        f"https://{KEY}@*.sentry.example.com/1",
    ],
)
def test_a_dsn_requests_would_refuse_exits_2_without_the_key(dsn: str) -> None:
    result = _cli("test", "--dsn", dsn)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: Sentry DSN")
    assert "Traceback" not in result.stderr
    assert KEY not in result.stdout + result.stderr


def test_an_error_building_the_transport_exits_2_without_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refusing(*args: object, **kwargs: object) -> None:
        raise requests.exceptions.InvalidHeader(f"Invalid header value: sentry_key={KEY}")

    monkeypatch.setattr(cli, "HttpTransport", refusing)
    assert cli.main(["test", "--dsn", f"https://{KEY}@sentry.example.com/1"]) == 2
    out, err = capsys.readouterr()
    assert err == "error: Sentry DSN https://***@sentry.example.com/1 is unusable (InvalidHeader)\n"
    assert KEY not in out + err


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_quoting_the_keys_is_shown_without_them(
    httpserver: HTTPServer, status: int
) -> None:
    def reply(request: Request) -> Response:
        auth = request.headers.get("X-Sentry-Auth", "")
        return Response(f"bad project for {auth}; try sentry_key={OTHER_KEY}", status=status)

    httpserver.expect_request("/api/42/envelope/", method="POST").respond_with_handler(reply)
    dsn = f"http://{KEY}:{SECRET}@127.0.0.1:{httpserver.port}/42"
    result = _cli("test", "--dsn", dsn)
    assert result.returncode == 1
    assert f"HTTP {status}: bad project for Sentry sentry_key=***, " in result.stderr
    for key in (KEY, SECRET, OTHER_KEY):
        assert key not in result.stdout + result.stderr


def test_refused_connection_exits_1() -> None:
    result = _cli("test", "--dsn", f"http://secretkey@127.0.0.1:{free_port()}/1")
    assert result.returncode == 1
    assert "could not reach the server" in result.stderr
    assert "secretkey" not in result.stderr + result.stdout


def test_client_error_shows_the_servers_reason(sentry_receiver: SentryReceiver) -> None:
    sentry_receiver.respond_with(403, body=b'{"detail":"event submission rejected"}')
    result = _cli("test", "--dsn", sentry_receiver.dsn)
    assert result.returncode == 1
    assert "HTTP 403" in result.stderr and "event submission rejected" in result.stderr


def test_no_dsn_at_all_exits_2() -> None:
    result = _cli("test")
    assert result.returncode == 2 and "SENTRY_DSN" in result.stderr


@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "inf", "soon"])
def test_a_bad_timeout_is_a_usage_error(timeout: str) -> None:
    result = _cli("test", "--dsn", "http://key@127.0.0.1:9/1", "--timeout", timeout)
    assert result.returncode == 2
    assert "--timeout" in result.stderr and "Traceback" not in result.stderr

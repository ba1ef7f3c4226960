"""HttpTransport against real sockets: the loopback SentryReceiver and deliberately bad peers."""

from __future__ import annotations

import gzip
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from opentelemetry import context
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from otel_sentry_bridge._version import __version__
from otel_sentry_bridge.deliver import http as http_module
from otel_sentry_bridge.deliver.compress import GZIP_MIN_BYTES
from otel_sentry_bridge.deliver.envelope import decode_envelope, event_envelope
from otel_sentry_bridge.deliver.http import HttpTransport, SendResult
from otel_sentry_bridge.deliver.http_conn import HttpConnection
from otel_sentry_bridge.setup.dsn import Dsn
from tests.support.receiver import SentryReceiver

SECRET_KEY = "5ec7e75ec7e75ec7e75ec7e75ec7e75e"
OTHER_KEY = "0123456789abcdef0123456789abcdef"  # of another project, in a proxy's reply


def make_event(event_id: str = "0123456789abcdef0123456789abcdef") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "timestamp": "2024-05-06T07:08:09.123456Z",
        "platform": "python",
        "level": "error",
        "exception": {"values": [{"type": "ValueError", "value": "boom ✓"}]},
        "contexts": {"trace": {"trace_id": "a" * 32, "span_id": "b" * 16}},
    }


def make_envelope(dsn: Dsn, event: dict[str, Any] | None = None) -> bytes:
    return event_envelope(
        event or make_event(),
        dsn=dsn,
        sent_at=datetime.now(timezone.utc),
        sdk={"name": "otel-sentry-bridge", "version": __version__},
        trace={"trace_id": "a" * 32, "public_key": dsn.public_key},
    )


@pytest.fixture
def dsn(sentry_receiver: SentryReceiver) -> Dsn:
    return Dsn.parse(sentry_receiver.dsn)


@pytest.fixture
def transport(dsn: Dsn) -> Iterator[HttpTransport]:
    sender = HttpTransport(dsn, timeout=5.0)
    yield sender
    sender.close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, so nobody else takes it, never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


class KeepAliveServer:
    """A minimal HTTP/1.1 server that keeps connections open and notes each client port.

    The receiver's werkzeug server closes every connection after one response, so keep-alive
    and per-process connections can only be observed here.
    """

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.paths: list[str] = []  # the request targets: absolute URLs when used as a proxy
        ports, paths = self.ports, self.paths

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                ports.append(self.client_address[1])
                paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.dsn = f"http://publickey@127.0.0.1:{self.server.server_address[1]}/42"


_PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture
def keep_alive_server() -> Iterator[KeepAliveServer]:
    server = KeepAliveServer()
    thread = threading.Thread(
        target=server.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        thread.join()


@pytest.fixture
def via_proxy(keep_alive_server: KeepAliveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Route the transport through requests: an HTTP proxy (the keep-alive server) applies."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(
        "HTTP_PROXY", f"http://127.0.0.1:{keep_alive_server.server.server_address[1]}"
    )


@pytest.fixture(params=["direct", "requests"])
def failing_post(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Callable[[Callable[[], Exception]], None]:
    """Make the POST raise what the given function makes, on either route: the direct
    connection (no proxy) or requests (through a proxy)."""

    def fail_with(make: Callable[[], Exception]) -> None:
        def failing(*args: object, **kwargs: object) -> Any:
            raise make()

        if request.param == "requests":
            request.getfixturevalue("via_proxy")
            monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", failing)
        else:
            monkeypatch.setattr(HttpConnection, "post", failing)

    return fail_with


def test_delivers_the_event_with_sentry_headers(
    sentry_receiver: SentryReceiver, dsn: Dsn, transport: HttpTransport
) -> None:
    result = transport.send(make_envelope(dsn))

    assert result == SendResult(status=200)  # a success's body is never shown
    assert result.ok
    [request] = sentry_receiver.requests
    assert (request.method, request.path) == ("POST", "/api/42/envelope/")
    assert request.headers["X-Sentry-Auth"] == (
        "Sentry sentry_key=publickey, sentry_version=7, "
        f"sentry_client=otel-sentry-bridge/{__version__}"
    )
    assert request.headers["Content-Type"] == "application/x-sentry-envelope"
    assert request.headers["User-Agent"] == f"otel-sentry-bridge/{__version__}"
    assert sentry_receiver.events == [make_event()]


def test_a_small_envelope_is_sent_as_it_is(
    sentry_receiver: SentryReceiver, dsn: Dsn, transport: HttpTransport
) -> None:
    envelope = make_envelope(dsn)
    assert len(envelope) < GZIP_MIN_BYTES
    assert transport.send(envelope).ok
    [request] = sentry_receiver.requests
    assert "Content-Encoding" not in request.headers
    assert request.body == envelope


def test_gzip_body_holds_a_correctly_framed_envelope(
    sentry_receiver: SentryReceiver, dsn: Dsn, transport: HttpTransport
) -> None:
    envelope = make_envelope(dsn, {**make_event(), "extra": {"big": "x" * GZIP_MIN_BYTES}})

    assert transport.send(envelope).ok

    [request] = sentry_receiver.requests
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.body[:2] == b"\x1f\x8b"
    assert gzip.decompress(request.body) == envelope
    headers, [(item_headers, payload)] = decode_envelope(gzip.decompress(request.body))
    assert item_headers["type"] == "event"
    assert item_headers["length"] == len(payload)
    assert headers["event_id"] == make_event()["event_id"]
    assert headers["dsn"] == f"http://publickey@127.0.0.1:{sentry_receiver.port}/42"


def test_without_gzip_sends_the_envelope_as_is(sentry_receiver: SentryReceiver, dsn: Dsn) -> None:
    envelope = make_envelope(dsn)
    sender = HttpTransport(dsn, gzip=False)
    try:
        assert sender.send(envelope).ok
    finally:
        sender.close()

    [request] = sentry_receiver.requests
    assert "Content-Encoding" not in request.headers
    assert request.body == envelope


def test_reuses_one_keep_alive_connection(keep_alive_server: KeepAliveServer) -> None:
    dsn = Dsn.parse(keep_alive_server.dsn)
    sender = HttpTransport(dsn)
    try:
        for _ in range(3):
            assert sender.send(make_envelope(dsn)).ok
    finally:
        sender.close()

    assert len(keep_alive_server.ports) == 3
    assert len(set(keep_alive_server.ports)) == 1


@pytest.mark.parametrize("bypass", [False, True], ids=["via-proxy", "no-proxy"])
def test_http_proxy_and_no_proxy_from_the_environment_are_honoured(
    keep_alive_server: KeepAliveServer, monkeypatch: pytest.MonkeyPatch, bypass: bool
) -> None:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    proxy_port = keep_alive_server.server.server_address[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
    if bypass:
        monkeypatch.setenv("NO_PROXY", "sentry.example.invalid")
    dsn = Dsn.parse("http://publickey@sentry.example.invalid:9000/42")
    sender = HttpTransport(dsn, timeout=5.0)
    try:
        result = sender.send(make_envelope(dsn))
    finally:
        sender.close()

    if bypass:  # straight to a host that does not resolve
        assert not result.ok and result.error
        assert keep_alive_server.paths == []
    else:
        assert result.ok, result
        assert keep_alive_server.paths == ["http://sentry.example.invalid:9000/api/42/envelope/"]


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (429, {"X-Sentry-Rate-Limits": "60:error:organization:quota", "Retry-After": "60"}),
        (429, {"Retry-After": "17"}),
        (500, {}),
        (413, {}),
    ],
)
def test_error_statuses_give_a_non_ok_result_with_headers(
    sentry_receiver: SentryReceiver,
    dsn: Dsn,
    transport: HttpTransport,
    status: int,
    headers: dict[str, str],
) -> None:
    sentry_receiver.respond_with(status, headers, body=b'{"detail":"nope"}')

    result = transport.send(make_envelope(dsn))

    assert not result.ok
    assert result.status == status
    assert result.error is None
    assert result.rate_limits == headers.get("X-Sentry-Rate-Limits")
    assert result.retry_after == headers.get("Retry-After")
    assert result.body == '{"detail":"nope"}'


def test_rate_limit_header_is_captured_on_a_success_too(
    sentry_receiver: SentryReceiver, dsn: Dsn, transport: HttpTransport
) -> None:
    sentry_receiver.respond_with(200, {"X-Sentry-Rate-Limits": "30::organization"})

    result = transport.send(make_envelope(dsn))

    assert (result.ok, result.rate_limits) == (True, "30::organization")


def test_long_response_body_is_cut_to_500_characters(
    sentry_receiver: SentryReceiver, dsn: Dsn, transport: HttpTransport
) -> None:
    sentry_receiver.respond_with(400, body=("é" * 2000).encode())

    assert transport.send(make_envelope(dsn)).body == "é" * 500


@pytest.mark.parametrize("status", [301, 307, 308])
def test_a_redirect_is_not_followed_and_its_reason_says_what_to_do(
    sentry_receiver: SentryReceiver, dsn: Dsn, transport: HttpTransport, status: int
) -> None:
    """probe 2026-12-05: "HTTP 301 (no reason given)" left the user guessing."""
    sentry_receiver.respond_with(status, {"Location": "https://elsewhere.example/api/1/envelope/"})

    result = transport.send(make_envelope(dsn))

    assert (result.ok, result.status) == (False, status)
    assert "set SENTRY_DSN to the address the server answers at" in result.body
    assert len(sentry_receiver.requests) == 1


def _timed_send(sender: HttpTransport, dsn: Dsn) -> tuple[SendResult, float]:
    """One send of an envelope, how long it took; the sender closed after it."""
    try:
        started = time.monotonic()
        result = sender.send(make_envelope(dsn))
        return result, time.monotonic() - started
    finally:
        sender.close()


def test_refused_connection_gives_an_error_without_the_key(closed_port: int) -> None:
    dsn = Dsn.parse(f"http://{SECRET_KEY}:{SECRET_KEY[::-1]}@127.0.0.1:{closed_port}/42")
    result, elapsed = _timed_send(HttpTransport(dsn, timeout=5.0), dsn)

    assert result.status is None
    assert not result.ok
    assert result.error is not None
    assert "ConnectionError" in result.error
    assert SECRET_KEY not in result.error
    assert SECRET_KEY[::-1] not in result.error
    assert elapsed < 2.0  # refused, not timed out


def test_slow_server_times_out_after_about_the_timeout(
    sentry_receiver: SentryReceiver, dsn: Dsn
) -> None:
    sentry_receiver.respond_with(200, delay=30.0)  # released early by the fixture's stop()
    result, elapsed = _timed_send(HttpTransport(dsn, timeout=0.5), dsn)

    assert result.status is None
    assert result.error is not None
    assert "Timeout" in result.error
    assert 0.4 < elapsed < 2.5


def test_exception_text_mentioning_the_key_is_redacted(
    failing_post: Callable[[Callable[[], Exception]], None], dsn: Dsn, transport: HttpTransport
) -> None:
    failing_post(lambda: ConnectionError(f"failed for key {dsn.public_key}"))

    result = transport.send(make_envelope(dsn))

    assert result.error == "ConnectionError: failed for key ***"


def _auth_echoing_dsn(httpserver: HTTPServer, status: int, body: str) -> Dsn:
    """A server refusing every envelope with ``status`` and ``body``, in which ``{auth}`` is
    the X-Sentry-Auth header it got (Bugsink quotes it for a wrong project id)."""

    def reply(request: Request) -> Response:
        return Response(body.format(auth=request.headers.get("X-Sentry-Auth")), status=status)

    httpserver.expect_request("/api/42/envelope/", method="POST").respond_with_handler(reply)
    return Dsn.parse(f"http://{SECRET_KEY}:{SECRET_KEY[::-1]}@127.0.0.1:{httpserver.port}/42")


@pytest.mark.parametrize("status", [401, 403])
def test_keys_in_the_reply_body_are_redacted(httpserver: HTTPServer, status: int) -> None:
    dsn = _auth_echoing_dsn(
        httpserver,
        status,
        f"bad project for {{auth}}; other: sentry_key={OTHER_KEY}&SENTRY_SECRET={OTHER_KEY}; "
        f"Sentry_Key={OTHER_KEY}; key {SECRET_KEY}, secret {SECRET_KEY[::-1]}",
    )
    sender = HttpTransport(dsn, timeout=5.0)
    try:
        result = sender.send(make_envelope(dsn))
    finally:
        sender.close()

    assert result.status == status
    assert result.body == (
        "bad project for Sentry sentry_key=***, sentry_version=7, "
        f"sentry_client=otel-sentry-bridge/{__version__}, sentry_secret=***; "
        "other: sentry_key=***&SENTRY_SECRET=***; Sentry_Key=***; key ***, secret ***"
    )


def test_a_key_at_the_end_of_the_kept_body_is_redacted_whole(httpserver: HTTPServer) -> None:
    """The body is cut to 500 characters after redaction: no key is cut in two first."""
    dsn = _auth_echoing_dsn(httpserver, 403, "\U0001f600" * 497 + SECRET_KEY)
    sender = HttpTransport(dsn, timeout=5.0)
    try:
        result = sender.send(make_envelope(dsn))
    finally:
        sender.close()

    assert result.body == "\U0001f600" * 497 + "***"


def test_any_sentry_key_or_secret_in_exception_text_is_redacted(
    failing_post: Callable[[Callable[[], Exception]], None], dsn: Dsn, transport: HttpTransport
) -> None:
    failing_post(
        lambda: requests.ConnectionError(f"proxy: sentry_key={OTHER_KEY},Sentry_Secret={OTHER_KEY}")
    )

    result = transport.send(make_envelope(dsn))

    assert result.error == "ConnectionError: proxy: sentry_key=***,Sentry_Secret=***"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sentry_key=" * 100_000, "sentry_key=***"),  # the rest is its value
        ("sentry_key" * 100_000, "sentry_key" * 100_000),
        ("sentry_key=" + "a" * 1_000_000, "sentry_key=***"),
        ("SENTRY_" * 150_000, "SENTRY_" * 150_000),
        (SECRET_KEY[:-1] * 30_000, SECRET_KEY[:-1] * 30_000),  # never the whole key
    ],
    ids=["names-only", "no-separator", "huge-value", "prefixes", "near-keys"],
)
def test_redaction_of_adversarial_text(text: str, expected: str) -> None:
    # Its cost is that of one linear scan (a literal prefix and one character class); the
    # bodies it sees are bounded by the bytes the transport reads.
    assert http_module._redact(text, (SECRET_KEY, SECRET_KEY[::-1])) == expected


def test_no_exception_escapes_send(
    failing_post: Callable[[Callable[[], Exception]], None], dsn: Dsn, transport: HttpTransport
) -> None:
    failing_post(lambda: RuntimeError("bug deep inside requests"))

    assert transport.send(make_envelope(dsn)) == SendResult(
        status=None, error="RuntimeError: bug deep inside requests"
    )


@pytest.mark.usefixtures("via_proxy")  # the direct route has no instrumented library
def test_instrumentation_is_suppressed_only_during_the_post(
    monkeypatch: pytest.MonkeyPatch, dsn: Dsn, transport: HttpTransport
) -> None:
    seen: list[bool] = []
    real_send = requests.adapters.HTTPAdapter.send

    def spying_send(self: requests.adapters.HTTPAdapter, *args: Any, **kwargs: Any) -> Any:
        seen.append(is_instrumentation_enabled())
        return real_send(self, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", spying_send)

    assert transport.send(make_envelope(dsn)).ok
    assert seen == [False]
    assert is_instrumentation_enabled()


def test_fallback_suppression_sets_the_context_key() -> None:
    assert is_instrumentation_enabled()

    with http_module._suppress_fallback():
        assert context.get_value(context._SUPPRESS_INSTRUMENTATION_KEY) is True
        assert not is_instrumentation_enabled()

    assert is_instrumentation_enabled()


def test_send_after_close_fails_without_connecting(
    sentry_receiver: SentryReceiver, dsn: Dsn
) -> None:
    sender = HttpTransport(dsn)
    assert sender.send(make_envelope(dsn)).ok
    sender.close()
    sender.close()  # idempotent

    assert sender.send(make_envelope(dsn)) == SendResult(status=None, error="transport is closed")
    assert len(sentry_receiver.requests) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_opens_its_own_connection_and_leaves_the_parents_alone(
    keep_alive_server: KeepAliveServer,
) -> None:
    dsn = Dsn.parse(keep_alive_server.dsn)
    sender = HttpTransport(dsn)
    try:
        assert sender.send(make_envelope(dsn)).ok

        pid = os.fork()
        if pid == 0:  # child: report through the exit code, never return into pytest
            code = 1
            try:
                code = 0 if sender.send(make_envelope(dsn)).ok else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0

        assert sender.send(make_envelope(dsn)).ok
    finally:
        sender.close()

    parent, child, parent_again = keep_alive_server.ports
    assert child != parent  # the child did not write into the parent's socket
    assert parent_again == parent  # and did not close it either


def test_rejects_a_non_positive_timeout(dsn: Dsn) -> None:
    with pytest.raises(ValueError, match="timeout"):
        HttpTransport(dsn, timeout=0)


# --- the receiver itself: an oracle that cannot fail proves nothing -----------------------------


def test_receiver_flags_events_that_relay_rejects() -> None:
    bad_event = {"event_id": "f" * 32, "level": "catastrophic", "timestamp": "yesterday"}
    with SentryReceiver() as receiver:
        dsn = Dsn.parse(receiver.dsn)
        sender = HttpTransport(dsn)
        try:
            assert sender.send(make_envelope(dsn, bad_event)).ok
        finally:
            sender.close()

        assert receiver.wait_for_events(1) == [bad_event]
        [problem] = receiver.invalid
        assert {error["name"] for error in problem["errors"]} == {"level", "timestamp"}


def test_receiver_flags_a_missing_key_and_mismatched_event_id() -> None:
    dsn = Dsn.parse("http://otherkey@127.0.0.1:1/42")
    with SentryReceiver() as receiver:
        envelope = make_envelope(dsn).replace(b"0123456789abcdef", b"fedcba9876543210", 1)
        requests.post(
            f"http://127.0.0.1:{receiver.port}/api/42/envelope/", data=envelope, timeout=5
        )

        problems = [problem["problem"] for problem in receiver.invalid]
        assert problems == [
            "X-Sentry-Auth lacks the public key",
            "envelope event_id differs from the event's",
        ]


def test_receiver_wait_reports_what_it_got_on_timeout() -> None:
    with SentryReceiver() as receiver, pytest.raises(AssertionError, match="got 0: events=\\[\\]"):
        receiver.wait_for_events(1, timeout=0.05)


def test_receiver_wait_returns_when_another_thread_delivers(
    sentry_receiver: SentryReceiver, dsn: Dsn, transport: HttpTransport
) -> None:
    thread = threading.Thread(target=transport.send, args=(make_envelope(dsn),))
    thread.start()
    try:
        assert sentry_receiver.wait_for_events(1) == [make_event()]
    finally:
        thread.join()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/api/1/envelope/",
        "https://o1.ingest.sentry.io/api/45/envelope/",
        "https://Sentry.Example.com/api/1/envelope/",  # requests lower-cases the host
        "https://bücher.example/api/1/envelope/",  # and IDNA-encodes it
        "http://[::1]:9000/api/1/envelope/",
        "http://sentry.example.com:65535/api/1/envelope/",
        "http://sentry.example.com:65536/api/1/envelope/",  # refused
        "http://sentry.example.com:99999/api/1/envelope/",  # refused
        "https://*.sentry.example.com/api/1/envelope/",  # refused
        "https://sentry example.com/api/1/envelope/",  # refused
        "https://sentry.example.com/sub path/api/1/envelope/",  # quoted
    ],
)
@pytest.mark.parametrize("auth", ["Sentry sentry_key=abc", " Sentry sentry_key=abc", "a\r\nb"])
def test_the_url_sent_is_what_requests_would_send_or_requests_refusal(url: str, auth: str) -> None:
    """The URL is checked without requests when it is plain (a helper process need not
    import it); the result, or the error, is the same as requests gives."""
    headers = {"X-Sentry-Auth": auth, "Content-Type": "application/x-sentry-envelope"}
    try:
        expected: object = requests.Request("POST", url, headers=headers).prepare().url
    except Exception as exc:
        expected = type(exc)
    try:
        got: object = http_module._sendable_url(url, headers)
    except Exception as exc:
        got = type(exc)
    assert got == expected

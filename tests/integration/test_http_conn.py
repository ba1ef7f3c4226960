"""HttpTransport's direct route (deliver/http_conn.py) against scripted loopback peers: real
sockets, keep-alive reuse, servers that close, stall, chunk, flood or speak TLS."""

from __future__ import annotations

import gzip
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from otel_sentry_bridge._version import __version__
from otel_sentry_bridge.deliver.compress import GZIP_MIN_BYTES
from otel_sentry_bridge.deliver.http import HttpTransport
from otel_sentry_bridge.deliver.http_conn import HttpConnection
from otel_sentry_bridge.setup.dsn import Dsn
from tests.support.raw_http import Peer, RawServer, reply, self_signed_cert

SECRET_KEY = "5ec7e75ec7e75ec7e75ec7e75ec7e75e"
ENVELOPE = b'{"event_id":"0123456789abcdef0123456789abcdef"}\n{"type":"event"}\n{}\n'
_ENVIRONMENT = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
_ENVIRONMENT += ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

Serve = Callable[..., RawServer]
Open = Callable[..., HttpTransport]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[RawServer] = []

    def start(handler: Callable[[Peer], None], **kwargs: object) -> RawServer:
        servers.append(RawServer(handler, **kwargs))  # type: ignore[arg-type]
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def open_transport() -> Iterator[Open]:
    transports: list[HttpTransport] = []

    def make(dsn: str, **kwargs: object) -> HttpTransport:
        kwargs.setdefault("gzip", False)
        transports.append(HttpTransport(Dsn.parse(dsn), **kwargs))  # type: ignore[arg-type]
        return transports[-1]

    yield make
    for transport in transports:
        transport.close()


def answering(*replies: bytes) -> Callable[[Peer], None]:
    """A handler answering each request on a connection with the next of ``replies`` (the
    last one again when they run out), keeping the connection open."""

    def handler(peer: Peer) -> None:
        sent = 0
        while peer.read_request() is not None:
            if not peer.send(replies[min(sent, len(replies) - 1)]):
                return
            sent += 1

    return handler


def timed(transport: HttpTransport) -> tuple[float, str | None]:
    started = time.monotonic()
    result = transport.send(ENVELOPE)
    assert result.status is None
    return time.monotonic() - started, result.error


def test_many_sends_share_one_connection(serve: Serve, open_transport: Open) -> None:
    server = serve(answering(reply()))
    sender = open_transport(server.dsn())

    results = [sender.send(ENVELOPE) for _ in range(50)]

    assert all(r.ok and r.body == "" for r in results)  # a success's body is never shown
    assert (server.accepted, len(server.bodies)) == (1, 50)
    assert isinstance(sender._route, HttpConnection)


def test_a_reply_head_seen_before_is_not_parsed_again_and_a_new_one_is(
    serve: Serve, open_transport: Open, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otel_sentry_bridge.deliver import http_conn

    parsed: list[int] = []
    headers = http_conn._headers

    def counted(lines: list[bytes]) -> dict[bytes, bytes]:
        parsed.append(len(lines))
        return headers(lines)

    monkeypatch.setattr(http_conn, "_headers", counted)
    ok = reply(headers={"Date": "Sat, 05 Dec 2026 19:00:00 GMT"})
    limited = reply(429, {"X-Sentry-Rate-Limits": "60:error:org", "Retry-After": "60"})
    server = serve(answering(ok, ok, ok, limited, ok))
    sender = open_transport(server.dsn())

    results = [sender.send(ENVELOPE) for _ in range(5)]

    assert [r.status for r in results] == [200, 200, 200, 429, 200]
    assert results[3].rate_limits == "60:error:org" and results[3].retry_after == "60"
    assert results[4].rate_limits is None and results[4].retry_after is None
    assert len(parsed) == 3  # the first 200, the 429, the 200 after it
    assert server.accepted == 1


LARGE = ENVELOPE.replace(b"{}", b'{"message":"%s"}' % (b"x" * GZIP_MIN_BYTES))


def test_request_head_and_gzipped_body(serve: Serve, open_transport: Open) -> None:
    server = serve(answering(reply()))
    assert open_transport(server.dsn(), gzip=True).send(LARGE).ok

    [lines] = server.heads
    assert lines[0] == "POST /api/42/envelope/ HTTP/1.1"
    assert set(lines[1:]) == {
        f"Host: 127.0.0.1:{server.port}",
        "Accept-Encoding: identity",
        f"X-Sentry-Auth: Sentry sentry_key=publickey, sentry_version=7, "
        f"sentry_client=otel-sentry-bridge/{__version__}",
        "Content-Type: application/x-sentry-envelope",
        f"User-Agent: otel-sentry-bridge/{__version__}",
        "Content-Encoding: gzip",
        "Connection: keep-alive",
        f"Content-Length: {len(server.bodies[0])}",
    }
    assert gzip.decompress(server.bodies[0]) == LARGE


def test_a_small_envelope_goes_as_it_is(serve: Serve, open_transport: Open) -> None:
    server = serve(answering(reply()))
    assert open_transport(server.dsn(), gzip=True).send(ENVELOPE).ok
    [lines] = server.heads
    assert not any(line.startswith("Content-Encoding") for line in lines)
    assert server.bodies == [ENVELOPE]


@pytest.mark.parametrize(
    ("farewell", "reset"),
    [(b"", False), (b"", True), (reply(408, {"Connection": "close"}, b""), False)],
    ids=["fin", "rst", "unasked-408"],
)
def test_a_connection_the_server_closed_while_idle_is_replaced(
    serve: Serve, open_transport: Open, farewell: bytes, reset: bool
) -> None:
    closed = threading.Event()

    def one_then_close(peer: Peer) -> None:
        if peer.read_request() is not None and peer.send(reply()):
            peer.send(farewell)
        peer.close(reset=reset)
        closed.set()

    server = serve(one_then_close)
    sender = open_transport(server.dsn())
    assert sender.send(ENVELOPE).ok
    assert closed.wait(5)
    time.sleep(0.05)  # the FIN or RST reaches the client's socket

    assert sender.send(ENVELOPE).status == 200
    assert (server.accepted, server.connections) == (2, [0, 1])


def test_a_request_the_server_dropped_unanswered_is_sent_once_more(
    serve: Serve, open_transport: Open
) -> None:
    """The server closes a kept connection as the request arrives (its idle timeout
    racing the send): no byte of a reply came, so it goes again on a new connection."""

    def drop_the_second(peer: Peer) -> None:
        if peer.read_request() is not None and peer.send(reply()) and peer.index == 0:
            peer.read_request()  # and close without a word
        else:
            answering(reply())(peer)

    server = serve(drop_the_second)
    sender = open_transport(server.dsn())
    assert sender.send(ENVELOPE).ok

    assert sender.send(ENVELOPE).ok
    assert server.connections == [0, 0, 1]
    assert sender.send(ENVELOPE).ok
    assert server.connections == [0, 0, 1, 1]


def test_no_resend_once_a_byte_of_the_reply_arrived(serve: Serve, open_transport: Open) -> None:
    def second_reply_cut(peer: Peer) -> None:
        if peer.read_request() is not None and peer.send(reply()) and peer.read_request():
            peer.send(b"HTTP/1.1 20")  # then closed

    server = serve(second_reply_cut)
    sender = open_transport(server.dsn())
    assert sender.send(ENVELOPE).ok

    result = sender.send(ENVELOPE)

    assert result.status is None
    assert result.error == "ConnectionError: server closed the connection without a full reply"
    assert server.connections == [0, 0]  # not sent again
    assert sender.send(ENVELOPE).ok  # a new connection
    assert server.connections == [0, 0, 1]


_NOPE = b'{"detail":"nope"}'


@pytest.mark.parametrize(
    ("answer", "connections"),
    [
        # A refusal: its body is kept (for the warning), so the test sees it was read whole.
        (reply(403, headers={"Connection": "close"}, body=_NOPE), 3),
        (reply(403, headers={"connection": "Upgrade, CLOSE"}, body=_NOPE), 3),
        (reply(403, version="HTTP/1.0", body=_NOPE), 3),
        (reply(403, version="HTTP/1.0", headers={"Connection": "keep-alive"}, body=_NOPE), 1),
        (reply(403, length=False, body=_NOPE), 3),  # read until the server closes
        (reply(204, body=b"", length=False), 1),  # no body by definition
        (reply(500, body=b"x" * 50_000), 1),  # drained
        (reply(500, body=b"x" * 500_000), 3),  # too long to drain: closed after the start
    ],
    ids=["close", "close-token", "http10", "http10-keep-alive", "no-length", "204", "50k", "500k"],
)
def test_the_connection_is_kept_only_when_the_reply_allows(
    serve: Serve, open_transport: Open, answer: bytes, connections: int
) -> None:
    framed = b"Content-Length" in answer or b" 204 " in answer

    def handler(peer: Peer) -> None:  # keeps the connection open unless the reply is unframed
        while peer.read_request() is not None and peer.send(answer) and framed:
            pass

    server = serve(handler)
    sender = open_transport(server.dsn())

    results = [sender.send(ENVELOPE) for _ in range(3)]

    status = int(answer[9:12])
    expected = answer.partition(b"\r\n\r\n")[2][:500].decode()
    assert [(r.status, r.body) for r in results] == [(status, expected)] * 3
    assert server.accepted == connections


def test_chunked_reply_is_decoded_and_the_connection_kept(
    serve: Serve, open_transport: Open
) -> None:
    text = b'{"detail":"event dropped: rate limited"}'
    chunks = b"".join(
        b"%x;ext=1\r\n%s\r\n" % (len(text[i : i + 7]), text[i : i + 7])
        for i in (range(0, len(text), 7))
    )
    head = b"HTTP/1.1 429 Slow Down\r\nTransfer-Encoding: chunked\r\nRetry-After: 9\r\n\r\n"
    server = serve(answering(head + chunks + b"0\r\nX-Trailer: 1\r\n\r\n"))
    sender = open_transport(server.dsn())

    results = [sender.send(ENVELOPE) for _ in range(2)]

    assert [(r.status, r.retry_after, r.body) for r in results] == [(429, "9", text.decode())] * 2
    assert server.accepted == 1


def test_a_huge_chunked_reply_keeps_its_start_and_closes(
    serve: Serve, open_transport: Open
) -> None:
    chunk = b"4000\r\n" + b"y" * 0x4000 + b"\r\n"
    head = b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n"
    server = serve(answering(head + chunk * 64 + b"0\r\n\r\n"))
    sender = open_transport(server.dsn())

    assert [sender.send(ENVELOPE).body for _ in range(2)] == ["y" * 500] * 2
    assert server.accepted == 2


def test_interim_replies_are_skipped(serve: Serve, open_transport: Open) -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    server = serve(answering(interim + reply(201)))
    sender = open_transport(server.dsn())

    assert [sender.send(ENVELOPE).status for _ in range(2)] == [201, 201]
    assert server.accepted == 1


def test_rate_limit_headers_in_any_case_and_repeated(serve: Serve, open_transport: Open) -> None:
    answer = (
        b"HTTP/1.1 429 Too Many Requests\r\nx-sentry-rate-limits: 60:error:organization:quota\r\n"
        b"RETRY-AFTER: 60\r\nX-Sentry-Rate-Limits: 5::project\r\nContent-Length: 17\r\n\r\n"
        b'{"detail":"nope"}'
    )
    server = serve(answering(answer))

    result = open_transport(server.dsn()).send(ENVELOPE)

    assert (result.status, result.error, result.body) == (429, None, '{"detail":"nope"}')
    assert result.rate_limits == "60:error:organization:quota, 5::project"
    assert result.retry_after == "60"


def _flood(peer: Peer) -> None:
    if peer.read_request() is not None and peer.send(b"HTTP/1.1 200 OK\r\n"):
        while peer.send(b"X-Junk: " + b"a" * 1000 + b"\r\n"):
            pass


def _many_headers(peer: Peer) -> None:
    answering(reply(headers={f"X-{i}": "1" for i in range(150)}))(peer)


def _endless_line(peer: Peer) -> None:
    if peer.read_request() is not None and peer.send(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 100_000):
        peer.read_request()  # until the client gives up


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (_flood, "ProtocolError: reply head longer than 65536 bytes"),
        (_many_headers, "ProtocolError: more than 100 headers"),
        (_endless_line, "ProtocolError: reply head longer than 65536 bytes"),
        (answering(b"hello there\r\n\r\n"), "ProtocolError: bad status line b'hello there'"),
    ],
    ids=["endless-headers", "many-headers", "endless-line", "garbage"],
)
def test_a_hostile_reply_head_gives_an_error_quickly(
    serve: Serve, open_transport: Open, handler: Callable[[Peer], None], error: str
) -> None:
    server = serve(handler)
    sender = open_transport(server.dsn(), timeout=5.0)

    elapsed, text = timed(sender)

    assert (elapsed < 2.0, text) == (True, error)


def test_the_error_text_is_redacted(serve: Serve, open_transport: Open) -> None:
    server = serve(answering(f"XTTP sentry_key={SECRET_KEY} {SECRET_KEY}\r\n\r\n".encode()))
    sender = open_transport(f"http://{SECRET_KEY}@127.0.0.1:{server.port}/42")

    assert timed(sender)[1] == "ProtocolError: bad status line b'XTTP sentry_key=*** ***'"


def _silent(peer: Peer) -> None:
    while peer.read_request() is not None:
        pass


def _dribble(peer: Peer) -> None:
    if peer.read_request() is not None and peer.send(b"HTTP/1.1 200 OK\r\nX-Slow: "):
        while peer.send(b"a"):
            time.sleep(0.05)


@pytest.mark.parametrize(
    ("handler", "error"),
    [(_silent, "TimeoutError: no reply for 0.3 s"), (_dribble, "within 0.6 s")],
    ids=["silent", "one-byte-at-a-time"],
)
def test_a_server_that_never_finishes_its_reply_times_out(
    serve: Serve, open_transport: Open, handler: Callable[[Peer], None], error: str
) -> None:
    server = serve(handler)
    sender = open_transport(server.dsn(), timeout=0.3)

    elapsed, text = timed(sender)

    assert 0.25 < elapsed < 1.5
    assert text is not None and error in text and "Timeout" in text


def test_close_during_a_send_lets_it_finish_then_closes(serve: Serve, open_transport: Open) -> None:
    release, client_gone = threading.Event(), threading.Event()

    def held(peer: Peer) -> None:
        ready = peer.read_request() is not None and release.wait(5) and peer.send(reply())
        if ready and peer.read_request() is None:
            client_gone.set()

    server = serve(held)
    sender = open_transport(server.dsn())
    results = []
    thread = threading.Thread(target=lambda: results.append(sender.send(ENVELOPE)))
    thread.start()
    while not server.bodies:
        time.sleep(0.01)

    sender.close()  # returns at once: the send is under way
    release.set()
    thread.join(5)

    assert results[0].ok
    assert client_gone.wait(5)
    assert sender.send(ENVELOPE).error == "transport is closed"
    assert server.accepted == 1


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    made = self_signed_cert(tmp_path_factory.mktemp("tls"))
    if made is None:
        pytest.skip("needs the openssl command")
    return made


@pytest.fixture
def tls_server(serve: Serve, certificate: tuple[Path, Path]) -> RawServer:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return serve(answering(reply()), tls=context)


@pytest.mark.parametrize("how", ["verify-false", "verify-file", "ca-bundle-env"])
def test_tls_to_a_self_signed_server(
    tls_server: RawServer,
    open_transport: Open,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    verify: bool | str = {"verify-false": False, "verify-file": str(certificate[0])}.get(how, True)
    if how == "ca-bundle-env":
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    sender = open_transport(tls_server.dsn("https", "localhost"), verify=verify)

    assert [sender.send(ENVELOPE).ok for _ in range(3)] == [True] * 3
    assert (tls_server.accepted, len(tls_server.bodies)) == (1, 3)
    assert isinstance(sender._route, HttpConnection)


@pytest.mark.parametrize(
    ("host", "verify", "error"),
    [
        ("localhost", True, "certificate verify failed: self-signed certificate"),
        ("127.0.0.1", "cert", "IP address mismatch"),  # the certificate names localhost only
    ],
    ids=["default-ca-bundle", "wrong-host"],
)
def test_tls_verification_failures_give_an_error(
    tls_server: RawServer,
    open_transport: Open,
    certificate: tuple[Path, Path],
    host: str,
    verify: bool | str,
    error: str,
) -> None:
    verify = str(certificate[0]) if verify == "cert" else verify
    sender = open_transport(tls_server.dsn("https", host), verify=verify)

    text = timed(sender)[1]

    assert text is not None and text.startswith("SSLCertVerificationError") and error in text
    assert tls_server.bodies == []


def test_a_missing_ca_bundle_gives_an_error_without_connecting(
    tls_server: RawServer, open_transport: Open, tmp_path: Path
) -> None:
    sender = open_transport(tls_server.dsn("https", "localhost"), verify=str(tmp_path / "no.pem"))

    assert timed(sender)[1] == (
        f"OSError: Could not find a suitable TLS CA certificate bundle: {tmp_path / 'no.pem'}"
    )
    assert tls_server.accepted == 0


def test_a_proxy_for_the_url_routes_through_requests(
    serve: Serve, open_transport: Open, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, proxy = serve(answering(reply())), serve(answering(reply()))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    proxied = open_transport("http://publickey@sentry.example.invalid:9000/42")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = open_transport(target.dsn())

    assert proxied.send(ENVELOPE).ok and direct.send(ENVELOPE).ok

    assert isinstance(proxied._route, requests.Session)
    assert proxy.heads[0][0] == "POST http://sentry.example.invalid:9000/api/42/envelope/ HTTP/1.1"
    assert isinstance(direct._route, HttpConnection)
    assert target.heads[0][0] == "POST /api/42/envelope/ HTTP/1.1"
    assert len(proxy.heads) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_uses_its_own_connection(serve: Serve, open_transport: Open) -> None:
    server = serve(answering(reply()))
    sender = open_transport(server.dsn())
    assert sender.send(ENVELOPE).ok and sender.send(ENVELOPE).ok

    pid = os.fork()
    if pid == 0:  # child: report through the exit code, never return into pytest
        code = 1
        try:
            code = 0 if sender.send(ENVELOPE).ok and sender.send(ENVELOPE).ok else 3
            sender.close()  # closes the child's connection only
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

    assert sender.send(ENVELOPE).ok and sender.send(ENVELOPE).ok
    assert server.connections == [0, 0, 1, 1, 0, 0]

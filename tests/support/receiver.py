"""A loopback Sentry endpoint: a real HTTP server on 127.0.0.1 that records envelopes.

Every event it receives is checked by Sentry's own normaliser (``sentry-relay``); problems land
in :attr:`SentryReceiver.invalid`, and the ``sentry_receiver`` fixture fails the test on them.

Thread rules: the server answers on its own threads and appends to ``requests``, ``events``
and ``invalid`` under a lock *before* replying, so after a synchronous ``send`` returns they
are up to date; from other threads, block in :meth:`SentryReceiver.wait_for_events` first.
The werkzeug server closes each connection after one response (no keep-alive).
"""

from __future__ import annotations

import collections
import gzip
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sentry_relay.processing import StoreNormalizer
from werkzeug import Request, Response
from werkzeug.datastructures import Headers

from otel_sentry_bridge.deliver.envelope import decode_envelope

__all__ = ["ReceivedRequest", "SentryReceiver", "sentry_receiver"]

PUBLIC_KEY = "publickey"
PROJECT_ID = "42"
ENVELOPE_PATH = f"/api/{PROJECT_ID}/envelope/"


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as it arrived: ``body`` is the wire bytes, ``envelope`` after gunzip."""

    method: str
    path: str
    headers: Headers  # case-insensitive lookups
    body: bytes
    envelope: bytes
    remote_port: int  # the same port twice means a reused keep-alive connection
    received_at: float = 0.0  # time.monotonic() on arrival
    status: int = 200  # what the receiver answered


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: dict[str, str]
    body: bytes | None
    delay: float


class _QuickStopServer(HTTPServer):
    def thread_target(self) -> None:
        # serve_forever() polls for shutdown every 0.5 s by default: that much per test.
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.02)


class SentryReceiver:
    """Start with :meth:`start` (or ``with``), point a transport at :attr:`dsn`."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[ReceivedRequest] = []
        self.events: list[dict[str, Any]] = []  # every event received, whatever the answer
        self.accepted: list[dict[str, Any]] = []  # events answered with a 2xx
        self.invalid: list[dict[str, Any]] = []  # events Sentry would reject, and why
        self.transactions: list[dict[str, Any]] = []  # transaction items, whatever the answer
        self._server = _QuickStopServer(host="127.0.0.1", port=port, threaded=True)
        self._server.no_handler_status_code = 404
        self._server.expect_request(ENVELOPE_PATH, method="POST").respond_with_handler(self._handle)
        self._cond = threading.Condition()
        self._replies: collections.deque[_Reply] = collections.deque()
        self._stopping = threading.Event()
        self._normalizer = StoreNormalizer()

    @property
    def port(self) -> int:
        return int(self._server.port)

    @property
    def dsn(self) -> str:
        return f"http://{PUBLIC_KEY}@127.0.0.1:{self.port}/{PROJECT_ID}"

    def start(self) -> SentryReceiver:
        self._stopping.clear()
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving; releases any reply still sleeping in ``delay``."""
        self._stopping.set()
        server = self._server.server
        if self._server.is_running():
            self._server.stop()
        if server is not None:
            server.server_close()  # HTTPServer.stop leaves the listening socket open

    def __enter__(self) -> SentryReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def respond_with(
        self,
        status: int = 200,
        headers: dict[str, str] | None = None,
        *,
        body: bytes | None = None,
        delay: float = 0.0,
    ) -> None:
        """Queue the reply to the next envelope (FIFO); unqueued requests get 200 + ``{"id"}``.

        ``delay`` holds the reply that many seconds first (cut short by :meth:`stop`).
        """
        with self._cond:
            self._replies.append(_Reply(status, dict(headers or {}), body, delay))

    def wait_for_accepted(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``n`` events were answered with a 2xx; return them all."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.accepted) >= n, timeout):
                raise AssertionError(
                    f"expected {n} accepted event(s) within {timeout}s, got "
                    f"{len(self.accepted)} (requests: {[r.status for r in self.requests]})"
                )
            return list(self.accepted)

    def client_reports(self) -> list[dict[str, Any]]:
        """The ``client_report`` payloads received (what the sender said it dropped)."""
        with self._cond:
            envelopes = [r.envelope for r in self.requests]
        reports = []
        for envelope in envelopes:
            try:
                _, items = decode_envelope(envelope)
            except ValueError:
                continue
            reports += [json.loads(p) for h, p in items if h.get("type") == "client_report"]
        return reports

    def wait_for_events(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``n`` events arrived; return them all, or fail with what came."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.events) >= n, timeout):
                raise AssertionError(
                    f"expected {n} event(s) within {timeout}s, got {len(self.events)}: "
                    f"events={self.events!r} requests={len(self.requests)} "
                    f"invalid={self.invalid!r}"
                )
            return list(self.events)

    def wait_for_transactions(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``n`` transactions arrived; return them all."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.transactions) >= n, timeout):
                raise AssertionError(
                    f"expected {n} transaction(s) within {timeout}s, got "
                    f"{len(self.transactions)}: invalid={self.invalid!r}"
                )
            return list(self.transactions)

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        """Like :meth:`wait_for_events`, for requests (also those that carried no event)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= n, timeout):
                raise AssertionError(
                    f"expected {n} request(s) within {timeout}s, got {self.requests!r}"
                )
            return list(self.requests)

    def _handle(self, request: Request) -> Response:
        body = request.get_data()
        try:
            envelope = (
                gzip.decompress(body)
                if request.headers.get("Content-Encoding", "").lower() == "gzip"
                else body
            )
        except (OSError, EOFError) as exc:
            envelope = b""
            self._record_invalid({"problem": f"bad gzip body: {exc}"})
        received, problems = self._check(request, envelope)
        events = [e for e in received if e.get("type") != "transaction"]
        transactions = [e for e in received if e.get("type") == "transaction"]
        with self._cond:
            reply = self._replies.popleft() if self._replies else None
            status = reply.status if reply is not None else 200
            self.requests.append(
                ReceivedRequest(
                    method=request.method,
                    path=request.path,
                    headers=Headers(request.headers),
                    body=body,
                    envelope=envelope,
                    remote_port=int(request.environ.get("REMOTE_PORT", 0)),
                    received_at=time.monotonic(),
                    status=status,
                )
            )
            self.events.extend(events)
            self.transactions.extend(transactions)
            if 200 <= status < 300:
                self.accepted.extend(events)
            self.invalid.extend(problems)
            self._cond.notify_all()
        if reply is None:
            event_id = events[0].get("event_id") if events else None
            return Response(json.dumps({"id": event_id}), 200, mimetype="application/json")
        if reply.delay:
            self._stopping.wait(reply.delay)
        return Response(reply.body or b"", reply.status, headers=reply.headers)

    def _check(
        self, request: Request, envelope: bytes
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Decode the envelope and run each event (and transaction) through relay's
        normaliser."""
        problems: list[dict[str, Any]] = []
        auth = request.headers.get("X-Sentry-Auth", "")
        if f"sentry_key={PUBLIC_KEY}" not in auth:
            problems.append({"problem": "X-Sentry-Auth lacks the public key", "header": auth})
        try:
            headers, items = decode_envelope(envelope)
        except ValueError as exc:
            return [], [*problems, {"problem": f"undecodable envelope: {exc}"}]
        events: list[dict[str, Any]] = []
        for item_headers, payload in items:
            item_type = item_headers.get("type")
            if item_type not in ("event", "transaction"):
                continue
            try:
                event = json.loads(payload)
            except ValueError as exc:
                problems.append({"problem": f"event payload is not JSON: {exc}"})
                continue
            if (event.get("type") == "transaction") != (item_type == "transaction"):
                problems.append({"problem": f"a {event.get('type')!r} event in a {item_type} item"})
            events.append(event)
            if headers.get("event_id") != event.get("event_id"):
                problems.append(
                    {
                        "problem": "envelope event_id differs from the event's",
                        "header": headers.get("event_id"),
                        "event": event.get("event_id"),
                    }
                )
            problems.extend(self._normalize(payload, event))
        return events, problems

    def _normalize(self, payload: bytes, event: dict[str, Any]) -> list[dict[str, Any]]:
        # raw_event= validates the exact bytes we sent (event= would re-serialise the dict).
        try:
            with self._cond:  # one native normaliser object; do not share it across threads
                normalized = self._normalizer.normalize_event(raw_event=payload)
        except Exception as exc:  # relay raises on JSON it cannot read
            return [{"event_id": event.get("event_id"), "problem": str(exc).splitlines()[0]}]
        errors = normalized.get("errors")
        if errors:
            return [{"event_id": event.get("event_id"), "errors": errors}]
        return []

    def _record_invalid(self, problem: dict[str, Any]) -> None:
        with self._cond:
            self.invalid.append(problem)


@pytest.fixture
def sentry_receiver() -> Iterator[SentryReceiver]:
    """A started :class:`SentryReceiver`; the test fails if any received event was invalid."""
    receiver = SentryReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
    assert receiver.invalid == [], "the receiver got events Sentry would reject"

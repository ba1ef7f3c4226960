"""A loopback Sentry that also takes OTLP: envelopes as :class:`SentryReceiver` does, and
``POST /api/<project>/integration/otlp/v1/traces`` and ``.../v1/logs`` on the same port, as
Sentry's OTLP ingestion does (protobuf, ``x-sentry-auth``, optionally gzip or deflate).

Thread rules as in :mod:`tests.support.receiver`: each OTLP request is decoded and recorded
under a lock before the reply is sent. Replies can be scripted (:meth:`SentryOtlpReceiver.
otlp_reply`) or held open until released (:meth:`SentryOtlpReceiver.hold_otlp`), to stand in
for a Sentry that fails or hangs.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from werkzeug import Request, Response

from tests.support.otlp_logs import ReceivedLogRecord as ReceivedLog
from tests.support.otlp_logs import decode_logs_request
from tests.support.otlp_receiver import ReceivedSpan, decode_traces_request
from tests.support.receiver import PROJECT_ID, PUBLIC_KEY, SentryReceiver

__all__ = [
    "LOGS_PATH",
    "TRACES_PATH",
    "OtlpRequest",
    "ReceivedLog",
    "SentryOtlpReceiver",
    "decode_logs_request",
    "sentry_otlp_receiver",
]

TRACES_PATH = f"/api/{PROJECT_ID}/integration/otlp/v1/traces"
LOGS_PATH = f"/api/{PROJECT_ID}/integration/otlp/v1/logs"
AUTH = f"sentry sentry_key={PUBLIC_KEY}"
_PROTOBUF = "application/x-protobuf"
_T = TypeVar("_T")


@dataclass(frozen=True)
class OtlpRequest:
    """One OTLP request as it arrived, whatever the answer."""

    signal: str  # "traces" or "logs"
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes  # decompressed
    status: int  # what the receiver answered
    items: int  # spans or log records decoded (0 when undecodable)


class SentryOtlpReceiver(SentryReceiver):
    """Start with :meth:`start` (or ``with``); :attr:`dsn` points both the bridge and the
    OTLP exporters here."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self._otlp = threading.Condition()
        self.otlp_requests: list[OtlpRequest] = []
        self._spans: list[ReceivedSpan] = []  # from requests answered 2xx
        self._logs: list[ReceivedLog] = []  # likewise
        self._status = 200
        self._reply_headers: dict[str, str] = {}
        self._held = False
        self._in_flight = 0
        self._released = threading.Event()
        for signal, path in (("traces", TRACES_PATH), ("logs", LOGS_PATH)):
            self._server.expect_request(path, method="POST").respond_with_handler(
                self._otlp_handler(signal)
            )

    def stop(self) -> None:
        self.release_otlp()
        super().stop()

    # -- scripting ------------------------------------------------------------------------------

    def otlp_reply(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        """Answer every OTLP request from now on with ``status`` and ``headers``."""
        with self._otlp:
            self._status, self._reply_headers = status, dict(headers or {})

    def hold_otlp(self) -> None:
        """Keep OTLP requests from now on waiting for their reply until :meth:`release_otlp`."""
        with self._otlp:
            self._held = True
            self._released.clear()

    def release_otlp(self) -> None:
        with self._otlp:
            self._held = False
            self._released.set()

    # -- what arrived ---------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """OTLP requests received and not answered yet (held)."""
        with self._otlp:
            return self._in_flight

    def spans(self) -> list[ReceivedSpan]:
        with self._otlp:
            return list(self._spans)

    def logs(self) -> list[ReceivedLog]:
        with self._otlp:
            return list(self._logs)

    def wait_for_spans(
        self, predicate: Callable[[ReceivedSpan], bool] | None = None, count: int = 1
    ) -> list[ReceivedSpan]:
        return self._wait(lambda: self._spans, predicate, count, "span")

    def wait_for_logs(
        self, predicate: Callable[[ReceivedLog], bool] | None = None, count: int = 1
    ) -> list[ReceivedLog]:
        return self._wait(lambda: self._logs, predicate, count, "log record")

    def wait_for_otlp_requests(
        self, predicate: Callable[[OtlpRequest], bool] | None = None, count: int = 1
    ) -> list[OtlpRequest]:
        return self._wait(lambda: self.otlp_requests, predicate, count, "OTLP request")

    def wait_for_in_flight(self, count: int = 1, timeout: float = 15.0) -> None:
        with self._otlp:
            if not self._otlp.wait_for(lambda: self._in_flight >= count, timeout):
                raise AssertionError(
                    f"expected {count} held OTLP request(s) within {timeout}s, got "
                    f"{self._in_flight}; requests: {self._summary()}"
                )

    def _wait(
        self,
        items: Callable[[], list[_T]],
        predicate: Callable[[_T], bool] | None,
        count: int,
        what: str,
        timeout: float = 15.0,
    ) -> list[_T]:
        matches: list[_T] = []

        def enough() -> bool:
            nonlocal matches
            matches = [i for i in items() if predicate is None or predicate(i)]
            return len(matches) >= count

        with self._otlp:
            if self._otlp.wait_for(enough, timeout):
                return matches
            raise AssertionError(
                f"expected {count} matching {what}(s) within {timeout}s, {len(matches)} "
                f"matched of {items()!r}; requests: {self._summary()}"
            )

    def _summary(self) -> str:
        return repr([(r.signal, r.status, r.items) for r in self.otlp_requests])

    # -- the handler ----------------------------------------------------------------------------

    def _otlp_handler(self, signal: str) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            return self._handle_otlp(signal, request)

        return handle

    def _handle_otlp(self, signal: str, request: Request) -> Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        body, problem = _decompressed(request.get_data(), headers.get("content-encoding", ""))
        spans: list[ReceivedSpan] = []
        logs: list[ReceivedLog] = []
        if problem is None and headers.get("content-type", "").split(";")[0] != _PROTOBUF:
            problem = f"unsupported Content-Type {headers.get('content-type')!r}"
        if problem is None and headers.get("x-sentry-auth") != AUTH:
            problem = f"x-sentry-auth is {headers.get('x-sentry-auth')!r}"
        if problem is None:
            try:
                if signal == "traces":
                    spans = decode_traces_request(body)
                else:
                    logs = decode_logs_request(body)
            except (DecodeError, ValueError) as exc:
                problem = f"undecodable: {exc}"
        with self._otlp:
            status, reply_headers = (400, {}) if problem else (self._status, self._reply_headers)
            self.otlp_requests.append(
                OtlpRequest(signal, request.path, headers, body, status, len(spans) + len(logs))
            )
            if 200 <= status < 300:
                self._spans.extend(spans)
                self._logs.extend(logs)
            held = self._held
            if held:
                self._in_flight += 1
            self._otlp.notify_all()
        if held:
            self._released.wait(30)
            with self._otlp:
                self._in_flight -= 1
                self._otlp.notify_all()
        if problem:
            return Response(problem, 400, mimetype="text/plain")
        response = (
            ExportTraceServiceResponse() if signal == "traces" else ExportLogsServiceResponse()
        )
        return Response(
            response.SerializeToString(), status, headers=reply_headers, mimetype=_PROTOBUF
        )


def _decompressed(body: bytes, encoding: str) -> tuple[bytes, str | None]:
    encoding = encoding.strip().lower()
    try:
        if encoding == "gzip":
            return gzip.decompress(body), None
        if encoding == "deflate":
            return zlib.decompress(body), None
    except (OSError, EOFError, zlib.error) as exc:
        return b"", f"bad {encoding} body: {exc}"
    if encoding not in ("", "identity"):
        return b"", f"unsupported Content-Encoding {encoding!r}"
    return body, None


@pytest.fixture
def sentry_otlp_receiver() -> Iterator[SentryOtlpReceiver]:
    """A started :class:`SentryOtlpReceiver`; the test fails if any event was invalid."""
    receiver = SentryOtlpReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
    assert receiver.invalid == [], "the receiver got events Sentry would reject"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll ``condition`` until true, or fail naming ``what`` (for state without a lock)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.01)

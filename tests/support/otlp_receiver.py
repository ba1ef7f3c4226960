"""A loopback OTLP/HTTP trace receiver: stands in for the OpenTelemetry Collector / Jaeger.

A real HTTP server on 127.0.0.1 that decodes ``POST /v1/traces`` (protobuf, optionally gzip or
deflate; or OTLP/JSON) into :class:`ReceivedSpan` values. ``/v1/metrics`` and ``/v1/logs`` are
answered 200 and only counted, so an app exporting every signal here logs no errors.

Thread rules: each request is decoded and recorded under a lock *before* the reply is sent, so
once a synchronous export (e.g. ``TracerProvider.force_flush()``) returns, :meth:`spans` is up
to date; from other threads or processes, block in :meth:`OtlpReceiver.wait_for_spans`.
The server speaks HTTP/1.0 (one request per connection), so :meth:`stop` never waits on an idle
keep-alive connection.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

__all__ = [
    "ExportRequest",
    "OtlpReceiver",
    "ReceivedEvent",
    "ReceivedSpan",
    "decode_any_value",
    "otlp_receiver",
]

TRACES_PATH = "/v1/traces"
_COUNTED_PATHS = {"/v1/metrics": "metrics", "/v1/logs": "logs"}
_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"
_HEX_ID = re.compile(r"[0-9a-fA-F]{16}|[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class ReceivedEvent:
    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


@dataclass(frozen=True)
class ReceivedSpan:
    """One decoded span; ids are lowercase hex as in Sentry's ``contexts.trace``."""

    trace_id: str  # 32 hex
    span_id: str  # 16 hex
    parent_span_id: str | None
    name: str
    kind: str  # "SERVER", "INTERNAL", ... ("UNSPECIFIED" if unset)
    status_code: str  # "UNSET" / "OK" / "ERROR"
    attributes: dict[str, Any]
    events: tuple[ReceivedEvent, ...]
    resource: dict[str, Any]
    scope: str  # instrumentation scope name
    status_message: str = ""
    start_time_unix_nano: int = 0
    end_time_unix_nano: int = 0


@dataclass(frozen=True)
class ExportRequest:
    """One accepted ``/v1/traces`` request, to check what the exporter put on the wire."""

    content_type: str
    content_encoding: str  # "identity" when the header was absent
    span_count: int


def decode_any_value(value: AnyValue) -> Any:
    """OTLP ``AnyValue`` -> plain Python (arrays as lists, kvlists as dicts, empty as None)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [decode_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _decode_attributes(value.kvlist_value.values)
    return getattr(value, kind)  # string/bool/int/double/bytes map to Python as they are


def _decode_attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: decode_any_value(kv.value) for kv in pairs}


def _enum_suffix(enum_type: Any, number: int, prefix: str) -> str:
    try:
        return str(enum_type.Name(number)).removeprefix(prefix)
    except ValueError:  # a value newer than our proto package: keep it visible, don't drop it
        return str(number)


def _decode_spans(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _decode_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        kind=_enum_suffix(Span.SpanKind, span.kind, "SPAN_KIND_"),
                        status_code=_enum_suffix(
                            Status.StatusCode, span.status.code, "STATUS_CODE_"
                        ),
                        attributes=_decode_attributes(span.attributes),
                        events=tuple(
                            ReceivedEvent(
                                name=e.name,
                                time_unix_nano=e.time_unix_nano,
                                attributes=_decode_attributes(e.attributes),
                            )
                            for e in span.events
                        ),
                        resource=resource,
                        scope=scope_spans.scope.name,
                        status_message=span.status.message,
                        start_time_unix_nano=span.start_time_unix_nano,
                        end_time_unix_nano=span.end_time_unix_nano,
                    )
                )
    return spans


def _hex_ids_to_base64(document: Any) -> None:
    """OTLP/JSON writes trace/span ids as hex, but protobuf's JSON mapping expects base64."""
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for holder in [span, *span.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        value = holder.get(key)
                        if isinstance(value, str) and _HEX_ID.fullmatch(value):
                            holder[key] = base64.b64encode(bytes.fromhex(value)).decode()


def _parse_export(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    if content_type == _JSON:
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError("OTLP/JSON body is not an object")
        try:
            _hex_ids_to_base64(document)
        except (AttributeError, TypeError):
            pass  # a misshapen document: ParseDict below says what is wrong with it
        json_format.ParseDict(document, request)
    else:
        request.ParseFromString(body)
    return request


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            body = self._read_body()
            if path in _COUNTED_PATHS:
                self.server.receiver._count_signal(_COUNTED_PATHS[path])
                self._reply(200, b"", _PROTOBUF)
            elif path == TRACES_PATH:
                self._reply(200, *self._handle_traces(body))
            else:
                raise _BadRequest(404, f"no OTLP endpoint at {path}")
        except _BadRequest as exc:
            self._fail(exc.status, f"{path}: {exc}")
        except Exception as exc:  # a receiver bug: show it in the test, not as a dropped socket
            self._fail(500, f"{path}: {type(exc).__name__}: {exc}")

    def _fail(self, status: int, message: str) -> None:
        self.server.receiver._reject(f"{status} {message}")
        self._reply(status, message.encode(), "text/plain; charset=utf-8")

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:  # http.server can't de-chunk; the OTel exporters always send a length
            raise _BadRequest(411, "Content-Length required")
        body = self.rfile.read(int(length))
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        try:
            if encoding == "gzip":
                return gzip.decompress(body)
            if encoding == "deflate":
                return zlib.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise _BadRequest(400, f"bad {encoding} body: {exc}") from exc
        if encoding != "identity":
            raise _BadRequest(415, f"unsupported Content-Encoding {encoding!r}")
        return body

    def _handle_traces(self, body: bytes) -> tuple[bytes, str]:
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type not in (_PROTOBUF, _JSON):
            raise _BadRequest(415, f"unsupported Content-Type {content_type!r}")
        try:
            request = _parse_export(body, content_type)
        except (DecodeError, json_format.ParseError, ValueError) as exc:
            raise _BadRequest(400, f"undecodable ExportTraceServiceRequest: {exc}") from exc
        spans = _decode_spans(request)
        self.server.receiver._record(
            ExportRequest(
                content_type=content_type,
                content_encoding=self.headers.get("Content-Encoding", "identity").lower(),
                span_count=len(spans),
            ),
            spans,
        )
        if content_type == _JSON:
            return b"{}", _JSON
        return ExportTraceServiceResponse().SerializeToString(), _PROTOBUF

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # pytest would show one stderr line per export; rejections are kept on the receiver


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck on a half-sent body must not block stop()

    def __init__(self, receiver: OtlpReceiver) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.receiver = receiver


class OtlpReceiver:
    """Start with :meth:`start` (or ``with``); point an exporter at :attr:`traces_endpoint`."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._spans: list[ReceivedSpan] = []
        self._requests: list[ExportRequest] = []
        self._signal_counts: dict[str, int] = {"metrics": 0, "logs": 0}
        self._rejections: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> OtlpReceiver:
        if self._server is not None:
            raise RuntimeError("OtlpReceiver already started")
        self._server = _Server(self)
        self._thread = threading.Thread(
            # serve_forever() checks for shutdown every 0.5 s by default: that much per stop().
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"otlp-receiver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("OtlpReceiver is not started")
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """Base URL, as for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (exporters append ``/v1/<signal>``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_endpoint(self) -> str:
        """Full URL, as for ``OTLPSpanExporter(endpoint=...)`` / ``..._TRACES_ENDPOINT``."""
        return f"{self.endpoint}{TRACES_PATH}"

    # -- what arrived -------------------------------------------------------------------------

    def spans(self) -> list[ReceivedSpan]:
        with self._cond:
            return list(self._spans)

    def trace_ids(self) -> set[str]:
        with self._cond:
            return {s.trace_id for s in self._spans}

    @property
    def requests_count(self) -> int:
        """Accepted ``/v1/traces`` requests (rejected ones are in :attr:`rejections`)."""
        with self._cond:
            return len(self._requests)

    @property
    def requests(self) -> list[ExportRequest]:
        with self._cond:
            return list(self._requests)

    @property
    def signal_counts(self) -> dict[str, int]:
        """POSTs to ``/v1/metrics`` and ``/v1/logs``: answered 200, bodies discarded."""
        with self._cond:
            return dict(self._signal_counts)

    @property
    def rejections(self) -> list[str]:
        """One line per request answered 4xx/5xx, e.g. ``"400 /v1/traces: undecodable ..."``."""
        with self._cond:
            return list(self._rejections)

    def wait_for_spans(
        self,
        predicate: Callable[[ReceivedSpan], bool] | None = None,
        count: int = 1,
        timeout: float = 15.0,
    ) -> list[ReceivedSpan]:
        """Block until at least ``count`` spans match ``predicate`` (any span if None); return
        all the matching ones, or fail listing every span and rejection that did arrive."""
        matches: list[ReceivedSpan] = []

        def enough() -> bool:
            nonlocal matches
            matches = [s for s in self._spans if predicate is None or predicate(s)]
            return len(matches) >= count

        with self._cond:
            if self._cond.wait_for(enough, timeout):
                return matches
            got = "\n  ".join(
                f"{s.name!r} kind={s.kind} status={s.status_code} trace={s.trace_id} "
                f"span={s.span_id} parent={s.parent_span_id} attrs={s.attributes!r}"
                for s in self._spans
            )
            raise AssertionError(
                f"expected {count} matching span(s) within {timeout}s, {len(matches)} matched; "
                f"{len(self._spans)} span(s) in {len(self._requests)} request(s):\n  {got}\n"
                f"rejections={self._rejections!r}"
            )

    def clear(self) -> None:
        """Forget everything received so far (the server keeps running)."""
        with self._cond:
            self._spans.clear()
            self._requests.clear()
            self._rejections.clear()
            self._signal_counts = dict.fromkeys(self._signal_counts, 0)

    # -- called from handler threads ----------------------------------------------------------

    def _record(self, request: ExportRequest, spans: list[ReceivedSpan]) -> None:
        with self._cond:
            self._requests.append(request)
            self._spans.extend(spans)
            self._cond.notify_all()

    def _count_signal(self, signal: str) -> None:
        with self._cond:
            self._signal_counts[signal] += 1

    def _reject(self, reason: str) -> None:
        with self._cond:
            self._rejections.append(reason)
            self._cond.notify_all()


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A running :class:`OtlpReceiver`, stopped after the test."""
    with OtlpReceiver() as receiver:
        yield receiver


def decode_traces_request(body: bytes, content_type: str = _PROTOBUF) -> list[ReceivedSpan]:
    """An ``ExportTraceServiceRequest`` body (already decompressed; protobuf, or OTLP/JSON for
    ``application/json``) as :class:`ReceivedSpan` values, for receivers of other paths."""
    return _decode_spans(_parse_export(body, content_type))

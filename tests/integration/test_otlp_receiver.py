"""The loopback OTLP receiver against the real SDK exporter, so e2e tests can trust what it says."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes

from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

SERVICE = "otlp-receiver-selftest"
SCOPE = "tests.otlp_receiver"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


def make_provider(
    receiver: OtlpReceiver, compression: Compression = Compression.NoCompression
) -> TracerProvider:
    # Not the global provider: each test gets its own, wired only to this receiver.
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    exporter = OTLPSpanExporter(
        endpoint=receiver.traces_endpoint, compression=compression, timeout=5
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def export_one_trace(provider: TracerProvider) -> tuple[str, str, str]:
    """A failing SERVER span with a child; returns (trace_id, server_span_id, child_span_id)."""
    tracer = provider.get_tracer(SCOPE)
    attributes: Attributes = {
        "http.route": "/boom",
        "http.status_code": 500,
        "retry": True,
        "tags": ["a", "b"],
    }
    with tracer.start_as_current_span(
        "GET /boom", kind=SpanKind.SERVER, attributes=attributes
    ) as server:
        with tracer.start_as_current_span("child") as child:
            child_id = child.get_span_context().span_id
        server.record_exception(ValueError("x"))
        server.set_status(Status(StatusCode.ERROR, "x"))
    assert provider.force_flush(timeout_millis=10_000)
    ctx = server.get_span_context()
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"), format(child_id, "016x")


@pytest.mark.parametrize(
    "compression", [Compression.NoCompression, Compression.Gzip, Compression.Deflate]
)
def test_decodes_what_the_sdk_exporter_sends(
    receiver: OtlpReceiver, compression: Compression
) -> None:
    provider = make_provider(receiver, compression)
    try:
        trace_id, server_id, child_id = export_one_trace(provider)
    finally:
        provider.shutdown()

    # force_flush returned after the 200, and the receiver records before replying.
    spans = {s.name: s for s in receiver.spans()}
    assert set(spans) == {"GET /boom", "child"}
    server, child = spans["GET /boom"], spans["child"]
    assert receiver.trace_ids() == {trace_id}
    assert (server.span_id, server.parent_span_id) == (server_id, None)
    assert (child.span_id, child.parent_span_id) == (child_id, server_id)
    assert (server.kind, child.kind) == ("SERVER", "INTERNAL")
    assert (server.status_code, server.status_message, child.status_code) == ("ERROR", "x", "UNSET")
    assert server.attributes == {
        "http.route": "/boom",
        "http.status_code": 500,
        "retry": True,
        "tags": ["a", "b"],
    }
    [event] = server.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "x"
    assert event.time_unix_nano > 0
    assert server.resource["service.name"] == SERVICE
    assert server.scope == SCOPE
    assert server.start_time_unix_nano <= server.end_time_unix_nano

    # The compressed path was really exercised, not silently skipped by the exporter.
    expected = {Compression.NoCompression: "identity"}.get(compression, compression.value)
    assert [(r.content_type, r.content_encoding) for r in receiver.requests] == [
        ("application/x-protobuf", expected)
    ]
    assert receiver.requests_count == 1
    assert receiver.rejections == []


def test_answers_an_empty_export_response(receiver: OtlpReceiver) -> None:
    reply = requests.post(
        receiver.traces_endpoint,
        data=b"",  # an empty ExportTraceServiceRequest is valid protobuf
        headers={"Content-Type": "application/x-protobuf"},
        timeout=5,
    )
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/x-protobuf"
    ExportTraceServiceResponse().ParseFromString(reply.content)
    assert reply.content == b""
    assert receiver.requests_count == 1
    assert receiver.spans() == []


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"not a protobuf", {"Content-Type": "application/x-protobuf"}),
        (b"not gzip", {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}),
        (b"{not json", {"Content-Type": "application/json"}),
        (b'{"resourceSpans": 3}', {"Content-Type": "application/json"}),
    ],
    ids=["protobuf", "gzip", "json-syntax", "json-schema"],
)
def test_malformed_body_gets_400_and_server_keeps_working(
    receiver: OtlpReceiver, body: bytes, headers: dict[str, str]
) -> None:
    reply = requests.post(receiver.traces_endpoint, data=body, headers=headers, timeout=5)
    assert reply.status_code == 400, reply.text
    assert receiver.requests_count == 0
    assert len(receiver.rejections) == 1
    assert receiver.rejections[0].startswith("400 /v1/traces: ")

    provider = make_provider(receiver)
    try:
        trace_id, _, _ = export_one_trace(provider)
    finally:
        provider.shutdown()
    assert receiver.trace_ids() == {trace_id}
    assert receiver.requests_count == 1


def test_rejects_unknown_paths_and_content_types(receiver: OtlpReceiver) -> None:
    def post(url: str, content_type: str) -> int:
        headers = {"Content-Type": content_type}
        return requests.post(url, data=b"", headers=headers, timeout=5).status_code

    assert post(receiver.endpoint + "/v1/nope", "application/x-protobuf") == 404
    assert post(receiver.traces_endpoint, "text/plain") == 415
    assert receiver.requests_count == 0
    assert [r.split(" ", 1)[0] for r in receiver.rejections] == ["404", "415"]


def test_accepts_otlp_json_with_hex_ids(receiver: OtlpReceiver) -> None:
    # OTLP/JSON, as the spec writes it: hex ids (not protobuf-JSON base64), integer enums.
    document = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "json-scope"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "parentSpanId": "eee19b7ec3c1b173",
                                "name": "json span",
                                "kind": 3,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "attributes": [
                                    {"key": "n", "value": {"intValue": "7"}},
                                    {"key": "f", "value": {"doubleValue": 1.5}},
                                    {"key": "raw", "value": {"bytesValue": "AAE="}},
                                    {
                                        "key": "kv",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [
                                                    {"key": "k", "value": {"boolValue": False}}
                                                ]
                                            }
                                        },
                                    },
                                ],
                                "status": {"code": 1},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    reply = requests.post(
        receiver.traces_endpoint,
        data=gzip.compress(json.dumps(document).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        timeout=5,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {}
    [span] = receiver.spans()
    assert span == ReceivedSpan(
        trace_id="5b8efff798038103d269b633813fc60c",
        span_id="eee19b7ec3c1b174",
        parent_span_id="eee19b7ec3c1b173",
        name="json span",
        kind="CLIENT",
        status_code="OK",
        attributes={"n": 7, "f": 1.5, "raw": b"\x00\x01", "kv": {"k": False}},
        events=(),
        resource={"service.name": "json-svc"},
        scope="json-scope",
        start_time_unix_nano=1544712660000000000,
        end_time_unix_nano=1544712661000000000,
    )


def test_metrics_and_logs_are_only_counted(receiver: OtlpReceiver) -> None:
    for path in ("/v1/metrics", "/v1/logs", "/v1/logs"):
        reply = requests.post(
            receiver.endpoint + path,
            data=b"\x00 anything",
            headers={"Content-Type": "application/x-protobuf"},
            timeout=5,
        )
        assert (reply.status_code, reply.content) == (200, b"")
    assert receiver.signal_counts == {"metrics": 1, "logs": 2}
    assert receiver.requests_count == 0
    assert receiver.spans() == []


def test_wait_for_spans_wakes_on_arrival_from_another_thread(receiver: OtlpReceiver) -> None:
    provider = make_provider(receiver)
    results: list[tuple[str, str, str]] = []
    # The export happens while wait_for_spans is already blocked on the condition.
    worker = threading.Thread(target=lambda: results.append(export_one_trace(provider)))
    try:
        worker.start()
        [server] = receiver.wait_for_spans(lambda s: s.kind == "SERVER", timeout=10)
        assert len(receiver.wait_for_spans(count=2, timeout=10)) == 2
    finally:
        worker.join(10)
        provider.shutdown()
    assert server.span_id == results[0][1]


def test_wait_for_spans_timeout_lists_what_arrived(receiver: OtlpReceiver) -> None:
    provider = make_provider(receiver)
    try:
        export_one_trace(provider)
    finally:
        provider.shutdown()
    with pytest.raises(AssertionError, match=r"(?s)expected 1 matching.*'GET /boom' kind=SERVER"):
        receiver.wait_for_spans(lambda s: s.name == "never", timeout=0.1)


def test_stop_closes_the_socket() -> None:
    receiver = OtlpReceiver().start()
    endpoint = receiver.traces_endpoint
    receiver.stop()
    with pytest.raises(requests.ConnectionError):
        requests.post(endpoint, data=b"", timeout=2)
    receiver.stop()  # idempotent

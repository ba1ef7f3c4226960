"""Breadcrumbs from the trace: client spans that ended before an error, as Sentry crumbs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.convert.breadcrumbs import merge_breadcrumbs, span_breadcrumb
from otel_sentry_bridge.convert.context import ConvertContext
from otel_sentry_bridge.convert.event import build_event
from otel_sentry_bridge.convert.frames import CodeLayout
from otel_sentry_bridge.convert.model import EventView, SpanView
from otel_sentry_bridge.convert.scrub import Scrubber
from otel_sentry_bridge.convert.select import select_events
from otel_sentry_bridge.convert.spans import record_view, span_record
from otel_sentry_bridge.deliver.source_files import SourceCache
from otel_sentry_bridge.setup.config import Settings
from otel_sentry_bridge.testing import CapturingTransport
from tests.support.relay import assert_valid_event

SCRUBBER = Scrubber()
MS = 1_000_000


def _client(
    attributes: dict[str, Any],
    *,
    name: str = "GET",
    start_ms: int = 1000,
    end_ms: int = 1250,
    kind: str = "CLIENT",
    status: str = "UNSET",
) -> SpanView:
    return SpanView(
        trace_id=1,
        span_id=2,
        name=name,
        kind=kind,
        status_code=status,
        attributes=attributes,
        start_time_ns=start_ms * MS,
        end_time_ns=end_ms * MS,
    )


# -- one span -> one crumb -------------------------------------------------------------------


def test_outgoing_http_call_is_an_http_crumb_with_method_url_status_and_duration() -> None:
    crumb = span_breadcrumb(
        _client(
            {
                "http.method": "GET",
                "http.url": "https://stock.example/items/7?page=2",
                "http.status_code": 200,
            }
        ),
        SCRUBBER,
    )
    assert crumb == {
        "type": "http",
        "category": "http",
        "level": "info",
        "timestamp": 1.25,
        "data": {
            "method": "GET",
            "url": "https://stock.example/items/7?page=2",
            "status_code": 200,
            "duration_ms": 250.0,
        },
    }


def test_stable_http_semantic_conventions_give_the_same_crumb() -> None:
    old = {"http.method": "POST", "http.url": "http://a.test/x", "http.status_code": 201}
    stable = {
        "http.request.method": "POST",
        "url.full": "http://a.test/x",
        "http.response.status_code": 201,
    }
    assert span_breadcrumb(_client(old), SCRUBBER) == span_breadcrumb(_client(stable), SCRUBBER)


@pytest.mark.parametrize(
    ("status", "span_status", "level"),
    [(200, "UNSET", "info"), (404, "UNSET", "warning"), (503, "ERROR", "error")],
)
def test_http_crumb_level_follows_the_response_status(
    status: int, span_status: str, level: str
) -> None:
    span = _client(
        {"http.method": "GET", "http.url": "http://a.test/", "http.status_code": status},
        status=span_status,
    )
    assert span_breadcrumb(span, SCRUBBER)["level"] == level


def test_secrets_in_a_crumb_url_are_filtered() -> None:
    crumb = span_breadcrumb(
        _client(
            {
                "http.method": "GET",
                "url.full": "https://bob:hunter2@api.test/v1?api_key=s3cr3t-k3y&page=2",
            }
        ),
        SCRUBBER,
    )
    url = crumb["data"]["url"]
    assert "s3cr3t-k3y" not in url and "hunter2" not in url
    assert url == "https://bob:[Filtered]@api.test/v1?api_key=[Filtered]&page=2"


def test_database_call_is_a_query_crumb_whose_message_is_the_statement() -> None:
    crumb = span_breadcrumb(
        _client(
            {"db.system": "postgresql", "db.name": "shop", "db.statement": "SELECT 1"},
            name="SELECT shop",
            start_ms=2000,
            end_ms=2003,
        ),
        SCRUBBER,
    )
    assert crumb == {
        "type": "query",
        "category": "query",
        "message": "SELECT 1",
        "level": "info",
        "timestamp": 2.003,
        "data": {"db.system": "postgresql", "db.name": "shop", "duration_ms": 3.0},
    }


def test_stable_database_conventions_and_statement_scrubbing() -> None:
    crumb = span_breadcrumb(
        _client(
            {
                "db.system.name": "mysql",
                "db.namespace": "shop",
                "db.query.text": "UPDATE users SET password='hunter2' WHERE id=1",
            }
        ),
        SCRUBBER,
    )
    assert crumb["data"]["db.system"] == "mysql"
    assert crumb["data"]["db.name"] == "shop"
    assert "hunter2" not in crumb["message"]
    assert crumb["message"].startswith("UPDATE users SET password=[Filtered]")


def test_redis_and_cache_spans_are_cache_crumbs() -> None:
    redis = span_breadcrumb(
        _client({"db.system": "redis", "db.statement": "GET cart:41"}, name="GET"), SCRUBBER
    )
    assert (redis["type"], redis["category"], redis["message"]) == ("query", "cache", "GET cart:41")
    named = span_breadcrumb(_client({}, name="cache.get", kind="INTERNAL"), SCRUBBER)
    assert (named["category"], named["message"]) == ("cache", "cache.get")


def test_other_client_span_is_a_default_crumb_named_after_its_operation() -> None:
    crumb = span_breadcrumb(_client({"rpc.system": "grpc"}, name="Inventory/Get"), SCRUBBER)
    assert (crumb["type"], crumb["category"], crumb["message"]) == (
        "default",
        "rpc.client",
        "Inventory/Get",
    )


def test_failed_database_call_is_an_error_crumb() -> None:
    crumb = span_breadcrumb(_client({"db.system": "sqlite"}, status="ERROR"), SCRUBBER)
    assert crumb["level"] == "error"


# -- which spans are recorded on the ending thread --------------------------------------------


@pytest.fixture
def finished() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _finish(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    name: str,
    kind: SpanKind,
    attributes: dict[str, Any] | None = None,
) -> ReadableSpan:
    with provider.get_tracer("t").start_as_current_span(name, kind=kind, attributes=attributes):
        pass
    return exporter.get_finished_spans()[-1]


@pytest.mark.parametrize(
    ("name", "kind", "attributes", "kept"),
    [
        ("GET", SpanKind.CLIENT, {"http.method": "GET"}, True),
        ("anything", SpanKind.CLIENT, None, True),
        ("SELECT", SpanKind.INTERNAL, {"db.system": "sqlite"}, True),
        ("SELECT", SpanKind.INTERNAL, {"db.system.name": "sqlite"}, True),
        ("cache.get", SpanKind.INTERNAL, None, True),
        ("compute", SpanKind.INTERNAL, {"x": 1}, False),
        ("GET /", SpanKind.SERVER, {"http.method": "GET"}, False),
        ("publish", SpanKind.PRODUCER, None, False),
        ("process", SpanKind.CONSUMER, None, False),
    ],
)
def test_only_outgoing_calls_leave_a_record(
    finished: tuple[TracerProvider, InMemorySpanExporter],
    name: str,
    kind: SpanKind,
    attributes: dict[str, Any] | None,
    kept: bool,
) -> None:
    span = _finish(*finished, name, kind, attributes)
    assert (span_record(span) is not None) is kept


def test_a_record_reads_back_as_the_span(
    finished: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = finished
    with provider.get_tracer("t").start_as_current_span(
        "SELECT", kind=SpanKind.CLIENT, attributes={"db.system": "sqlite"}
    ) as live:
        live.set_status(Status(StatusCode.ERROR, "locked"))
    span = exporter.get_finished_spans()[-1]
    record = span_record(span)
    assert record is not None
    view = record_view(record)
    assert (view.name, view.kind, view.status_code, view.status_description) == (
        "SELECT",
        "CLIENT",
        "ERROR",
        "locked",
    )
    assert (view.start_time_ns, view.end_time_ns) == (span.start_time, span.end_time)
    assert dict(view.attributes) == {"db.system": "sqlite"}


# -- merged into the error event ---------------------------------------------------------------


def _event(
    view: SpanView, logs: list[dict[str, Any]], spans: list[dict[str, Any]], **settings: Any
) -> dict[str, Any]:
    """The error event of ``view`` given the trace's log and span crumbs (as the pipeline
    looks them up: those up to the error)."""
    ctx = ConvertContext(
        settings=Settings(**settings),
        layout=CodeLayout.current((), ()),
        read_source=SourceCache(),
        new_event_id=lambda: "a" * 32,
    )
    (selected,) = select_events(view)
    at = selected.event.timestamp_ns
    return build_event(
        view,
        selected,
        ctx,
        log_crumbs=[c for c in logs if c["timestamp"] * 1e9 <= at],
        span_crumbs=[c for c in spans if c["timestamp"] * 1e9 <= at],
    )


def _error_at(seconds: float) -> SpanView:
    return SpanView(
        trace_id=1,
        span_id=2,
        name="GET /checkout/",
        kind="SERVER",
        events=(
            EventView(
                "exception",
                int(seconds * 1e9),
                {"exception.type": "ValueError", "exception.message": "boom"},
            ),
        ),
    )


def _log(at: float, message: str) -> dict[str, Any]:
    return {"type": "default", "timestamp": at, "message": message, "level": "info"}


def _http(at: float, url: str) -> dict[str, Any]:
    return {"type": "http", "category": "http", "timestamp": at, "data": {"url": url}}


def test_span_and_log_crumbs_are_merged_by_time_up_to_the_error() -> None:
    logs = [_log(1.0, "cart loaded"), _log(3.0, "charging")]
    spans = [_http(2.0, "http://stock/"), _http(4.0, "http://pay/"), _http(9.0, "http://late/")]
    event = _event(_error_at(5.0), logs, spans)
    assert_valid_event(event)
    crumbs = event["breadcrumbs"]["values"]
    assert [c.get("message") or c["data"]["url"] for c in crumbs] == [
        "cart loaded",
        "http://stock/",
        "charging",
        "http://pay/",
    ]


def test_merged_crumbs_are_capped_keeping_the_newest() -> None:
    logs = [_log(float(i), f"log {i}") for i in range(0, 10, 2)]
    spans = [_http(float(i), f"http://x/{i}") for i in range(1, 10, 2)]
    event = _event(_error_at(100.0), logs, spans, max_breadcrumbs=3)
    crumbs = event["breadcrumbs"]["values"]
    assert [c["timestamp"] for c in crumbs] == [7.0, 8.0, 9.0]


def test_span_crumbs_alone_are_enough_for_breadcrumbs() -> None:
    event = _event(_error_at(5.0), [], [_http(1.0, "http://stock/")])
    assert event["breadcrumbs"]["values"][0]["type"] == "http"


def test_merge_prefers_the_log_line_on_a_tie() -> None:
    merged = merge_breadcrumbs([_log(1.0, "log")], [_http(1.0, "http://x/")])
    assert [c["type"] for c in merged] == ["default", "http"]


# -- through the processor and a real SDK provider ---------------------------------------------


def test_calls_of_a_finished_trace_without_error_are_not_kept() -> None:
    processor = SentrySpanProcessor(transport=CapturingTransport())
    fresh = processor.bridge.store
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    try:
        with tracer.start_as_current_span("GET /", kind=SpanKind.SERVER) as server:
            with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT):
                pass
            trace_id = server.get_span_context().trace_id
            assert len(fresh.spans(trace_id, until_ns=2**63)) == 1  # while the request runs
    finally:
        provider.shutdown()
    assert fresh.spans(trace_id, until_ns=2**63) == []


def test_processor_gives_an_error_the_calls_that_preceded_it_in_its_trace() -> None:
    transport = CapturingTransport()
    provider = TracerProvider()
    provider.add_span_processor(SentrySpanProcessor(transport=transport))
    tracer = provider.get_tracer("t")
    try:
        with (
            tracer.start_as_current_span("other request", kind=SpanKind.SERVER),
            tracer.start_as_current_span(
                "GET",
                kind=SpanKind.CLIENT,
                attributes={"http.method": "GET", "http.url": "http://other/"},
            ),
        ):
            pass
        with tracer.start_as_current_span("POST /checkout/", kind=SpanKind.SERVER) as server:
            with tracer.start_as_current_span(
                "GET",
                kind=SpanKind.CLIENT,
                attributes={
                    "http.method": "GET",
                    "http.url": "http://stock/",
                    "http.status_code": 503,
                },
            ):
                pass
            with tracer.start_as_current_span(
                "SELECT",
                kind=SpanKind.CLIENT,
                attributes={"db.system": "sqlite", "db.statement": "SELECT 1"},
            ):
                pass
            try:
                raise RuntimeError("stock unavailable")
            except RuntimeError as exc:
                server.record_exception(exc)
            with tracer.start_as_current_span(
                "GET",
                kind=SpanKind.CLIENT,
                attributes={"http.method": "GET", "http.url": "http://after/"},
            ):
                pass
        assert provider.force_flush(5000)
    finally:
        provider.shutdown()
    (event,) = transport.events
    crumbs = event["breadcrumbs"]["values"]
    assert [(c["type"], c["data"].get("url") or c.get("message")) for c in crumbs] == [
        ("http", "http://stock/"),
        ("query", "SELECT 1"),
    ]
    assert crumbs[0]["data"]["status_code"] == 503


# -- bind parameters hold no value: kept; literals after sensitive names: filtered ------------


def _query(statement: str, **extra: Any) -> SpanView:
    return _client({"db.system": "postgresql", "db.statement": statement, **extra}, name="SQL")


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT id FROM users WHERE email = %s AND password = %s",  # format (psycopg, MySQLdb)
        "SELECT id FROM users WHERE password = %(password)s",  # pyformat
        "UPDATE users SET password = ? WHERE id = ?",  # qmark (sqlite3)
        "UPDATE users SET password = :password WHERE id = :id",  # named (sqlite3, Oracle)
        "UPDATE users SET password = :1 WHERE id = :2",  # numeric (Oracle)
        "UPDATE users SET password = $1 WHERE id = $2",  # asyncpg
        "UPDATE users SET password_hash = $1::text, api_token = %s::uuid WHERE id = $2",
        "INSERT INTO sessions (id) SELECT id FROM users WHERE (secret_key=%s)",
        "SELECT * FROM t WHERE token = %(token)s, auth = :auth_value",
    ],
)
def test_bind_parameters_after_sensitive_names_are_kept(statement: str) -> None:
    crumb = span_breadcrumb(_query(statement), SCRUBBER)
    assert crumb["message"] == statement


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (
            "UPDATE users SET password = 'hunter2' WHERE email = %s",
            "UPDATE users SET password = [Filtered] WHERE email = %s",
        ),
        (
            "SELECT * FROM users WHERE password = %s OR api_key = 'k-123' OR token=abc",
            "SELECT * FROM users WHERE password = %s OR api_key = [Filtered] OR token=[Filtered]",
        ),
        # a literal that only begins like a parameter, or a call around one, is not a parameter
        ("WHERE password = %sx", "WHERE password = [Filtered]"),
        ("WHERE password = :pw||'salt'", "WHERE password = [Filtered]"),
        ("SET password = crypt(%s)", "SET password = [Filtered]"),
        ('WHERE password = "%s"', "WHERE password = [Filtered]"),
        # a statement naming a sensitive word has all its literals filtered (probe
        # 2026-12-05: "password = lower('x')" kept 'x' after the part it filtered)
        (
            "COPY t FROM 'postgres://u:pw@db/x' WHERE password = %s",
            "COPY t FROM [Filtered] WHERE password = %s",
        ),
        (
            "UPDATE u SET password = lower('x1') WHERE id = 1",
            "UPDATE u SET password = [Filtered] WHERE id = 1",
        ),
        ("UPDATE u SET password = 'it''s'", "UPDATE u SET password = [Filtered]"),
        ("ALTER USER bob WITH PASSWORD 'x2'", "ALTER USER bob WITH PASSWORD [Filtered]"),
        (
            "SELECT 1 FROM p WHERE p.api_token <> 'x3'",
            "SELECT 1 FROM p WHERE p.api_token <> [Filtered]",
        ),
        (
            "SELECT 1 FROM u WHERE password IN ('x4')",
            "SELECT 1 FROM u WHERE password IN ([Filtered])",
        ),
        ("SELECT 1 FROM u WHERE password = N'x5'", "SELECT 1 FROM u WHERE password = [Filtered]"),
        ("CREATE USER x IDENTIFIED BY 'x6'", "CREATE USER x IDENTIFIED BY [Filtered]"),
        # and a statement without one keeps its literals
        (
            "SELECT id FROM books WHERE author = 'Jane Austen'",
            "SELECT id FROM books WHERE author = 'Jane Austen'",
        ),
    ],
)
def test_literals_after_sensitive_names_are_still_filtered(statement: str, message: str) -> None:
    crumb = span_breadcrumb(_query(statement), SCRUBBER)
    assert crumb["message"] == message


def test_transaction_spans_keep_bind_parameters_in_descriptions_and_data() -> None:
    from otel_sentry_bridge.convert.transaction import build_transaction

    statement = "UPDATE users SET password = %(password)s, token = 'tok-1' WHERE id = %(id)s"
    root = SpanView(trace_id=1, span_id=1, name="POST /reset/", start_time_ns=1, end_time_ns=9)
    child = SpanView(
        trace_id=1,
        span_id=2,
        parent_span_id=1,
        name="UPDATE",
        kind="CLIENT",
        attributes={"db.system": "postgresql", "db.statement": statement},
        start_time_ns=2,
        end_time_ns=3,
    )
    ctx = ConvertContext(
        settings=Settings(),
        layout=CodeLayout(import_roots=(), stdlib_roots=()),
        read_source=SourceCache(),
    )
    event = build_transaction(root, [child], ctx, SCRUBBER)
    assert_valid_event(event)
    (span,) = event["spans"]
    expected = "UPDATE users SET password = %(password)s, token = [Filtered] WHERE id = %(id)s"
    assert span["description"] == expected
    assert span["data"]["db.statement"] == expected


def test_a_real_sqlite_statement_keeps_its_named_parameters() -> None:
    import sqlite3

    from opentelemetry.instrumentation.dbapi import instrument_connection

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    connection = instrument_connection(
        "shop", sqlite3.connect(":memory:"), "sqlite", tracer_provider=provider
    )
    try:
        cursor = connection.cursor()
        cursor.execute("CREATE TABLE users (id INTEGER, password TEXT)")
        cursor.execute(
            "UPDATE users SET password = :password WHERE id = :id", {"password": "s3", "id": 1}
        )
        cursor.execute("UPDATE users SET password = 'letmein'")
    finally:
        connection.close()
        provider.shutdown()
    spans = [s for s in exporter.get_finished_spans() if "UPDATE" in s.name]
    messages = [span_breadcrumb(record_view(span_record(s)), SCRUBBER)["message"] for s in spans]
    assert messages == [
        "UPDATE users SET password = :password WHERE id = :id",
        "UPDATE users SET password = [Filtered]",
    ]

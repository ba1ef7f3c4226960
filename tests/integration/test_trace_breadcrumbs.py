"""Breadcrumbs from real instrumentations: ``requests`` calls to a loopback HTTP server and
``sqlite3`` queries (through the OTel DB-API instrumentation), delivered over a real socket."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from opentelemetry.instrumentation.dbapi import instrument_connection
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from pytest_httpserver import HTTPServer

from otel_sentry_bridge import SentrySpanProcessor
from tests.support.receiver import SentryReceiver


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    RequestsInstrumentor().instrument(tracer_provider=provider)
    try:
        yield provider
    finally:
        RequestsInstrumentor().uninstrument()
        provider.shutdown()


def _fail(server: Any) -> None:
    try:
        raise LookupError("no stock for sku-1")
    except LookupError as exc:
        server.record_exception(exc)


def test_requests_calls_before_an_error_are_http_breadcrumbs(
    provider: TracerProvider, httpserver: HTTPServer, sentry_receiver: SentryReceiver
) -> None:
    httpserver.expect_request("/stock/sku-1").respond_with_json({"error": "down"}, status=503)
    httpserver.expect_request("/prices").respond_with_json({"sku-1": 990})
    processor = SentrySpanProcessor(dsn=sentry_receiver.dsn)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("shop")
    with tracer.start_as_current_span("GET /cart/", kind=SpanKind.SERVER) as server:
        requests.get(httpserver.url_for("/prices"), params={"api_key": "k-9f8e7d"}, timeout=5)
        requests.get(httpserver.url_for("/stock/sku-1"), timeout=5)
        _fail(server)
    assert processor.force_flush(10000)
    (event,) = sentry_receiver.wait_for_events(1)
    crumbs = [c for c in event["breadcrumbs"]["values"] if c["type"] == "http"]
    assert [(c["data"]["url"], c["data"]["status_code"], c["level"]) for c in crumbs] == [
        (httpserver.url_for("/prices") + "?api_key=[Filtered]", 200, "info"),
        (httpserver.url_for("/stock/sku-1"), 503, "error"),
    ]
    assert all(c["data"]["method"] == "GET" and c["data"]["duration_ms"] > 0 for c in crumbs)
    assert "k-9f8e7d" not in sentry_receiver.requests[0].envelope.decode()
    # Our own POST to the receiver was not traced, so it is no breadcrumb.
    assert str(sentry_receiver.port) not in str(crumbs)


def test_database_queries_before_an_error_are_query_breadcrumbs(
    provider: TracerProvider, sentry_receiver: SentryReceiver
) -> None:
    processor = SentrySpanProcessor(dsn=sentry_receiver.dsn)
    provider.add_span_processor(processor)
    connection = instrument_connection(
        "shop", sqlite3.connect(":memory:"), "sqlite", tracer_provider=provider
    )
    tracer = provider.get_tracer("shop")
    try:
        with tracer.start_as_current_span("POST /login/", kind=SpanKind.SERVER) as server:
            cursor = connection.cursor()
            cursor.execute("CREATE TABLE users (name TEXT, password TEXT)")
            cursor.execute("SELECT name FROM users WHERE password = ?", ("hunter2",))
            cursor.execute("UPDATE users SET password = 'letmein'")  # a literal: scrubbed
            _fail(server)
    finally:
        connection.close()
    assert processor.force_flush(10000)
    (event,) = sentry_receiver.wait_for_events(1)
    crumbs = event["breadcrumbs"]["values"]
    assert [(c["type"], c["category"], c["message"]) for c in crumbs] == [
        ("query", "query", "CREATE TABLE users (name TEXT, password TEXT)"),
        ("query", "query", "SELECT name FROM users WHERE password = ?"),
        ("query", "query", "UPDATE users SET password = [Filtered]"),
    ]
    assert crumbs[0]["data"]["db.system"] == "sqlite"
    sent = sentry_receiver.requests[0].envelope.decode()
    assert "hunter2" not in sent and "letmein" not in sent


def test_breadcrumbs_come_only_from_the_errors_own_trace(
    provider: TracerProvider, httpserver: HTTPServer, sentry_receiver: SentryReceiver
) -> None:
    httpserver.expect_request("/a").respond_with_data("a")
    httpserver.expect_request("/b").respond_with_data("b")
    processor = SentrySpanProcessor(dsn=sentry_receiver.dsn)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("shop")
    with tracer.start_as_current_span("GET /a/", kind=SpanKind.SERVER):
        requests.get(httpserver.url_for("/a"), timeout=5)
    with tracer.start_as_current_span("GET /b/", kind=SpanKind.SERVER) as server:
        requests.get(httpserver.url_for("/b"), timeout=5)
        _fail(server)
    assert processor.force_flush(10000)
    (event,) = sentry_receiver.wait_for_events(1)
    urls = [c["data"]["url"] for c in event["breadcrumbs"]["values"]]
    assert urls == [httpserver.url_for("/b")]

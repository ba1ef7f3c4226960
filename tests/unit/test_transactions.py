"""Opt-in Sentry transactions: sampling, collection until the local root ends, conversion."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    TraceFlags,
)

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.capture.transactions import TransactionCollector, is_sampled
from otel_sentry_bridge.convert.context import ConvertContext
from otel_sentry_bridge.convert.frames import CodeLayout
from otel_sentry_bridge.convert.model import SpanView
from otel_sentry_bridge.convert.scrub import Scrubber
from otel_sentry_bridge.convert.transaction import build_transaction
from otel_sentry_bridge.deliver.envelope import decode_envelope, decode_events, event_envelope
from otel_sentry_bridge.deliver.source_files import SourceCache
from otel_sentry_bridge.setup.config import Settings, load_settings
from otel_sentry_bridge.testing import CapturingTransport
from tests.support.relay import assert_valid_event

LOW56 = (1 << 56) - 1
MS = 1_000_000


def _remote(sampled: bool, trace_id: int = 0xABC) -> SpanContext:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return SpanContext(trace_id, 0x1234, is_remote=True, trace_flags=flags)


# -- sampling ----------------------------------------------------------------------------------


def test_rate_zero_never_samples_and_rate_one_always_does() -> None:
    assert not is_sampled(LOW56 >> 1, None, 0.0)
    assert is_sampled(LOW56, None, 1.0)


def test_the_low_56_bits_of_the_trace_id_decide() -> None:
    low, high = 0x10, LOW56 - 0x10
    assert is_sampled(low, None, 0.01) and not is_sampled(high, None, 0.01)
    # The high bits (often a timestamp in other generators) change nothing.
    assert is_sampled(low | (0xFFFF << 100), None, 0.01)
    assert not is_sampled(high | (0xFFFF << 100), None, 0.99)


def test_the_same_trace_gets_the_same_answer_at_the_same_rate() -> None:
    decisions = {is_sampled(0x7F0000000000000000000000000000, None, 0.5) for _ in range(10)}
    assert len(decisions) == 1


def test_roughly_the_rate_of_random_trace_ids_is_sampled() -> None:
    import random

    rng = random.Random(7)
    picked = sum(is_sampled(rng.getrandbits(128), None, 0.25) for _ in range(20000))
    assert 4500 < picked < 5500


def test_a_remote_parent_decides_whatever_the_rate() -> None:
    assert is_sampled(LOW56, _remote(sampled=True), 0.0001)
    assert not is_sampled(0, _remote(sampled=False), 1.0)


def test_rate_zero_is_off_even_under_a_sampled_parent() -> None:
    assert not is_sampled(0, _remote(sampled=True), 0.0)


# -- collection --------------------------------------------------------------------------------


class _Losses:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def __call__(self, reason: str, category: str, quantity: int) -> None:
        self.counts[(reason, category)] = self.counts.get((reason, category), 0) + quantity


class _Hooked(TracerProvider):
    """A provider whose spans feed one collector; batches land in ``batches``. It records
    every span, even under an unsampled parent, so that the collector alone decides."""

    def __init__(self, collector: TransactionCollector) -> None:
        super().__init__(sampler=ALWAYS_ON)
        self.batches: list[Any] = []
        outer = self

        class Hook(SpanProcessor):
            def on_start(self, span: Any, parent_context: Any = None) -> None:
                collector.on_start(span)

            def on_end(self, span: Any) -> None:
                batch = collector.on_end(span)
                if batch is not None:
                    outer.batches.append(batch)

        self.add_span_processor(Hook())


@pytest.fixture
def losses() -> _Losses:
    return _Losses()


def _tree(provider: TracerProvider, children: int = 2, parent: Any = None) -> None:
    tracer = provider.get_tracer("t")
    ctx = None
    if parent is not None:
        ctx = trace.set_span_in_context(NonRecordingSpan(parent), otel_context.Context())
    with tracer.start_as_current_span("GET /orders/", kind=SpanKind.SERVER, context=ctx):
        for index in range(children):
            with tracer.start_as_current_span(f"child {index}", kind=SpanKind.CLIENT):
                pass


def test_children_are_held_until_the_local_root_ends(losses: _Losses) -> None:
    collector = TransactionCollector(1.0, record_loss=losses)
    provider = _Hooked(collector)
    _tree(provider, children=3)
    (batch,) = provider.batches
    assert batch.root.name == "GET /orders/"
    assert [s.name for s in batch.spans] == ["child 0", "child 1", "child 2"]
    assert len(collector) == 0 and losses.counts == {}


def test_unsampled_traces_hold_nothing_and_count_as_sampled_out(losses: _Losses) -> None:
    collector = TransactionCollector(1e-12, record_loss=losses)
    provider = _Hooked(collector)
    _tree(provider)
    assert provider.batches == [] and len(collector) == 0
    assert losses.counts == {("sample_rate", "transaction"): 1}


def test_a_sampled_remote_parent_is_followed(losses: _Losses) -> None:
    provider = _Hooked(TransactionCollector(1e-12, record_loss=losses))
    _tree(provider, parent=_remote(sampled=True, trace_id=LOW56))
    (batch,) = provider.batches
    assert batch.root.parent.span_id == 0x1234


def test_an_unsampled_remote_parent_is_followed_without_counting_a_loss(losses: _Losses) -> None:
    provider = _Hooked(TransactionCollector(1.0, record_loss=losses))
    _tree(provider, parent=_remote(sampled=False, trace_id=1))  # 1: sampled by the rate
    assert provider.batches == [] and losses.counts == {}


def test_spans_beyond_the_per_transaction_bound_are_dropped_and_counted(losses: _Losses) -> None:
    provider = _Hooked(TransactionCollector(1.0, record_loss=losses, max_spans=2))
    _tree(provider, children=5)
    (batch,) = provider.batches
    assert [s.name for s in batch.spans] == ["child 0", "child 1"]
    assert batch.dropped == 3


def test_spans_beyond_the_total_bound_are_dropped(losses: _Losses) -> None:
    collector = TransactionCollector(1.0, record_loss=losses, max_held_spans=3)
    provider = _Hooked(collector)
    tracer = provider.get_tracer("t")
    roots = [tracer.start_span(name, context=otel_context.Context()) for name in ("a", "b")]
    for root in roots:  # both open at once: two children each, three held at most
        for _ in range(2):
            tracer.start_span("child", context=trace.set_span_in_context(root)).end()
    for root in roots:
        root.end()
    first, second = provider.batches
    assert (len(first.spans), first.dropped) == (2, 0)
    assert (len(second.spans), second.dropped) == (1, 1)


def test_the_oldest_open_trace_is_evicted_beyond_the_trace_bound(losses: _Losses) -> None:
    collector = TransactionCollector(1.0, record_loss=losses, max_traces=2)
    provider = _Hooked(collector)
    tracer = provider.get_tracer("t")
    roots = [tracer.start_span(f"root {i}", context=otel_context.Context()) for i in range(3)]
    assert len(collector) == 2
    assert losses.counts == {("buffer_overflow", "transaction"): 1}
    for root in roots:
        root.end()
    assert [b.root.name for b in provider.batches] == ["root 1", "root 2"]


# -- conversion --------------------------------------------------------------------------------


def _ctx(**settings: Any) -> ConvertContext:
    return ConvertContext(
        settings=Settings(**settings),
        layout=CodeLayout.current((), ()),
        read_source=SourceCache(),
        hostname="test-host",
        new_event_id=lambda: "e" * 32,
    )


ROOT = SpanView(
    trace_id=0xA1,
    span_id=0xB1,
    parent_span_id=0xC1,
    name="GET orders/<int:id>/",
    kind="SERVER",
    attributes={"http.method": "GET", "http.route": "orders/<int:id>/", "http.status_code": 200},
    resource={"service.name": "shop", "service.version": "1.2"},
    start_time_ns=1000 * MS,
    end_time_ns=1300 * MS,
)
HTTP_CHILD = SpanView(
    trace_id=0xA1,
    span_id=0xD1,
    parent_span_id=0xB1,
    name="GET",
    kind="CLIENT",
    attributes={
        "http.method": "GET",
        "http.url": "http://stock.test/items?token=abc123&page=2",
        "http.status_code": 503,
    },
    start_time_ns=1100 * MS,
    end_time_ns=1200 * MS,
)
DB_CHILD = SpanView(
    trace_id=0xA1,
    span_id=0xD2,
    parent_span_id=0xD1,
    name="SELECT",
    kind="CLIENT",
    attributes={"db.system": "sqlite", "db.statement": "SELECT * FROM t WHERE password='x1'"},
    start_time_ns=1010 * MS,
    end_time_ns=1020 * MS,
)


def test_transaction_has_the_root_as_trace_context_and_the_children_as_spans() -> None:
    event = build_transaction(ROOT, [HTTP_CHILD, DB_CHILD], _ctx(), Scrubber())
    assert_valid_event(event)
    assert event["type"] == "transaction"
    assert event["transaction"] == "/orders/{id}/"
    assert event["transaction_info"] == {"source": "route"}
    assert (event["start_timestamp"], event["timestamp"]) == (1.0, 1.3)
    assert event["contexts"]["trace"] == {
        "trace_id": f"{0xA1:032x}",
        "span_id": f"{0xB1:016x}",
        "parent_span_id": f"{0xC1:016x}",
        "op": "http.server",
        "status": "ok",
    }
    assert event["release"] == "1.2"
    db, http = event["spans"]  # oldest first
    assert http == {
        "trace_id": f"{0xA1:032x}",
        "span_id": f"{0xD1:016x}",
        "parent_span_id": f"{0xB1:016x}",
        "op": "http.client",
        "description": "GET http://stock.test/items?token=[Filtered]&page=2",
        "start_timestamp": 1.1,
        "timestamp": 1.2,
        "status": "unavailable",
        "data": {
            "http.method": "GET",
            "http.url": "http://stock.test/items?token=[Filtered]&page=2",
            "http.status_code": 503,
        },
    }
    assert db["op"] == "db" and db["parent_span_id"] == f"{0xD1:016x}"
    assert db["description"] == "SELECT * FROM t WHERE password=[Filtered]"
    assert "x1" not in json.dumps(event) and "abc123" not in json.dumps(event)


def test_transaction_without_route_is_named_after_the_span() -> None:
    root = SpanView(trace_id=1, span_id=2, name="nightly-job", start_time_ns=5, end_time_ns=9)
    event = build_transaction(root, [], _ctx(), Scrubber())
    assert_valid_event(event)
    assert (event["transaction"], event["transaction_info"]) == (
        "nightly-job",
        {"source": "custom"},
    )
    assert event["spans"] == [] and "parent_span_id" not in event["contexts"]["trace"]


def test_sensitive_span_attributes_are_filtered() -> None:
    child = SpanView(
        trace_id=1,
        span_id=3,
        parent_span_id=2,
        name="call",
        kind="CLIENT",
        attributes={"auth.token": "t0k3n", "url.query": "api_key=k3y&x=1", "peer": "a:b@h"},
        start_time_ns=5,
        end_time_ns=6,
    )
    root = SpanView(trace_id=1, span_id=2, name="job", start_time_ns=1, end_time_ns=9)
    (span,) = build_transaction(root, [child], _ctx(), Scrubber())["spans"]
    assert span["data"] == {
        "auth.token": "[Filtered]",
        "url.query": "api_key=[Filtered]&x=1",
        "peer": "a:b@h",
    }


@pytest.mark.parametrize("send_default_pii", [False, True])
def test_who_made_a_request_is_in_span_data_only_with_pii_allowed(send_default_pii: bool) -> None:
    attributes = {
        "http.method": "GET",
        "client.address": "203.0.113.9",
        "user_agent.original": "curl/8",
        "enduser.id": "ada",
    }
    server = SpanView(
        trace_id=1,
        span_id=3,
        parent_span_id=2,
        name="GET /upstream/",
        kind="SERVER",
        attributes=attributes,
        start_time_ns=5,
        end_time_ns=6,
    )
    root = SpanView(trace_id=1, span_id=2, name="job", start_time_ns=1, end_time_ns=9)
    ctx = _ctx(send_default_pii=send_default_pii)
    (span,) = build_transaction(root, [server], ctx, Scrubber())["spans"]
    expected = attributes if send_default_pii else {"http.method": "GET"}
    assert span["data"] == expected


def test_span_data_is_scrubbed_as_sentry_s_otlp_exports_are() -> None:
    """probe 2026-12-05: client headers beyond the safe five, bind parameters, URL
    fragments, user.* and client.* on inner spans, secrets in free text and span names."""
    client = SpanView(
        trace_id=0xA1,
        span_id=0xD3,
        parent_span_id=0xB1,
        name="GET",
        kind="CLIENT",
        attributes={
            "http.method": "GET",
            "http.url": "https://idp.test/cb#access_token=zq-secret-1",
            "http.request.header.ocp_apim_subscription_key": ("zq-secret-2",),
            "http.request.header.forwarded": ("for=203.0.113.202",),
            "http.request.header.accept": ("application/json",),
        },
        start_time_ns=1100 * MS,
        end_time_ns=1200 * MS,
    )
    inner = SpanView(
        trace_id=0xA1,
        span_id=0xD4,
        parent_span_id=0xB1,
        name="cache.get session:zq-secret-3",
        kind="INTERNAL",
        attributes={
            "db.system": "sqlite",
            "db.statement": "SELECT 1 FROM u WHERE name = ? AND password = ?",
            "db.statement.parameters": "('bob', 'zq-secret-4')",
            "user.email": "victim@example.com",
            "client.address": "198.51.100.201",
            "app.note": "password=zq-secret-5",
        },
        start_time_ns=1210 * MS,
        end_time_ns=1220 * MS,
    )
    named = inner._replace(span_id=0xD5, attributes={"app.step": 3})
    event = build_transaction(ROOT, [client, inner, named], _ctx(), Scrubber())
    assert_valid_event(event)
    text = json.dumps(event)
    for secret in ("zq-secret", "203.0.113.202", "victim@", "198.51.100"):
        assert secret not in text, secret
    first, _inner, third = event["spans"]
    assert first["data"]["http.request.header.accept"] == ["application/json"]
    assert third["description"] == "cache.get session:[Filtered]"


def test_transaction_goes_in_a_transaction_item_with_a_sampled_trace_header() -> None:
    event = build_transaction(ROOT, [HTTP_CHILD], _ctx(), Scrubber())
    data = event_envelope(
        event,
        dsn=None,
        sent_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        sdk={"name": "x", "version": "1"},
        trace=None,
    )
    _, items = decode_envelope(data)
    assert [h["type"] for h, _ in items] == ["transaction"]
    assert decode_events(data) == []
    assert decode_events(data, "transaction") == [event]


# -- settings ---------------------------------------------------------------------------------


def test_traces_sample_rate_comes_from_the_environment_and_defaults_to_off() -> None:
    assert load_settings(environ={}).traces_sample_rate == 0.0
    assert load_settings(environ={"SENTRY_TRACES_SAMPLE_RATE": "0.25"}).traces_sample_rate == 0.25


def test_an_invalid_traces_sample_rate_is_reported_and_off() -> None:
    warnings: list[str] = []
    settings = load_settings(environ={"SENTRY_TRACES_SAMPLE_RATE": "2"}, warn=warnings.append)
    assert settings.traces_sample_rate == 0.0
    assert any("SENTRY_TRACES_SAMPLE_RATE" in w for w in warnings)


# -- through the processor ---------------------------------------------------------------------


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    yield provider
    provider.shutdown()


def _transactions(transport: CapturingTransport) -> list[dict[str, Any]]:
    decoded = [t for data in transport.envelopes for t in decode_events(data, "transaction")]
    assert transport.transactions == decoded  # what users' tests read
    return decoded


def test_transactions_are_off_by_default(provider: TracerProvider) -> None:
    transport = CapturingTransport()
    processor = SentrySpanProcessor(transport=transport)
    provider.add_span_processor(processor)
    _tree(provider)
    assert processor.force_flush(5000)
    assert not processor.bridge.collects_transactions
    assert transport.envelopes == []


def test_processor_sends_a_sampled_trace_as_a_transaction_linked_to_its_error(
    provider: TracerProvider,
) -> None:
    transport = CapturingTransport()
    processor = SentrySpanProcessor(transport=transport, traces_sample_rate=1.0)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("GET /orders/", kind=SpanKind.SERVER):
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT):
            pass
        with tracer.start_as_current_span("load order") as failing:
            try:
                raise KeyError(7)
            except KeyError as exc:
                failing.record_exception(exc)
    assert processor.force_flush(5000)
    (transaction,) = _transactions(transport)
    (error,) = transport.events
    assert_valid_event(transaction)
    assert [s["description"] for s in transaction["spans"]] == ["GET", "load order"]
    trace_id = transaction["contexts"]["trace"]["trace_id"]
    assert error["contexts"]["trace"]["trace_id"] == trace_id
    root_id = transaction["contexts"]["trace"]["span_id"]
    assert error["contexts"]["trace"]["parent_span_id"] == root_id


def test_transactions_take_at_most_half_of_the_queue(provider: TracerProvider) -> None:
    import threading

    release = threading.Event()

    class Stuck(CapturingTransport):
        def send(self, envelope: bytes) -> Any:
            release.wait(10)
            return super().send(envelope)

    processor = SentrySpanProcessor(transport=Stuck(), traces_sample_rate=1.0, queue_size=4)
    provider.add_span_processor(processor)
    # Hold the worker inside the first transaction, then offer five more.
    entered, blocker = threading.Event(), threading.Event()
    original = processor.pipeline.send_transaction

    def slow(batch: Any) -> bool:
        entered.set()
        blocker.wait(10)
        return original(batch)

    processor.pipeline.send_transaction = slow  # type: ignore[method-assign]
    try:
        _tree(provider, children=0)
        assert entered.wait(5)
        for _ in range(5):
            _tree(provider, children=0)
        assert processor.bridge.pending == 2  # half of queue_size=4; the other three dropped
        assert processor.pipeline.lost[("queue_overflow", "transaction")] == 3
    finally:
        blocker.set()
        release.set()
    assert processor.force_flush(5000)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_with_no_open_traces_and_a_free_lock(losses: _Losses) -> None:
    collector = TransactionCollector(1.0, record_loss=losses)
    provider = _Hooked(collector)
    root = provider.get_tracer("t").start_span("open in the parent")
    with collector._lock:  # held by the parent at the moment of the fork
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            ok = len(collector) == 0 and collector._lock.acquire(timeout=2)
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    root.end()
    assert os.waitstatus_to_exitcode(status) == 0
    assert [b.root.name for b in provider.batches] == ["open in the parent"]

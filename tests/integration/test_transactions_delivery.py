"""Opt-in transactions over a real socket: the envelope, and rate limits per category."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.deliver.envelope import decode_envelope, decode_events
from otel_sentry_bridge.deliver.retry import Backoff
from tests.support.receiver import SentryReceiver


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    yield provider
    provider.shutdown()


def _request(provider: TracerProvider, *, fail: bool = False) -> str:
    """One server span with a client child; the trace id."""
    tracer = provider.get_tracer("shop")
    with tracer.start_as_current_span(
        "GET orders/", kind=SpanKind.SERVER, attributes={"http.method": "GET"}
    ) as server:
        with tracer.start_as_current_span(
            "GET", kind=SpanKind.CLIENT, attributes={"http.method": "GET", "http.url": "http://x/"}
        ):
            pass
        if fail:
            try:
                raise ValueError("card declined")
            except ValueError as exc:
                server.record_exception(exc)
    return format(server.get_span_context().trace_id, "032x")


def test_transaction_arrives_as_a_transaction_item_with_its_spans(
    provider: TracerProvider, sentry_receiver: SentryReceiver
) -> None:
    processor = SentrySpanProcessor(dsn=sentry_receiver.dsn, traces_sample_rate=1.0)
    provider.add_span_processor(processor)
    trace_id = _request(provider, fail=True)
    assert processor.force_flush(10000)
    (transaction,) = sentry_receiver.wait_for_transactions(1)
    (error,) = sentry_receiver.wait_for_events(1)
    assert transaction["contexts"]["trace"]["trace_id"] == trace_id
    assert error["contexts"]["trace"]["trace_id"] == trace_id
    assert [s["op"] for s in transaction["spans"]] == ["http.client"]
    envelopes = [decode_envelope(r.envelope) for r in sentry_receiver.requests]
    types = [[h["type"] for h, _ in items] for _, items in envelopes]
    assert sorted(types) == [["event"], ["transaction"]]
    headers = envelopes[types.index(["transaction"])][0]
    assert headers["trace"]["trace_id"] == trace_id
    assert headers["trace"]["sampled"] == "true"


def test_a_transaction_rate_limit_drops_transactions_but_not_errors(
    provider: TracerProvider, sentry_receiver: SentryReceiver
) -> None:
    processor = SentrySpanProcessor(dsn=sentry_receiver.dsn, traces_sample_rate=1.0)
    provider.add_span_processor(processor)
    # What Bugsink answers to every envelope: no transactions for a day.
    sentry_receiver.respond_with(
        200, {"X-Sentry-Rate-Limits": "86400:transaction;span:organization"}
    )
    _request(provider)
    assert processor.force_flush(10000)
    assert len(sentry_receiver.wait_for_transactions(1)) == 1
    _request(provider, fail=True)
    _request(provider)
    assert processor.force_flush(10000)
    (error,) = sentry_receiver.wait_for_events(1)
    assert error["exception"]["values"][-1]["value"] == "card declined"
    assert len(sentry_receiver.transactions) == 1  # the later two were never sent
    assert processor.pipeline.lost[("ratelimit_backoff", "transaction")] == 2


def test_a_429_for_a_transaction_does_not_hold_back_the_errors(
    provider: TracerProvider, sentry_receiver: SentryReceiver
) -> None:
    processor = SentrySpanProcessor(dsn=sentry_receiver.dsn, traces_sample_rate=1.0)
    provider.add_span_processor(processor)
    sentry_receiver.respond_with(429, {"X-Sentry-Rate-Limits": "60:transaction:organization"})
    _request(provider)
    assert processor.force_flush(10000)
    started = time.monotonic()
    _request(provider, fail=True)
    assert processor.force_flush(10000)
    assert time.monotonic() - started < 5  # not the 60 s of the transaction limit
    (error,) = sentry_receiver.wait_for_events(1)
    assert error["exception"]["values"][-1]["type"] == "ValueError"
    assert processor.pipeline.lost[("ratelimit_backoff", "transaction")] == 2  # 429'd + dropped


def test_transactions_are_not_spooled_while_sentry_is_down(
    provider: TracerProvider, sentry_receiver: SentryReceiver, tmp_path: Path
) -> None:
    processor = SentrySpanProcessor(
        dsn=sentry_receiver.dsn,
        traces_sample_rate=1.0,
        spool_dir=str(tmp_path),
        backoff=Backoff(initial=60, maximum=60),  # stays degraded for the whole test
    )
    provider.add_span_processor(processor)
    sentry_receiver.respond_with(503)
    _request(provider, fail=True)  # the error fails and is spooled: the sender is degraded
    assert processor.force_flush(10000)
    _request(provider)
    assert processor.force_flush(10000)
    assert processor.pipeline.lost[("network_error", "transaction")] == 2
    assert processor.pipeline.lost[("network_error", "error")] == 0
    (spooled,) = tmp_path.rglob("*.envelope")  # the error alone
    assert len(decode_events(spooled.read_bytes())) == 1

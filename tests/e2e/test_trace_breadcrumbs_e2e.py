"""The example shop under a real ``opentelemetry-instrument``: a view calls a loopback upstream
with ``requests`` and fails. The Sentry event carries the call as an http breadcrumb; with
``SENTRY_TRACES_SAMPLE_RATE=1`` the trace also arrives as Sentry transactions holding the same
spans the OTLP receiver (standing in for Jaeger) got."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.bugsink import BugsinkServer
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import get, shop_env, start_shop
from tests.support.receiver import SentryReceiver

pytestmark = pytest.mark.e2e


@contextmanager
def _shop(dsn: str, otlp: OtlpReceiver, log: Path, **extra: str) -> Iterator[str]:
    env = shop_env(dsn, otlp.traces_endpoint, **extra)
    server, base = start_shop(env, log)
    try:
        yield base
    finally:
        server.stop()


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def _http_crumbs(event: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in event["breadcrumbs"]["values"] if c.get("type") == "http"]


def test_failing_view_has_its_upstream_call_as_breadcrumb_and_its_trace_as_transactions(
    sentry_receiver: SentryReceiver, otlp: OtlpReceiver, tmp_path: Path
) -> None:
    with _shop(
        sentry_receiver.dsn, otlp, tmp_path / "shop.log", SENTRY_TRACES_SAMPLE_RATE="1"
    ) as base:
        assert get(f"{base}/inventory/") == 500
        (event,) = [
            e for e in sentry_receiver.wait_for_events(1, timeout=30) if e["level"] == "error"
        ]
        trace_id = event["contexts"]["trace"]["trace_id"]
        (crumb,) = _http_crumbs(event)
        assert crumb["data"]["method"] == "GET"
        assert crumb["data"]["url"] == f"{base}/upstream/stock/"
        assert crumb["data"]["status_code"] == 503
        assert crumb["level"] == "error"
        assert crumb["timestamp"] <= event["timestamp"]

        # The upstream's server span has a remote parent (the traceparent header), but the
        # view's transaction is still open in this process: it joins it, as one tree.
        def in_trace() -> list[dict[str, Any]]:
            return [
                t
                for t in sentry_receiver.transactions
                if t["contexts"]["trace"]["trace_id"] == trace_id
            ]

        while not in_trace():
            sentry_receiver.wait_for_transactions(len(sentry_receiver.transactions) + 1, 30)
        (inventory,) = in_trace()
        assert inventory["transaction"] == "/inventory/"
        assert inventory["contexts"]["trace"]["status"] == "internal_error"
        client, upstream = inventory["spans"]
        assert (client["op"], client["description"]) == (
            "http.client",
            f"GET {base}/upstream/stock/",
        )
        assert client["status"] == "unavailable"
        assert (upstream["op"], upstream["parent_span_id"]) == ("http.server", client["span_id"])
        # The error links to the transaction's root span.
        assert event["contexts"]["trace"]["span_id"] == inventory["contexts"]["trace"]["span_id"]

        # Sentry's trace view holds the very spans the tracing backend got.
        root = inventory["contexts"]["trace"]["span_id"]
        sentry_ids = {root} | {s["span_id"] for s in inventory["spans"]}
        otlp_spans = otlp.wait_for_spans(lambda s: s.trace_id == trace_id, count=len(sentry_ids))
        assert {s.span_id for s in otlp_spans} == sentry_ids


def test_without_a_traces_sample_rate_no_transaction_is_sent(
    sentry_receiver: SentryReceiver, otlp: OtlpReceiver, tmp_path: Path
) -> None:
    with _shop(sentry_receiver.dsn, otlp, tmp_path / "shop.log") as base:
        assert get(f"{base}/inventory/") == 500
        (event,) = sentry_receiver.wait_for_events(1, timeout=30)
        assert len(_http_crumbs(event)) == 1
        assert get(f"{base}/orders/999/") == 500  # a marker: everything before it has arrived
        sentry_receiver.wait_for_events(2, timeout=30)
    assert sentry_receiver.transactions == []


def test_bugsink_gets_every_error_with_its_breadcrumb_while_transactions_are_on(
    bugsink: BugsinkServer, otlp: OtlpReceiver, tmp_path: Path
) -> None:
    environment = f"crumbs-{uuid.uuid4().hex[:8]}"
    with _shop(
        bugsink.dsn,
        otlp,
        tmp_path / "shop.log",
        SENTRY_ENVIRONMENT=environment,
        SENTRY_TRACES_SAMPLE_RATE="1",
    ) as base:
        # Bugsink discards transactions and answers every envelope with a day-long rate limit
        # on them (test_transactions_delivery checks that limit with the loopback receiver):
        # errors must keep flowing.
        for _ in range(3):
            assert get(f"{base}/inventory/") == 500
        events = bugsink.wait_for_events(
            3, timeout=60, where=lambda e: e["data"].get("environment") == environment
        )
    for event in events:
        (crumb,) = _http_crumbs(event["data"])
        assert crumb["data"]["url"] == f"{base}/upstream/stock/"
        assert crumb["data"]["status_code"] == 503

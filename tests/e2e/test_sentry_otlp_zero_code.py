"""The example shop under a real ``opentelemetry-instrument`` with
``OTEL_SENTRY_OTLP_SIGNALS=traces,logs``: errors as envelopes, traces and logs over OTLP, all at
one loopback Sentry; Jaeger (a second OTLP receiver) keeps getting every span."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import get, shop_env, start_shop
from tests.support.sentry_otlp_receiver import AUTH, LOGS_PATH, TRACES_PATH, SentryOtlpReceiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def sentry() -> Iterator[SentryOtlpReceiver]:
    with SentryOtlpReceiver() as receiver:
        yield receiver
    assert receiver.invalid == [], "the receiver got events Sentry would reject"


@pytest.fixture
def jaeger() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def _trace(event: dict[str, Any]) -> tuple[str, str]:
    context = event["contexts"]["trace"]
    return context["trace_id"], context["span_id"]


def test_errors_traces_and_logs_reach_one_sentry_linked_by_the_trace_id(
    sentry: SentryOtlpReceiver, jaeger: OtlpReceiver, tmp_path: Path
) -> None:
    env = shop_env(
        sentry.dsn,
        jaeger.traces_endpoint,
        OTEL_SENTRY_OTLP_SIGNALS="traces,logs",
        OTEL_BLRP_SCHEDULE_DELAY="100",
    )
    server, base = start_shop(env, tmp_path / "shop.log")
    try:
        assert get(f"{base}/orders/999/") == 500  # an unhandled exception
        assert get(f"{base}/payment/") == 402  # INFO, WARNING, then an ERROR line
        order_event, payment_event = sentry.wait_for_events(2, timeout=30)
        for event in (order_event, payment_event):
            trace_id, span_id = _trace(event)

            def request_span(span: Any, t: str = trace_id, i: str = span_id) -> bool:
                return bool(span.trace_id == t and span.span_id == i)

            # The request's span in Sentry, over OTLP, with the event's trace id ...
            (server_span,) = sentry.wait_for_spans(request_span)
            assert server_span.kind == "SERVER"
            assert server_span.resource["service.name"] == "shop"
            # ... and in Jaeger, as before.
            jaeger.wait_for_spans(request_span)
        # The INFO line of the shop's "shop" logger (propagate=False in its LOGGING).
        (info,) = sentry.wait_for_logs(lambda log: log.body == "charging order 1001 with acme-pay")
    finally:
        server.stop()

    assert order_event["exception"]["values"][-1]["type"] == "OrderNotFound"
    assert payment_event["logentry"]["formatted"] == "payment provider acme-pay declined order 1001"
    assert len(sentry.events) == 2  # one event per failing request, nothing else
    # The log line carries the ids of the span it was logged in: the event's.
    assert (info.trace_id, info.span_id) == _trace(payment_event)
    assert (info.severity_text, info.scope) == ("INFO", "shop.views")

    paths = {request.path for request in sentry.otlp_requests}
    assert paths == {TRACES_PATH, LOGS_PATH}
    assert all(r.headers["x-sentry-auth"] == AUTH for r in sentry.otlp_requests)
    assert all(r.status == 200 for r in sentry.otlp_requests)
    # The bridge's and the exporter's own records never went out as logs.
    scopes = {log.scope.partition(".")[0] for log in sentry.logs()}
    assert scopes.isdisjoint({"otel_sentry_bridge", "opentelemetry", "urllib3", "requests"})

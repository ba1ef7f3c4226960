"""A failing Django view in an OTel-instrumented request ends up in a real Bugsink."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from otel_sentry_bridge import SentrySpanProcessor
from tests.support.bugsink import BugsinkServer
from tests.support.otel_django import InstrumentedDjango

pytestmark = pytest.mark.e2e


def test_failing_view_becomes_a_bugsink_issue_with_trace_id_and_context_lines(
    instrumented_django: InstrumentedDjango, bugsink: BugsinkServer
) -> None:
    processor = SentrySpanProcessor(dsn=bugsink.dsn, environment="e2e")
    with instrumented_django.processor(processor):
        response = Client(raise_request_exception=False).get("/orders/17/boom/")
        assert response.status_code == 500
        assert processor.force_flush(10_000)
    (server_span,) = [s for s in instrumented_django.exporter.get_finished_spans()]
    trace_id = format(server_span.context.trace_id, "032x")

    def ours(event: dict[str, Any]) -> bool:
        return event["data"]["contexts"]["trace"]["trace_id"] == trace_id

    (stored,) = bugsink.wait_for_events(1, timeout=30, where=ours)
    data = stored["data"]
    assert data["contexts"]["trace"]["span_id"] == format(server_span.context.span_id, "016x")
    assert data["environment"] == "e2e"
    values = data["exception"]["values"]
    assert [v["type"] for v in values] == ["KeyError", "OrderLookupError"]
    frames = values[-1]["stacktrace"]["frames"]
    view_frame = next(f for f in frames if f["function"] == "_find_order")
    assert "raise OrderLookupError" in view_frame["context_line"]
    assert view_frame["pre_context"] and view_frame["in_app"] is True
    assert data["request"]["url"].endswith("/orders/17/boom/")
    issue_ids = {issue["id"] for issue in bugsink.issues()}
    assert stored["issue"] in issue_ids

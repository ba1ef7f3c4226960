"""Django views under the real OTel Django instrumentation: the events a helper process sends
are the events the bridge sends from the application's process (request, body, locals,
template frame, log entry and extra, breadcrumbs, user data scrubbed the same way)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.capture.log_handler import SpanEventHandler
from tests.support.otel_django import InstrumentedDjango
from tests.support.receiver import SentryReceiver

OPTIONS = {"include_local_variables": True, "max_request_body_size": "always"}


def _requests(client: Client) -> None:
    client.get("/orders/17/boom/", HTTP_AUTHORIZATION="Bearer secret", HTTP_X_SHOP="a")
    client.get("/log-exception/")
    client.get("/breadcrumbs/")
    client.get("/unserialisable-extra/")
    client.get("/broken-template/")
    client.post(
        "/read-body/", data=json.dumps({"card": "4111", "password": "pw"}), content_type="x/json"
    )
    client.post("/leaky-locals/?api_key=k3y", data={"doc": json.dumps({"token": "t0k"})})


def _events(
    instrumented_django: InstrumentedDjango,
    monkeypatch: pytest.MonkeyPatch,
    receiver: SentryReceiver,
    *,
    helper: bool,
) -> list[dict[str, Any]]:
    processor = SentrySpanProcessor(dsn=receiver.dsn, helper_process=helper, **OPTIONS)
    link = processor.bridge.link
    assert (link is not None) == helper
    if link is not None:
        assert link.start(30)
    handler = SpanEventHandler(settings=processor.settings)
    views_logger = logging.getLogger("shop.views")
    views_logger.addHandler(handler)
    monkeypatch.setattr(views_logger, "level", logging.INFO)
    try:
        with instrumented_django.processor(processor):
            _requests(Client(raise_request_exception=False))
            assert processor.force_flush(20_000)
            sent_here = processor.pipeline.sent_count
    finally:
        views_logger.removeHandler(handler)
    assert sent_here == (0 if helper else len(receiver.accepted))
    return list(receiver.accepted)


_VOLATILE: set[str] = {"event_id", "timestamp", "trace_id", "span_id", "parent_span_id"}
_VOLATILE |= {"service.instance.id", "sentry-trace", "traceparent", "duration", "elapsed"}


def _stable(value: Any, strip: Callable[[str], bool] = _VOLATILE.__contains__) -> Any:
    """``value`` without what differs from one request to the next (ids, times, the
    addresses in the reprs of the test client's objects)."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if not strip(k)}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, str):
        return _ADDRESS.sub(" at 0x", value)
    return value


_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def test_the_helper_sends_the_same_events_as_the_application_process(
    instrumented_django: InstrumentedDjango, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SentryReceiver() as here, SentryReceiver() as there:
        in_process = _events(instrumented_django, monkeypatch, here, helper=False)
        helper = _events(instrumented_django, monkeypatch, there, helper=True)
    assert len(in_process) == 7
    key = lambda event: json.dumps(_stable(event), sort_keys=True)  # noqa: E731
    in_process, helper = sorted(in_process, key=key), sorted(helper, key=key)
    for ours, theirs in zip(in_process, helper, strict=True):
        assert _stable(theirs) == _stable(ours)
    text = json.dumps(helper)
    for secret in ("Bearer secret", '"pw"', "k3y", "t0k"):
        assert secret not in text, secret
    frames = [
        f
        for e in helper
        for v in e.get("exception", {}).get("values", [])
        for f in v["stacktrace"]["frames"]
    ]
    assert any("vars" in f for f in frames)  # locals
    assert any(f.get("filename", "").endswith("broken.html") for f in frames)  # template
    assert any(isinstance((e.get("request") or {}).get("data"), dict) for e in helper)  # body
    assert any(e.get("logentry", {}).get("formatted") == "could not load order 18" for e in helper)
    crumbs = [c.get("message") for e in helper for c in e.get("breadcrumbs", {}).get("values", [])]
    assert "step one: cart loaded" in crumbs

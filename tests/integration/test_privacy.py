"""Planted secrets never leave: a Django app under the real OTel instrumentation, every
envelope the bridge would send decompressed and searched for them.

Each secret is planted where an attacker or a careless developer would put one: nested in
local variables, in a form and a JSON body, in the query string, in log ``extra`` values, log
arguments and a dict logged as the message, in an exception message, in a 64 KB header.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.capture.log_handler import SpanEventHandler
from otel_sentry_bridge.convert.scrub import FILTERED
from otel_sentry_bridge.testing import CapturingTransport
from tests.support.otel_django import InstrumentedDjango

PLANTED = "planted-zq"  # every secret below contains it


class App:
    def __init__(self, django: InstrumentedDjango, **options: Any) -> None:
        self.django = django
        self.transport = CapturingTransport()
        self.processor = SentrySpanProcessor(transport=self.transport, **options)
        self.client = Client(raise_request_exception=False)
        self.log = logging.getLogger("shop.views")

    def events(self) -> list[dict[str, Any]]:
        assert self.processor.force_flush(10_000)
        return list(self.transport.events)

    def sent_bytes(self) -> bytes:
        """Everything the bridge sent, decompressed."""
        assert self.processor.force_flush(10_000)
        return b"".join(
            gzip.decompress(e) if e[:2] == b"\x1f\x8b" else e for e in self.transport.envelopes
        )

    def assert_nothing_planted_left(self) -> None:
        assert self.transport.envelopes, "nothing was sent"
        sent = self.sent_bytes()
        at = sent.find(PLANTED.encode())
        assert at < 0, sent[max(0, at - 300) : at + 60]


@pytest.fixture
def app(instrumented_django: InstrumentedDjango, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    app = App(instrumented_django, include_local_variables=True, send_default_pii=True)
    handler = SpanEventHandler(settings=app.processor.settings)
    app.log.addHandler(handler)
    monkeypatch.setattr(app.log, "level", logging.DEBUG)
    with instrumented_django.processor(app.processor):
        try:
            yield app
        finally:
            app.log.removeHandler(handler)


def _vars(event: dict[str, Any], function: str) -> dict[str, Any]:
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    frame = next(f for f in frames if f["function"] == function)
    variables: dict[str, Any] = frame["vars"]
    return variables


def test_secrets_nested_in_locals_forms_json_bodies_and_urls_are_filtered(app: App) -> None:
    doc = json.dumps({"card": {"number": "4111", "cvv_password": f"{PLANTED}-json"}})
    app.client.post(
        f"/leaky-locals/?api_key={PLANTED}-creds&password={PLANTED}-query",
        {"password": f"{PLANTED}-form", "doc": doc, "name": "bob"},
    )
    (event,) = app.events()
    app.assert_nothing_planted_left()
    variables = _vars(event, "leaky_locals")
    assert variables["creds"] == {"service": "billing", "password": FILTERED}
    assert variables["form"]["password"] == FILTERED
    assert variables["form"]["name"] == ["bob"]
    assert variables["payload"]["card"] == {"number": "4111", "cvv_password": FILTERED}
    # Every Django frame has the request: its method and path, never the query string.
    assert variables["request"] == "<WSGIRequest: POST '/leaky-locals/'>"


def test_huge_locals_are_cut_not_copied_whole(app: App) -> None:
    app.client.post("/leaky-locals/", {"doc": "{}"})
    (event,) = app.events()
    variables = _vars(event, "leaky_locals")
    assert len(variables["huge_map"]) <= 20
    assert len(variables["huge_set"]) <= 20
    assert len(variables["blob"]) <= 256


def test_a_64_kb_header_is_cut_and_scrubbed_and_the_event_still_sent(app: App) -> None:
    agent = f"token={PLANTED} " + "A" * 64 * 1024
    app.client.get("/boom/", HTTP_USER_AGENT=agent, HTTP_X_TRACE_NOTE="rv:1 " + "B" * 64 * 1024)
    (event,) = app.events()
    app.assert_nothing_planted_left()
    headers = event["request"]["headers"]
    assert headers["User-Agent"].startswith(f"token={FILTERED} AAAA")
    assert len(headers["User-Agent"]) <= 8192


def test_a_64_kb_log_line_becomes_a_cut_scrubbed_breadcrumb(app: App) -> None:
    tracer = app.django.provider.get_tracer("t")
    with tracer.start_as_current_span("job"):
        app.log.info("rv:1 %s token=%s", "A" * 64 * 1024, PLANTED)
        app.log.info("session token=%s " + "C" * 64 * 1024, PLANTED)
        app.log.error("job failed")
    (event,) = app.events()
    app.assert_nothing_planted_left()
    messages = [crumb["message"] for crumb in event["breadcrumbs"]["values"]]
    assert any(m.startswith(f"session token={FILTERED} CCC") for m in messages)


def test_log_extra_values_are_scrubbed_by_their_nested_keys(app: App) -> None:
    tracer = app.django.provider.get_tracer("t")
    with tracer.start_as_current_span("job"):
        app.log.error(
            "charge failed",
            extra={"ctx": {"api_key": PLANTED, "order": 7}, "note": f"password={PLANTED}"},
        )
    (event,) = app.events()
    app.assert_nothing_planted_left()
    assert event["extra"]["ctx"] == {"api_key": FILTERED, "order": 7}
    assert event["extra"]["note"] == f"password={FILTERED}"


@pytest.mark.parametrize(
    ("msg", "args"),
    [
        ("token=%s", (PLANTED,)),
        ("login with %s=%s", ("password", PLANTED)),
        ("%s", (f"Authorization: Bearer {PLANTED}",)),
        ({"password": PLANTED, "user": "bob"}, ()),
    ],
    ids=["template-key", "key-as-argument", "argument-holds-pair", "dict-as-message"],
)
def test_log_messages_and_their_arguments_are_scrubbed(app: App, msg: Any, args: Any) -> None:
    tracer = app.django.provider.get_tracer("t")
    with tracer.start_as_current_span("job"):
        app.log.error(msg, *args)
    (event,) = app.events()
    app.assert_nothing_planted_left()
    assert event["logentry"]["formatted"]


def test_a_url_password_in_an_exception_message_is_filtered(app: App) -> None:
    tracer = app.django.provider.get_tracer("t")
    with tracer.start_as_current_span("job"):
        try:
            raise ConnectionError(f"could not reach postgresql://app:{PLANTED}@db:5432/shop")
        except ConnectionError:
            app.log.exception("database down")
    (event,) = app.events()
    app.assert_nothing_planted_left()
    assert event["exception"]["values"][-1]["value"] == (
        f"could not reach postgresql://app:{FILTERED}@db:5432/shop"
    )


def test_a_before_send_that_plants_hostile_data_cannot_leak_it(
    instrumented_django: InstrumentedDjango,
) -> None:
    class Creds:
        def __repr__(self) -> str:
            return f"Creds(password={PLANTED!r})"

    def before_send(event: dict[str, Any]) -> dict[str, Any]:
        event["extra"] = {"creds": Creds(), "deep": {"token": PLANTED}}
        event.setdefault("request", {})["data"] = (
            '{"a": ' + "[" * 3000 + "]" * 3000 + f', "password": "{PLANTED}"}}'
        )
        event["request"]["headers"] = {"Authorization": f"Bearer {PLANTED}"}
        return event

    app = App(instrumented_django, before_send=before_send)
    with instrumented_django.processor(app.processor):
        app.client.get("/boom/")
        (event,) = app.events()
    app.assert_nothing_planted_left()
    assert event["request"]["headers"]["Authorization"] == FILTERED

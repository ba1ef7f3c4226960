"""Django views under the real OTel Django instrumentation, captured through the signal hook
and the logging handler, checked as the events Sentry would receive."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from opentelemetry.sdk.trace import ReadableSpan

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.capture.log_handler import SpanEventHandler
from otel_sentry_bridge.testing import CapturingTransport
from tests.support.broken_template import broken_template_frame
from tests.support.otel_django import InstrumentedDjango


@dataclass
class Harness:
    django: InstrumentedDjango
    transport: CapturingTransport
    processor: SentrySpanProcessor
    client: Client

    def get(self, path: str, **headers: Any) -> Any:
        return self.client.get(path, **headers)

    def events(self) -> list[dict[str, Any]]:
        assert self.processor.force_flush(5000)
        return list(self.transport.events)

    def server_span(self) -> ReadableSpan:
        spans = [s for s in self.django.exporter.get_finished_spans() if s.kind.name == "SERVER"]
        assert len(spans) == 1
        return spans[0]


def _harness(
    instrumented_django: InstrumentedDjango, monkeypatch: pytest.MonkeyPatch, **options: Any
) -> Iterator[Harness]:
    transport = CapturingTransport()
    processor = SentrySpanProcessor(transport=transport, **options)
    handler = SpanEventHandler(settings=processor.settings)
    views_logger = logging.getLogger("shop.views")
    views_logger.addHandler(handler)
    monkeypatch.setattr(views_logger, "level", logging.INFO)
    with instrumented_django.processor(processor):
        try:
            yield Harness(
                instrumented_django, transport, processor, Client(raise_request_exception=False)
            )
        finally:
            views_logger.removeHandler(handler)


@pytest.fixture
def app(
    instrumented_django: InstrumentedDjango, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    yield from _harness(instrumented_django, monkeypatch)


def test_failing_view_gives_one_unhandled_django_event(app: Harness) -> None:
    response = app.get("/orders/17/boom/")
    assert response.status_code == 500
    (event,) = app.events()
    _assert_unhandled_on_the_request_span(app, event)
    assert event["request"]["url"] == "http://testserver/orders/17/boom/"
    assert event["request"]["method"] == "GET"
    assert event["transaction"] == "/orders/{order_id}/boom/"


def _assert_unhandled_on_the_request_span(app: Harness, event: dict[str, Any]) -> None:
    span = app.server_span()
    assert event["contexts"]["trace"]["trace_id"] == format(span.context.trace_id, "032x")
    assert event["contexts"]["trace"]["span_id"] == format(span.context.span_id, "016x")
    main = event["exception"]["values"][-1]
    assert main["type"] == "OrderLookupError"
    assert main["mechanism"] == {"type": "django", "handled": False}


def test_exception_is_recorded_once_on_the_span(app: Harness) -> None:
    app.get("/boom/")
    app.events()
    exception_events = [e for e in app.server_span().events if e.name == "exception"]
    assert len(exception_events) == 1  # the instrumentation's; our hook only annotated it


def test_request_carries_the_event_id_sent_to_sentry(app: Harness) -> None:
    response = app.get("/boom/")
    (event,) = app.events()
    assert response.wsgi_request.sentry_event_id == event["event_id"]
    assert "X-Sentry-Event-Id" not in response  # off by default


def test_response_header_when_enabled(
    instrumented_django: InstrumentedDjango, monkeypatch: pytest.MonkeyPatch
) -> None:
    for harness in _harness(instrumented_django, monkeypatch, response_header=True):
        response = harness.get("/boom/")
        (event,) = harness.events()
        assert response["X-Sentry-Event-Id"] == event["event_id"]


def test_logger_exception_gives_a_handled_logging_event(app: Harness) -> None:
    assert app.get("/log-exception/").status_code == 200
    (event,) = app.events()
    assert event["logger"] == "shop.views"
    assert event["level"] == "error"
    assert event["logentry"] == {
        "message": "could not load order %s",
        "params": ["18"],
        "formatted": "could not load order 18",
    }
    main = event["exception"]["values"][-1]
    assert main["mechanism"] == {"type": "logging", "handled": True}
    assert [v["type"] for v in event["exception"]["values"]] == ["KeyError", "OrderLookupError"]


def test_logger_error_without_exception_gives_a_message_event(app: Harness) -> None:
    app.get("/log-error/")
    (event,) = app.events()
    assert "exception" not in event
    assert event["level"] == "error"
    assert event["logentry"]["formatted"] == "payment gateway answered 502 for order 19"
    assert event["logentry"]["message"] == "payment gateway answered %s for order %s"
    assert event["contexts"]["trace"]["trace_id"] == format(
        app.server_span().context.trace_id, "032x"
    )


def test_info_and_warning_become_breadcrumbs_of_the_error(app: Harness) -> None:
    app.get("/breadcrumbs/")
    (event,) = app.events()
    crumbs = event["breadcrumbs"]["values"]
    assert [(c["level"], c["message"]) for c in crumbs] == [
        ("info", "step one: cart loaded"),
        ("warning", "step two: stock is low for sku-1"),
    ]
    assert all(c["category"] == "shop.views" for c in crumbs)
    log_events = [e for e in app.server_span().events if e.name == "log"]
    assert len(log_events) == 2  # also visible in Jaeger


@pytest.mark.parametrize("path", ["/not-found/", "/forbidden/"])
def test_client_errors_give_no_event(app: Harness, path: str) -> None:
    assert app.get(path).status_code in (403, 404)
    assert app.events() == []


def test_an_error_raised_while_a_response_streams_is_one_event_of_the_request(
    app: Harness,
) -> None:
    from tests.djangoapp.views import OrderLookupError

    response = app.get("/export/")
    assert response.status_code == 200  # the view returned; the failure comes mid-stream
    with pytest.raises(OrderLookupError):
        b"".join(response.streaming_content)
    (event,) = app.events()
    _assert_unhandled_on_the_request_span(app, event)
    assert event["transaction"] == "/export/"
    # probe 2026-12-05: "custom" and "function", although the ids are the request's span's
    assert event["transaction_info"] == {"source": "route"}
    assert event["contexts"]["trace"]["op"] == "http.server"
    assert event["request"]["url"] == "http://testserver/export/"


def test_a_stream_closed_before_it_fails_passes_through_without_an_event(app: Harness) -> None:
    response = app.get("/export/")
    assert next(iter(response.streaming_content)) == b"order,total\n"
    response.close()
    assert app.events() == []


def test_configured_ignored_exception_gives_no_event(
    instrumented_django: InstrumentedDjango, monkeypatch: pytest.MonkeyPatch
) -> None:
    ignored = ("tests.djangoapp.views.OrderLookupError",)
    for harness in _harness(instrumented_django, monkeypatch, ignored_exceptions=ignored):
        assert harness.get("/boom/").status_code == 500
        assert harness.events() == []


def test_sampled_out_request_still_reaches_sentry(app: Harness) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    app.get("/boom/", HTTP_TRACEPARENT=f"00-{trace_id}-00f067aa0ba902b7-00")
    assert app.django.exporter.get_finished_spans() == ()  # nothing recorded
    (event,) = app.events()
    assert event["contexts"]["trace"]["trace_id"] == trace_id
    assert len(event["contexts"]["trace"]["span_id"]) == 16
    assert event["exception"]["values"][-1]["type"] == "OrderLookupError"
    assert event["request"]["url"].endswith("/boom/")
    assert event["transaction"] == "/boom/"


@pytest.mark.parametrize("sampled", ["01", "00"], ids=["sampled", "sampled-out"])
def test_errors_alike_in_one_trace_are_each_reported(app: Harness, sampled: str) -> None:
    # Three failures of one request that share a log template and an exception signature:
    # six errors, not one per template.
    trace_id = f"6bf92f3577b34da6a3ce929d0e0e47{sampled}"
    app.get("/batch/", HTTP_TRACEPARENT=f"00-{trace_id}-00f067aa0ba902b7-{sampled}")
    events = app.events()
    logged = sorted(e["logentry"]["formatted"] for e in events)
    assert logged == [f"could not load order {n}" for n in (31, 32, 33)] + [
        f"skipped item {n}" for n in (31, 32, 33)
    ]
    assert len({e["event_id"] for e in events}) == 6
    assert {e["contexts"]["trace"]["trace_id"] for e in events} == {trace_id}


@pytest.mark.parametrize("sampled", ["01", "00"], ids=["sampled", "sampled-out"])
def test_two_requests_of_one_trace_failing_alike_are_two_events(app: Harness, sampled: str) -> None:
    # e.g. a client retrying with the same traceparent: each request's error is its own
    trace_id = f"7bf92f3577b34da6a3ce929d0e0e47{sampled}"
    ids = []
    for _ in range(2):
        response = app.get("/boom/", HTTP_TRACEPARENT=f"00-{trace_id}-00f067aa0ba902b7-{sampled}")
        assert response.status_code == 500
        ids.append(response.wsgi_request.sentry_event_id)
    assert sorted(e["event_id"] for e in app.events()) == sorted(ids)


def test_sampled_out_logged_error_keeps_the_request(app: Harness) -> None:
    trace_id = "8bf92f3577b34da6a3ce929d0e0e4736"
    app.get("/log-error/?page=2", HTTP_TRACEPARENT=f"00-{trace_id}-00f067aa0ba902b7-00")
    (event,) = app.events()
    assert event["contexts"]["trace"]["trace_id"] == trace_id
    assert event["request"]["url"] == "http://testserver/log-error/"
    assert event["request"]["query_string"] == "page=2"
    assert event["transaction"] == "/log-error/"


def test_logged_error_takes_the_request_from_django(app: Harness) -> None:
    # Django's request, not the span's attributes (under the stable HTTP conventions the span
    # has no url.path): URL, query and headers as for an unhandled error.
    app.get("/log-error/?page=3", HTTP_USER_AGENT="shop-app/2.1")
    (event,) = app.events()
    assert event["request"]["url"] == "http://testserver/log-error/"
    assert event["request"]["query_string"] == "page=3"
    assert event["request"]["headers"]["User-Agent"] == "shop-app/2.1"


def test_sampled_out_logged_error_keeps_breadcrumbs(app: Harness) -> None:
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4736"
    app.get("/breadcrumbs/", HTTP_TRACEPARENT=f"00-{trace_id}-00f067aa0ba902b7-00")
    (event,) = app.events()
    assert event["contexts"]["trace"]["trace_id"] == trace_id
    assert [c["message"] for c in event["breadcrumbs"]["values"]][-1].startswith("step two")


def test_exception_survives_two_hundred_log_events_on_the_span(app: Harness) -> None:
    app.get("/many-logs/")
    (event,) = app.events()
    assert event["exception"]["values"][-1]["type"] == "OrderLookupError"
    span = app.server_span()
    assert any(e.name == "exception" for e in span.events)
    assert sum(e.name == "log" for e in span.events) <= 64
    assert len(event["breadcrumbs"]["values"]) == 100  # Sentry's limit, newest kept
    assert event["breadcrumbs"]["values"][-1]["message"] == "noise 199"


def test_unserialisable_extra_does_not_break_logging(app: Harness) -> None:
    assert app.get("/unserialisable-extra/").status_code == 200
    (event,) = app.events()
    assert set(event["extra"]) >= {"opaque", "cycle", "raw"}
    assert event["extra"]["opaque"].startswith("<Opaque")  # its repr raised


def test_local_variables_go_to_sentry_only(
    instrumented_django: InstrumentedDjango, monkeypatch: pytest.MonkeyPatch
) -> None:
    for harness in _harness(instrumented_django, monkeypatch, include_local_variables=True):
        harness.get("/boom/")
        (event,) = harness.events()
        frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
        find_order = next(f for f in frames if f["function"] == "_find_order")
        assert find_order["vars"]["order_id"] == 17
        allowed = {"exception.type", "exception.message", "exception.stacktrace"}
        allowed |= {"exception.escaped"}
        for span_event in harness.server_span().events:
            # OTel's own keys only: nothing of the frame locals travels to the tracing backend
            assert set(span_event.attributes) <= allowed


def test_without_pii_no_user_no_cookies_no_private_headers(app: Harness) -> None:
    app.client.cookies["sessionid"] = "abc"
    app.get("/boom/", HTTP_X_PRIVATE="x", HTTP_USER_AGENT="pytest")
    (event,) = app.events()
    assert "user" not in event
    assert "cookies" not in event["request"]
    assert event["request"]["headers"].get("User-Agent") == "pytest"
    assert "X-Private" not in event["request"]["headers"]
    assert "Cookie" not in event["request"]["headers"]


def test_logged_copy_of_a_signal_captured_exception_is_not_sent_again(app: Harness) -> None:
    # django.request logs every 500 with exc_info; route it through our handler too.
    handler = SpanEventHandler(settings=app.processor.settings)
    request_logger = logging.getLogger("django.request")
    request_logger.addHandler(handler)
    try:
        app.get("/boom/")
    finally:
        request_logger.removeHandler(handler)
    (event,) = app.events()
    assert event["exception"]["values"][-1]["mechanism"]["type"] == "django"


def test_with_pii_the_event_names_the_user_and_keeps_cookies(
    instrumented_django: InstrumentedDjango, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(username="ada", defaults={"email": "ada@example.com"})
    for harness in _harness(instrumented_django, monkeypatch, send_default_pii=True):
        harness.client.force_login(user)
        harness.client.cookies["theme"] = "dark"
        harness.get("/boom/", HTTP_X_CUSTOM="kept", HTTP_AUTHORIZATION="Bearer abc")
        (event,) = harness.events()
        assert event["user"]["id"] == str(user.pk)
        assert event["user"]["username"] == "ada"
        assert event["user"]["email"] == "ada@example.com"
        request = event["request"]
        assert request["cookies"]["theme"] == "dark"
        assert request["cookies"]["sessionid"] == "[Filtered]"
        assert request["headers"]["X-Custom"] == "kept"
        assert request["headers"]["Authorization"] == "[Filtered]"
        assert request["env"]["REMOTE_ADDR"] == "127.0.0.1"


def test_a_5xx_response_the_view_chose_is_not_an_event(app: Harness) -> None:
    handler = SpanEventHandler(settings=app.processor.settings)
    request_logger = logging.getLogger("django.request")
    request_logger.addHandler(handler)
    try:
        assert app.get("/unavailable/").status_code == 503  # django.request logs it at ERROR
    finally:
        request_logger.removeHandler(handler)
    assert app.events() == []


def test_secrets_are_scrubbed_before_sending(
    instrumented_django: InstrumentedDjango, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {"send_default_pii": True, "include_local_variables": True, "denylist": ("q",)}
    for harness in _harness(instrumented_django, monkeypatch, **options):
        harness.client.cookies["csrftoken"] = "cookie-value-zq"
        harness.get("/boom/?token=token-value-zq&page=2&q=private", HTTP_X_API_KEY="key-value-zq")
        (event,) = harness.events()
        request = event["request"]
        assert request["query_string"] == "token=[Filtered]&page=2&q=[Filtered]"
        assert request["headers"]["X-Api-Key"] == "[Filtered]"
        assert request["cookies"]["csrftoken"] == "[Filtered]"
        assert "value-zq" not in str(event)  # not in any other place either


def test_an_async_stream_failing_mid_way_is_reported_too(app: Harness) -> None:
    import asyncio

    from django.http import StreamingHttpResponse
    from django.test import RequestFactory

    from otel_sentry_bridge.capture.django_middleware import SentryEventIdMiddleware
    from tests.djangoapp.views import OrderLookupError, _find_order

    async def rows() -> AsyncIterator[bytes]:
        yield b"order,total\n"
        _find_order(41)

    async def view(request: Any) -> StreamingHttpResponse:
        return StreamingHttpResponse(rows())

    async def consume() -> None:
        request = RequestFactory().get("/async-export/")
        response = await SentryEventIdMiddleware(view)(request)
        async for _chunk in response.streaming_content:
            pass

    with pytest.raises(OrderLookupError):
        asyncio.run(consume())
    (event,) = app.events()
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "django", "handled": False}
    assert event["request"]["url"] == "http://testserver/async-export/"


# -- the request body (request.data) ---------------------------------------------------------

PLANTED = "planted-zq"


@pytest.fixture
def small_bodies(
    instrumented_django: InstrumentedDjango, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    yield from _harness(instrumented_django, monkeypatch, max_request_body_size="small")


def _post_json(app: Harness, path: str, body: Any) -> Any:
    return app.client.post(path, json.dumps(body), content_type="application/json")


def test_a_json_body_is_sent_as_data(app: Harness) -> None:
    body = {"order": 17, "lines": [{"sku": "kb-1", "qty": 2}], "note": "gift"}
    assert _post_json(app, "/boom/", body).status_code == 500
    (event,) = app.events()
    assert event["request"]["method"] == "POST"
    assert event["request"]["data"] == body
    assert event["request"]["headers"]["Content-Type"] == "application/json"


def test_secrets_in_a_json_body_are_filtered_by_key(
    instrumented_django: InstrumentedDjango, monkeypatch: pytest.MonkeyPatch
) -> None:
    for harness in _harness(instrumented_django, monkeypatch, denylist=("iban",)):
        body = {
            "user": "bob",
            "password": PLANTED,
            "card": {"number": "4111", "api_key": PLANTED},
            "payout": {"iban": PLANTED},
            "comment": f"token={PLANTED}",
        }
        _post_json(harness, "/boom/", body)
        (event,) = harness.events()
        assert event["request"]["data"] == {
            "user": "bob",
            "password": "[Filtered]",
            "card": {"number": "4111", "api_key": "[Filtered]"},
            "payout": {"iban": "[Filtered]"},
            "comment": "token=[Filtered]",
        }
        assert PLANTED not in json.dumps(event)


def test_a_urlencoded_form_is_sent_as_its_fields_with_passwords_filtered(app: Harness) -> None:
    app.client.post(
        "/boom/",
        f"name=bob&password={PLANTED}&tag=a&tag=b",
        content_type="application/x-www-form-urlencoded",
    )
    (event,) = app.events()
    assert event["request"]["data"] == {
        "name": "bob",
        "password": "[Filtered]",
        "tag": ["a", "b"],
    }
    assert PLANTED not in json.dumps(event)


def test_a_multipart_form_is_sent_with_files_as_their_size_only(app: Harness) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("passport-of-bob.pdf", b"%PDF-1.4 " + PLANTED.encode())
    app.client.post("/boom/", {"name": "bob", "password": PLANTED, "scan": upload})
    (event,) = app.events()
    assert event["request"]["data"] == {
        "name": "bob",
        "password": "[Filtered]",
        "scan": f"[file of {9 + len(PLANTED)} bytes]",
    }
    assert PLANTED not in json.dumps(event)
    assert "passport" not in json.dumps(event)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (f"order 17\ntoken={PLANTED}\n", "text/plain"),
        (f"<login><user>bob</user><password>{PLANTED}</password></login>", "application/xml"),
        (f'{{"creds": {{"password": ["{PLANTED}"]}}, "auth": "{PLANTED}"}}', "text/plain"),
        (f'{{"password": "{PLANTED}", broken', "application/json"),
        ((PLANTED.encode() + bytes(range(256))) * 4, "application/octet-stream"),
    ],
    ids=["text", "xml", "json-as-text", "invalid-json", "binary"],
)
def test_a_body_that_cannot_be_scrubbed_by_key_is_not_sent(
    app: Harness, body: str | bytes, content_type: str
) -> None:
    """Only JSON and forms are read field by field; anything else is noted, not sent (as
    sentry-sdk): a secret in free-form text has no key to be found by."""
    app.client.post("/boom/", body, content_type=content_type)
    (event,) = app.events()
    size = len(body.encode() if isinstance(body, str) else body)
    assert event["request"]["data"] == f"[raw request body of {size} bytes not sent]"
    assert PLANTED not in json.dumps(event)


def test_a_body_over_the_size_is_not_sent_but_noted(app: Harness) -> None:
    body = {"rows": ["x" * 100] * 100}  # about 10,500 bytes: over "medium" (10,000)
    size = len(json.dumps(body))
    assert size > 10_000
    _post_json(app, "/boom/", body)
    (event,) = app.events()
    assert event["request"]["data"] == (
        f"[request body of {size} bytes not sent: over the medium limit of 10000 bytes]"
    )


def test_small_sends_a_thousand_bytes_and_no_more(small_bodies: Harness) -> None:
    fits = {"text": "x" * (1000 - len('{"text": ""}'))}
    assert len(json.dumps(fits)) == 1000
    _post_json(small_bodies, "/boom/", fits)
    _post_json(small_bodies, "/boom/", {"text": "x" * 1000})
    over, fitting = sorted((e["request"]["data"] for e in small_bodies.events()), key=str)
    assert over == "[request body of 1012 bytes not sent: over the small limit of 1000 bytes]"
    # Sent, and bounded as local variables are: 256 characters per string.
    assert fitting == {"text": "x" * 253 + "..."}


def test_never_sends_no_body(
    instrumented_django: InstrumentedDjango, monkeypatch: pytest.MonkeyPatch
) -> None:
    for harness in _harness(instrumented_django, monkeypatch, max_request_body_size="never"):
        _post_json(harness, "/boom/", {"order": 17})
        harness.client.post("/boom/", {"name": "bob"})
        harness.client.post("/read-body/", '{"order": 22}', content_type="application/json")
        events = harness.events()
        assert len(events) == 3
        for event in events:
            assert event["request"]["method"] == "POST"
            assert "data" not in event["request"]


def test_a_body_the_view_read_itself_is_reported_the_same(app: Harness) -> None:
    from tests.djangoapp.views import BODIES_READ

    BODIES_READ.clear()
    body = {"order": 22, "coupon": "SPRING"}
    assert _post_json(app, "/read-body/", body).status_code == 500
    (event,) = app.events()
    assert [json.dumps(body).encode()] == BODIES_READ
    assert event["request"]["data"] == body
    assert event["exception"]["values"][-1]["type"] == "OrderLookupError"


def test_a_form_body_the_view_read_as_bytes_is_reported_as_its_fields(app: Harness) -> None:
    from tests.djangoapp.views import BODIES_READ

    BODIES_READ.clear()
    body = f"name=bob&password={PLANTED}"
    app.client.post("/read-body/", body, content_type="application/x-www-form-urlencoded")
    (event,) = app.events()
    assert [body.encode()] == BODIES_READ
    assert event["exception"]["values"][-1]["type"] == "JSONDecodeError"  # it expected JSON
    assert event["request"]["data"] == {"name": "bob", "password": "[Filtered]"}


def test_a_stream_the_view_started_reading_is_not_read_again(app: Harness) -> None:
    from tests.djangoapp.views import BODIES_READ

    BODIES_READ.clear()
    assert _post_json(app, "/read-stream/", {"order": 23}).status_code == 500
    (event,) = app.events()
    assert BODIES_READ == [b'{"or']  # what the view read, untouched by the hook
    assert "data" not in event["request"]
    assert event["exception"]["values"][-1]["type"] == "OrderLookupError"


def test_a_log_capture_inside_the_view_never_reads_the_body_the_view_still_needs(
    app: Harness,
) -> None:
    from tests.djangoapp.views import BODIES_READ

    BODIES_READ.clear()
    response = _post_json(app, "/log-then-read-body/", {"order": 24})
    assert response.status_code == 200
    assert response.content == b'{"order": 24}'  # the view read the whole body after the log
    (event,) = app.events()
    assert event["logentry"]["formatted"] == "about to read the body of order 24"
    assert "data" not in event["request"]  # not read yet when the error was logged


def test_a_stream_failing_after_the_view_returned_never_reads_the_body(app: Harness) -> None:
    from tests.djangoapp.views import OrderLookupError

    response = _post_json(app, "/export/", {"order": 40})
    with pytest.raises(OrderLookupError):
        b"".join(response.streaming_content)
    (event,) = app.events()
    assert event["request"]["method"] == "POST"
    assert "data" not in event["request"]  # the view never read it; the stream may still
    assert not response.wsgi_request._read_started


def test_a_get_request_has_no_data(app: Harness) -> None:
    app.get("/boom/")
    (event,) = app.events()
    assert "data" not in event["request"]


# -- template frames -------------------------------------------------------------------------


def _template_path(name: str) -> str:
    from pathlib import Path

    import tests.djangoapp

    return str(Path(tests.djangoapp.__file__).resolve().parent / "templates" / name)


def test_a_template_syntax_error_has_the_template_line_as_its_innermost_frame(
    app: Harness,
) -> None:
    assert app.get("/broken-template/").status_code == 500
    (event,) = app.events()
    main = event["exception"]["values"][-1]
    assert main["type"] == "TemplateSyntaxError"
    assert main["mechanism"] == {"type": "django", "handled": False}
    frames = main["stacktrace"]["frames"]
    assert frames[-1] == broken_template_frame(_template_path("broken.html"))
    # Below it, the Python frames of the view that rendered it.
    assert any(f["function"] == "broken_template" for f in frames[:-1])


def test_a_template_line_calling_failing_code_sits_above_that_code(app: Harness) -> None:
    assert app.get("/template-calls-failing-code/").status_code == 500
    (event,) = app.events()
    main = event["exception"]["values"][-1]
    assert main["type"] == "OrderLookupError"
    functions = [f["function"] for f in main["stacktrace"]["frames"]]
    template = functions.index("<template>")
    # view -> Django's renderer -> the template line -> the property it read -> the helper
    assert functions.index("template_calls_failing_code") < template
    assert functions[template + 1 :] == ["total", "_find_order"]
    frame = main["stacktrace"]["frames"][template]
    assert frame["filename"] == _template_path("order_total.html")
    assert frame["lineno"] == 2
    assert frame["context_line"] == "<p>Total: {{ order.total }}</p>"
    assert frame["pre_context"] == ["<h1>Order {{ order.id }}</h1>"]
    assert frame["post_context"] == ["<p>thanks</p>"]


def test_an_error_outside_templates_has_no_template_frame(app: Harness) -> None:
    app.get("/boom/")
    (event,) = app.events()
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert all(f["function"] != "<template>" for f in frames)


def test_under_asgi_the_body_is_read_from_its_spooled_file_too(app: Harness) -> None:
    import asyncio

    from django.test import AsyncClient

    async def post() -> Any:
        client = AsyncClient(raise_request_exception=False)
        return await client.post(
            "/read-body/", json.dumps({"order": 22}), content_type="application/json"
        )

    async def post_unread() -> Any:
        client = AsyncClient(raise_request_exception=False)
        return await client.post(
            "/boom/", json.dumps({"order": 17}), content_type="application/json"
        )

    assert asyncio.run(post()).status_code == 500
    assert asyncio.run(post_unread()).status_code == 500
    events = app.events()
    assert sorted(e["request"]["data"]["order"] for e in events) == [17, 22]

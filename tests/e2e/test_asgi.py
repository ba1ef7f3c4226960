"""Django under a real uvicorn (ASGI): the same Sentry events, with the same trace context, as
under WSGI, for plain and ``async def`` views.

Each mode is one uvicorn subprocess for the module: errors go to a loopback Sentry receiver
(every event checked by sentry-relay), spans to a loopback OTLP receiver, and every event's
``contexts.trace`` must name a span that really was exported for that request.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.processes import (
    BIN,
    SHOP,
    ServerProcess,
    base_env,
    free_port,
    get,
    shop_env,
)
from tests.support.receiver import SentryReceiver

pytestmark = pytest.mark.e2e

# How the application gets its OpenTelemetry setup, and which span owns the request:
# "server" when the Django span is the SERVER span, "child" when the OTel ASGI middleware
# makes the SERVER span and the Django span (where exceptions are recorded) is its child.
MODES = {
    # `opentelemetry-instrument uvicorn ...`: no OTel code in the application at all.
    "zero-code": ("tests.djangoapp.asgi:application", {}, "server"),
    # TracerProvider + DjangoInstrumentor in code, as in tests/djangoapp/otel_asgi.py.
    "by-hand": ("tests.djangoapp.otel_asgi:application", {}, "server"),
    # The same, wrapped in opentelemetry-instrumentation-asgi's OpenTelemetryMiddleware.
    "asgi-middleware": (
        "tests.djangoapp.otel_asgi:application",
        {"TEST_ASGI_MIDDLEWARE": "1"},
        "child",
    ),
}
KINDS = {"sync": "", "async": "async/"}  # URL prefix of the plain / `async def` views
_MARKER = "payment gateway answered %s for order %s"  # the /log-error/ view's message


def _require_uvicorn() -> None:
    if (BIN / "uvicorn").exists() and shutil.which("opentelemetry-instrument", path=str(BIN)):
        return
    reason = "uvicorn is not installed: pip install -e '.[dev]'"
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on"):
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class AsgiApp:
    mode: str
    base: str
    span_role: str  # "server" or "child", see MODES
    receiver: SentryReceiver
    otlp: OtlpReceiver
    process: ServerProcess
    seen: int = 0  # events received before the current test began

    def events_until_marker(self) -> list[dict[str, Any]]:
        """The current test's events: the marker (a logged error without an exception) is
        requested last, and the queue is FIFO, so once it is in, so is all before it."""
        start = self.seen
        assert get(f"{self.base}/log-error/") == 200
        wanted = start + 1
        while True:
            events = self.receiver.wait_for_events(wanted, timeout=20)
            if events[-1].get("logentry", {}).get("message") == _MARKER:
                return events[start:-1]
            wanted = len(events) + 1

    def request_span(self, event: dict[str, Any]) -> ReceivedSpan:
        """The exported span named by the event's ``contexts.trace``, checked to be the span
        of the request: the SERVER span itself, or (ASGI middleware) its direct child."""
        trace = event["contexts"]["trace"]
        (span,) = self.otlp.wait_for_spans(
            lambda s: s.trace_id == trace["trace_id"] and s.span_id == trace["span_id"]
        )
        (server,) = self.otlp.wait_for_spans(
            lambda s: s.trace_id == trace["trace_id"] and s.kind == "SERVER"
        )
        if self.span_role == "server":
            assert span == server
        else:
            assert span.parent_span_id == server.span_id
            assert trace.get("parent_span_id") == server.span_id
        return span


@pytest.fixture(scope="module", params=list(MODES))
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AsgiApp]:
    _require_uvicorn()
    mode: str = request.param
    target, extra_env, span_role = MODES[mode]
    with SentryReceiver() as receiver, OtlpReceiver() as otlp:
        env = base_env(
            SENTRY_DSN=receiver.dsn,
            OTEL_SENTRY_RESPONSE_HEADER="true",
            OTEL_SERVICE_NAME="asgi-shop",
            DJANGO_SETTINGS_MODULE="tests.djangoapp.asgi_settings",
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=otlp.traces_endpoint,
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_BSP_SCHEDULE_DELAY="100",
            **extra_env,
        )
        port = free_port()
        uvicorn = [str(BIN / "uvicorn"), target, "--host", "127.0.0.1", "--port", str(port)]
        if mode == "zero-code":
            uvicorn = [str(BIN / "opentelemetry-instrument"), *uvicorn]
        log = tmp_path_factory.mktemp(f"uvicorn-{mode}") / "uvicorn.log"
        process = ServerProcess(uvicorn, env, log)
        base = f"http://127.0.0.1:{port}"
        try:
            process.wait_http(f"{base}/ok/", timeout=60)
            yield AsgiApp(mode, base, span_role, receiver, otlp, process)
        finally:
            process.stop()
        assert not receiver.invalid, receiver.invalid
        assert "Traceback" not in _outside_django_request_logs(process.output())


@pytest.fixture
def app(server: AsgiApp) -> AsgiApp:
    """The module's server, its event count taken before the test sends anything (the
    previous test waited for its own marker, so none of its events is still on the way)."""
    server.seen = len(server.receiver.events)
    return server


def _outside_django_request_logs(output: str) -> str:
    """The server's output minus Django's own "Internal Server Error" reports, the views'
    own ``log.exception`` (expected; printed bare by Python's last-resort handler where no
    logging is configured) and uvicorn's report of the stream that fails on purpose: any
    traceback left is the bridge or the server failing."""
    kept, skipping = [], False
    for line in output.splitlines():
        if line.startswith(
            (
                "ERROR:django.request:",
                "ERROR:shop.views:",
                "could not load order",
                "ERROR:    Exception in ASGI application",  # a stream that failed: expected
            )
        ):
            skipping = True
        elif line.startswith(("INFO:", "WARNING:", "ERROR:")):
            skipping = False
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def _fetch(url: str) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), dict(response.headers)
    except urllib.error.HTTPError as error:
        return int(error.code), dict(error.headers)


def _main_exception(event: dict[str, Any]) -> dict[str, Any]:
    return dict(event["exception"]["values"][-1])


@pytest.mark.parametrize("kind", list(KINDS))
def test_unhandled_exception_is_one_django_event_on_the_request_span(
    app: AsgiApp, kind: str
) -> None:
    path = f"/{KINDS[kind]}boom/"
    status, headers = _fetch(app.base + path)
    assert status == 500
    (event,) = app.events_until_marker()
    main = _main_exception(event)
    assert main["type"] == "OrderLookupError"
    assert main["mechanism"] == {"type": "django", "handled": False}
    assert [v["type"] for v in event["exception"]["values"]] == ["KeyError", "OrderLookupError"]
    assert event["request"]["url"] == app.base + path
    assert event["request"]["method"] == "GET"
    assert event["transaction"] == path
    assert headers.get("X-Sentry-Event-Id") == event["event_id"]
    span = app.request_span(event)
    assert span.attributes.get("http.route") == path.lstrip("/")
    assert span.status_code == "ERROR"
    (recorded,) = [e for e in span.events if e.name == "exception"]  # once, not twice
    assert recorded.attributes["exception.type"] == "tests.djangoapp.views.OrderLookupError"
    in_app = [f["function"] for f in main["stacktrace"]["frames"] if f.get("in_app")]
    assert in_app[-2:] == ["boom", "_find_order"]


def test_a_response_that_fails_mid_stream_is_one_event_of_the_request(app: AsgiApp) -> None:
    """The middleware captures it and re-raises it; uvicorn then logs it ("Exception in ASGI
    application"), outside the request's span: the same exception, not a second event
    (probe 2026-12-05: one with a trace of its own)."""
    request = urllib.request.Request(app.base + "/export/")
    with (
        contextlib.suppress(OSError, http.client.HTTPException),
        urllib.request.urlopen(request, timeout=10) as response,
    ):
        response.read()
    (event,) = app.events_until_marker()
    assert _main_exception(event)["mechanism"] == {"type": "django", "handled": False}
    assert event["transaction"] == "/export/"
    assert event["request"]["url"] == app.base + "/export/"


@pytest.mark.parametrize("kind", list(KINDS))
def test_logged_exception_is_one_event_on_the_request_trace(app: AsgiApp, kind: str) -> None:
    path = f"/{KINDS[kind]}log-exception/"
    assert get(app.base + path) == 200
    (event,) = app.events_until_marker()
    main = _main_exception(event)
    assert main["type"] == "OrderLookupError"
    assert main["mechanism"] == {"type": "logging", "handled": True}
    assert event["logger"] == "shop.views"
    assert event["request"]["url"] == app.base + path
    assert event["request"]["method"] == "GET"
    span = app.request_span(event)
    assert span.attributes.get("http.route") == path.lstrip("/")
    assert [e.name for e in span.events] == ["exception"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_successful_request_sends_nothing(app: AsgiApp, kind: str) -> None:
    path = f"/{KINDS[kind]}ok/"
    status, headers = _fetch(app.base + path)
    assert status == 200
    assert "X-Sentry-Event-Id" not in headers
    assert app.events_until_marker() == []
    # The request was traced (so "no event" is not "nothing ran"), without error.
    spans = app.otlp.wait_for_spans(lambda s: s.attributes.get("http.route") == path.lstrip("/"))
    assert all(s.status_code != "ERROR" and not s.events for s in spans)


def test_concurrent_async_requests_keep_their_own_trace_and_breadcrumbs(app: AsgiApp) -> None:
    """Async views of concurrent requests interleave on the event loop's one thread: each
    event must still carry its own request's span, URL and log lines."""
    carts = [str(n) for n in range(8)]
    with ThreadPoolExecutor(len(carts)) as pool:
        statuses = list(pool.map(lambda n: get(f"{app.base}/async/breadcrumbs/?n={n}"), carts))
    assert statuses == [500] * len(carts)
    events = app.events_until_marker()
    by_cart = {e["request"]["query_string"]: e for e in events}
    assert sorted(by_cart) == sorted(f"n={n}" for n in carts) and len(events) == len(carts)
    for query, event in by_cart.items():
        n = query.removeprefix("n=")
        assert _main_exception(event)["value"] == f"order of cart {n} not found"
        crumbs = [c["message"] for c in event["breadcrumbs"]["values"]]
        assert crumbs[-2:] == [f"cart {n} loaded", f"stock is low for cart {n}"], crumbs
        assert {m for c in crumbs for m in re.findall(r"cart (\d+)", c)} == {n}, crumbs
        app.request_span(event)


def test_without_the_asgi_instrumentation_errors_still_arrive_with_a_warning(
    tmp_path_factory: pytest.TempPathFactory, sentry_receiver: SentryReceiver
) -> None:
    """opentelemetry-instrumentation-django traces ASGI requests only when
    opentelemetry-instrumentation-asgi is importable: without it, errors still reach Sentry
    and the log says, once, which package is missing."""
    _require_uvicorn()
    port = free_port()
    env = base_env(
        SENTRY_DSN=sentry_receiver.dsn,
        DJANGO_SETTINGS_MODULE="tests.djangoapp.asgi_settings",
        TEST_HIDE_ASGI_INSTRUMENTATION="1",
    )
    log = tmp_path_factory.mktemp("uvicorn-no-asgi") / "uvicorn.log"
    process = ServerProcess(
        [
            str(BIN / "uvicorn"),
            "tests.djangoapp.otel_asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env,
        log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        process.wait_http(f"{base}/ok/", timeout=60)
        assert get(f"{base}/boom/") == 500
        assert get(f"{base}/async/boom/") == 500
        events = sentry_receiver.wait_for_events(2, timeout=20)
    finally:
        process.stop()
    assert [e["transaction"] for e in events] == ["/boom/", "/async/boom/"]
    assert all(_main_exception(e)["mechanism"]["type"] == "django" for e in events)
    assert process.output().count("pip install opentelemetry-instrumentation-asgi") == 1


def test_example_shop_under_opentelemetry_instrument_uvicorn(
    sentry_receiver: SentryReceiver, tmp_path: Path
) -> None:
    """examples/README.md's ASGI line, as a user runs it."""
    _require_uvicorn()
    port = free_port()
    with OtlpReceiver() as otlp:
        env = shop_env(sentry_receiver.dsn, otlp.traces_endpoint)
        process = ServerProcess(
            [
                str(BIN / "opentelemetry-instrument"),
                str(BIN / "uvicorn"),
                "shop.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env,
            tmp_path / "uvicorn.log",
            cwd=SHOP,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            process.wait_http(f"{base}/healthz/", timeout=60)
            assert get(f"{base}/orders/999/") == 500
            assert get(f"{base}/checkout/") == 502
            assert get(f"{base}/healthz/") == 200
            assert get(f"{base}/inventory/") == 500  # a sync view calling this same server
            assert get(f"{base}/missing/") == 404
            assert get(f"{base}/payment/") == 402  # last: a message event
            events = sentry_receiver.wait_for_events(4, timeout=30)
            summary = [
                (e.get("transaction"), _main_exception(e)["type"] if "exception" in e else None)
                for e in events
            ]
            assert summary == [
                ("/orders/{order_id}/", "OrderNotFound"),
                ("/checkout/", "ZeroDivisionError"),
                ("/inventory/", "HTTPError"),
                ("/payment/", None),
            ]
            recorded_as = ["exception", "exception", "exception", "log"]
            for event, recorded in zip(events, recorded_as, strict=True):
                trace = event["contexts"]["trace"]
                (span,) = otlp.wait_for_spans(
                    lambda s, t=trace: s.trace_id == t["trace_id"] and s.span_id == t["span_id"]
                )
                assert span.kind == "SERVER"
                assert recorded in [e.name for e in span.events]
        finally:
            process.stop()

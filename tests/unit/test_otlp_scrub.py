"""``convert/otlp_scrub.py``: what OpenTelemetry's own exporters send to Sentry, scrubbed.

Each leak a privacy probe found in the OTLP exports is a case here, on attributes as the
instrumentations set them and on real SDK spans and log records."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, StatusCode

from otel_sentry_bridge.convert.otlp_scrub import (
    MAX_LONG_TEXT_CHARS,
    scrub_attributes,
    scrub_log_record,
    scrub_log_records,
    scrub_span,
    scrub_spans,
)
from otel_sentry_bridge.convert.scrubber import FILTERED, MAX_TEXT_CHARS, Scrubber, scrubber_for

SECRET = "hunter2zq"
SCRUBBER = scrubber_for(())


def scrub(
    attributes: Mapping[str, Any],
    pii: bool = False,
    scrubber: Scrubber = SCRUBBER,
    **options: Any,
) -> Mapping[str, Any]:
    """scrub_attributes, checking on the way that it never touches its input."""
    before = copy.deepcopy(dict(attributes))
    out = scrub_attributes(attributes, scrubber, pii, **options)
    assert dict(attributes) == before, "scrub_attributes mutated its input"
    return out


def no_secret(value: Any) -> None:
    assert SECRET not in repr(value)


# -- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["url.full", "http.url", "http.target"])
def test_query_values_under_sensitive_names_are_filtered_in_urls(key: str) -> None:
    url = (
        f"https://shop.example/login?password={SECRET}&api_key={SECRET}&q=shoes&token={SECRET}"
        f"&access_token={SECRET}&client_secret={SECRET}&page=2"
    )
    if key == "http.target":
        url = url.removeprefix("https://shop.example")

    (value,) = scrub({key: url}).values()

    no_secret(value)
    assert value.startswith(url.partition("?")[0])  # the path is kept
    assert "q=shoes" in value and "page=2" in value
    assert value.count(FILTERED) == 5


def test_percent_encoded_names_and_fragments_are_filtered_too() -> None:
    url = f"https://shop.example/cb?api%5Fkey={SECRET}&x=1#access_token={SECRET}&state=ok"
    value = scrub({"url.full": url})["url.full"]
    no_secret(value)
    assert "x=1" in value and "state=ok" in value


def test_url_passwords_are_filtered() -> None:
    out = scrub(
        {
            "http.url": f"https://deploy:{SECRET}@api.example/v1/orders",
            "url.query": f"next=/a&password={SECRET}",
            "server.address": "api.example",
        }
    )
    no_secret(out)
    assert out["http.url"].endswith("@api.example/v1/orders")
    assert out["url.query"].startswith("next=/a&")
    assert out["server.address"] == "api.example"


# -- free text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("exception.message", f"login failed: password={SECRET}"),
        ("exception.message", f"could not connect to postgres://app:{SECRET}@db:5432/shop"),
        (
            "exception.stacktrace",
            f'Traceback (most recent call last):\nValueError: token="{SECRET}"',
        ),
        ("log.message", f"retrying with token={SECRET}"),
        ("http.user_agent", f"curl/8.0 token={SECRET}"),
        ("user_agent.original", f"bot/1.0 (api_key: {SECRET})"),
        ("app.note", f"Authorization: Bearer {SECRET}"),
        ("otel.status_description", f"secret={SECRET}"),
    ],
)
def test_secrets_in_free_text_are_filtered(key: str, text: str) -> None:
    out = scrub({key: text, "http.method": "GET"})
    no_secret(out)
    assert FILTERED in out[key]
    assert out["http.method"] == "GET"


def test_a_long_stacktrace_keeps_its_last_exception_and_stays_bounded() -> None:
    frames = "".join(
        f'  File "/app/shop/views.py", line {n}, in view\n    step()\n' for n in range(600)
    )
    text = f"Traceback (most recent call last):\n{frames}ValueError: password={SECRET}\n"
    assert len(text) > 3 * MAX_TEXT_CHARS

    out = scrub({"exception.stacktrace": text})["exception.stacktrace"]

    no_secret(out)
    assert out.endswith(f"ValueError: password={FILTERED}\n")
    assert out.count("line ") == 600  # nothing else lost

    huge = scrub({"exception.stacktrace": text * 20})["exception.stacktrace"]
    assert len(huge) <= MAX_LONG_TEXT_CHARS + 20 * len(FILTERED)
    no_secret(huge[:-100])  # cut: whatever is left of the last line is filtered or gone


def test_a_single_overlong_line_in_a_stacktrace_is_cut_not_split() -> None:
    line = "x" * (MAX_TEXT_CHARS + 50) + f" password={SECRET}\n"
    out = scrub({"exception.stacktrace": "Traceback\n" + line + "ValueError: boom\n"})
    value = out["exception.stacktrace"]
    no_secret(value)
    assert value.endswith("ValueError: boom\n")


# -- statements ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["db.statement", "db.query.text"])
def test_sql_literals_after_sensitive_names_are_filtered(key: str) -> None:
    out = scrub({key: f"SET api_token = '{SECRET}'", "db.system": "postgresql"})
    no_secret(out)
    assert out[key].startswith("SET api_token")
    assert out["db.system"] == "postgresql"


def test_sql_bind_parameters_are_kept() -> None:
    statement = "UPDATE users SET password = %s WHERE id = %s"
    attributes = {"db.statement": statement}
    assert scrub(attributes) is attributes


# -- sensitive keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [SECRET, (SECRET, "two"), 12345, 1.5, True, {"nested": SECRET}, b"raw"]
)
def test_any_value_under_a_sensitive_key_is_filtered(value: Any) -> None:
    out = scrub({"app.session_id": value, "payment.api_key": value, "http.route": "/pay"})
    assert out == {"app.session_id": FILTERED, "payment.api_key": FILTERED, "http.route": "/pay"}


def test_the_bridges_denylist_adds_words() -> None:
    attributes = {"payment.iban": "DE89370400440532013000"}
    assert scrub(attributes) is attributes
    assert scrub(attributes, scrubber=scrubber_for(("iban",))) == {"payment.iban": FILTERED}


def test_arrays_are_scrubbed_item_by_item() -> None:
    out = scrub({"app.urls": (f"https://x/?token={SECRET}", "https://x/ok"), "app.ids": (1, 2)})
    no_secret(out)
    assert out["app.urls"][1] == "https://x/ok"
    assert out["app.ids"] == (1, 2)


def test_mappings_in_values_are_scrubbed_as_attributes() -> None:
    # Log records' extended attributes and bodies may be mappings.
    out = scrub(
        {"app.ctx": {"user": "bob", "password": SECRET, "inner": {"note": f"token={SECRET}"}}}
    )
    no_secret(out)
    assert out["app.ctx"]["user"] == "bob" and out["app.ctx"]["password"] == FILTERED


# -- headers ------------------------------------------------------------------------------------


HEADERS = {
    "http.request.header.authorization": (f"Bearer {SECRET}",),
    "http.request.header.cookie": (f"sessionid={SECRET}",),
    "http.request.header.x_api_key": (SECRET,),
    "http.request.header.x_forwarded_for": ("203.0.113.9",),
    "http.request.header.x_request_id": ("r-17",),
    "http.request.header.user_agent": (f"curl/8.0 token={SECRET}",),
    "http.request.header.content-type": ("application/json",),
    "http.request.header.accept": ("*/*",),
    "http.response.header.set_cookie": (f"sessionid={SECRET}; HttpOnly",),
    "http.response.header.content_length": ("42",),
    "rpc.grpc.request.metadata.authorization": (f"Basic {SECRET}",),
}


def test_without_pii_only_the_safe_headers_are_kept_and_scrubbed() -> None:
    out = scrub(HEADERS)
    no_secret(out)
    assert set(out) == {
        "http.request.header.user_agent",
        "http.request.header.content-type",
        "http.request.header.accept",
        "http.response.header.content_length",
    }
    assert out["http.request.header.user_agent"] == (f"curl/8.0 token={FILTERED}",)
    assert out["http.request.header.accept"] is HEADERS["http.request.header.accept"]


def test_with_pii_headers_are_kept_but_credentials_are_filtered() -> None:
    out = scrub({**HEADERS, "http.request.header.x_note": (f"Bearer {SECRET}",)}, pii=True)
    no_secret(out)
    assert set(out) == set(HEADERS) | {"http.request.header.x_note"}
    for name in (
        "authorization",
        "cookie",
        "x_api_key",
    ):
        assert out[f"http.request.header.{name}"] == FILTERED
    assert out["http.response.header.set_cookie"] == FILTERED
    assert out["rpc.grpc.request.metadata.authorization"] == FILTERED
    assert out["http.request.header.x_request_id"] == ("r-17",)
    # A value that is itself a credential, whatever its header.
    assert out["http.request.header.x_note"][0].endswith(FILTERED)


# -- who the client is --------------------------------------------------------------------------


SERVER_SPAN = {
    "http.method": "GET",
    "http.route": "/orders/<int:id>/",
    "net.peer.ip": "203.0.113.9",
    "net.peer.port": 51234,
    "net.peer.name": "laptop.home.example",
    "net.sock.peer.addr": "203.0.113.9",
    "network.peer.address": "203.0.113.9",
    "network.peer.port": 51234,
    "client.address": "203.0.113.9",
    "client.port": 51234,
    "http.client_ip": "203.0.113.9",
    "enduser.id": "42",
    "user.email": "bob@example.com",
    "user.id": "42",
    "geo.country.iso_code": "DE",
    "db.query.parameter.0": "bob@example.com",
    "db.statement.parameters": "('bob@example.com',)",
    "server.address": "shop.example",
    "user_agent.original": "Mozilla/5.0",
}
CLIENT_IDENTITY = set(SERVER_SPAN) - {
    "http.method",
    "http.route",
    "server.address",
    "user_agent.original",
}


def test_without_pii_the_clients_address_and_the_user_are_removed() -> None:
    out = scrub(SERVER_SPAN)
    assert out == {
        "http.method": "GET",
        "http.route": "/orders/<int:id>/",
        "server.address": "shop.example",
        "user_agent.original": "Mozilla/5.0",
    }
    assert set(SERVER_SPAN) - set(out) == CLIENT_IDENTITY


def test_with_pii_they_are_kept() -> None:
    out = scrub(SERVER_SPAN, pii=True)
    assert set(out) == set(SERVER_SPAN)
    # Kept as they are, unless the scrubber takes the key itself as sensitive.
    for key, value in SERVER_SPAN.items():
        assert out[key] == (FILTERED if SCRUBBER.is_sensitive(key) else value), key
    for key in ("net.peer.ip", "client.address", "user.email", "enduser.id"):
        assert out[key] == SERVER_SPAN[key]


def test_on_outgoing_spans_the_peer_is_the_server_called_and_is_kept() -> None:
    attributes = {"net.peer.name": "db.internal", "net.peer.port": 5432, "client.address": "me"}
    out = scrub(attributes, peer_is_client=False)
    assert out == {"net.peer.name": "db.internal", "net.peer.port": 5432}


# -- copy-on-write and hostile values -----------------------------------------------------------


def test_nothing_to_scrub_returns_the_input_itself() -> None:
    attributes = {"http.method": "GET", "http.status_code": 200, "ok": True, "tags": ("a", "b")}
    assert scrub(attributes) is attributes


def test_a_change_copies_and_shares_the_unchanged_values() -> None:
    tags = ("a", "b")
    attributes = {"tags": tags, "log.message": f"token={SECRET}"}
    out = scrub(attributes)
    assert out is not attributes
    assert out["tags"] is tags
    assert attributes["log.message"] == f"token={SECRET}"


class Hostile:
    def __str__(self) -> str:
        raise RuntimeError("no")

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no")

    __hash__ = object.__hash__


class HostileStr(str):
    def __str__(self) -> str:
        raise RuntimeError("no")

    def lower(self) -> str:  # type: ignore[override]
        raise RuntimeError("no")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no")

    __hash__ = str.__hash__


class BrokenMapping(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("no")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("no")

    def __len__(self) -> int:
        return 1


def test_hostile_values_never_raise_and_are_filtered_or_dropped() -> None:
    nested: list[Any] = []
    nested.append(nested)  # nesting without end
    attributes: dict[Any, Any] = {
        "a.object": Hostile(),
        "a.bytes": f"token={SECRET}".encode(),
        "a.text": HostileStr(f"token={SECRET}"),
        "a.mapping": BrokenMapping(),
        "a.loop": nested,
        7: SECRET,
        HostileStr("a.key"): SECRET,
        "a.fine": "kept",
    }
    out = scrub_attributes(attributes, SCRUBBER, False)
    no_secret({k: v for k, v in out.items() if k != "a.loop"})
    assert out["a.object"] == FILTERED
    assert out["a.bytes"] == FILTERED
    assert out["a.text"] == f"token={FILTERED}" and type(out["a.text"]) is str
    assert out["a.mapping"] == {}
    assert 7 not in out and "a.key" not in out
    assert out["a.fine"] == "kept"
    depth = 0
    loop = out["a.loop"]
    while isinstance(loop, tuple):
        loop, depth = loop[0], depth + 1
    assert loop == FILTERED and depth < 20


def test_a_mapping_that_cannot_be_read_sends_nothing() -> None:
    assert scrub_attributes(BrokenMapping(), SCRUBBER, False) == {}
    assert scrub_attributes(None, SCRUBBER, False) == {}  # type: ignore[arg-type]


# -- spans --------------------------------------------------------------------------------------


def finished(
    kind: SpanKind = SpanKind.SERVER,
    attributes: Mapping[str, Any] | None = None,
    resource: Mapping[str, Any] | None = None,
    limits: SpanLimits | None = None,
    build: Any = None,
) -> ReadableSpan:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "shop", **(resource or {})}),
        span_limits=limits,
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("linked") as other:
        pass
    link = Link(other.get_span_context(), {"app.link": f"token={SECRET}", "app.n": 1})
    with tracer.start_as_current_span(
        "GET /login", kind=kind, attributes=attributes, links=[link]
    ) as span:
        if build is not None:
            build(span)
    provider.shutdown()
    return exporter.get_finished_spans()[-1]


def leaky_span(span: Any) -> None:
    try:
        raise ValueError(f"password={SECRET} for postgres://app:{SECRET}@db/shop")
    except ValueError as exc:
        span.record_exception(exc)
    span.add_event("log", {"log.message": f"token={SECRET}", "sentry.level": "info"})
    span.add_event("plain", {"n": 1})
    span.set_status(StatusCode.ERROR, f"token={SECRET}")


def test_a_span_leaks_nothing_in_attributes_events_links_status_or_resource() -> None:
    span = finished(
        attributes={
            "http.url": f"http://shop/login?password={SECRET}&q=1",
            "net.peer.ip": "203.0.113.9",
            "http.user_agent": f"curl token={SECRET}",
            "http.method": "GET",
        },
        resource={"deployment.token": SECRET},
        build=leaky_span,
    )
    assert SECRET in span.to_json()

    clean = scrub_span(span, SCRUBBER, False)

    assert clean is not None
    no_secret(clean.to_json())
    assert SECRET.encode() not in encode_spans([clean]).SerializeToString()
    assert "net.peer.ip" not in clean.attributes and clean.attributes["http.method"] == "GET"
    assert (clean.name, clean.kind, clean.get_span_context()) == (
        span.name,
        span.kind,
        span.get_span_context(),
    )
    assert (clean.start_time, clean.end_time, clean.parent) == (
        span.start_time,
        span.end_time,
        span.parent,
    )
    assert [e.name for e in clean.events] == ["exception", "log", "plain"]
    exception = clean.events[0].attributes
    assert exception is not None and exception["exception.type"] == "ValueError"
    assert clean.events[2] is span.events[2]  # nothing to scrub: the SDK's own
    assert clean.status.status_code is StatusCode.ERROR
    assert clean.status.description == f"token={FILTERED}"
    assert clean.resource.attributes["service.name"] == "shop"
    assert clean.links[0].attributes == {"app.link": f"token={FILTERED}", "app.n": 1}
    assert SECRET in span.to_json()  # the original is untouched


def test_an_outgoing_request_keeps_its_host_and_loses_its_token() -> None:
    span = finished(
        SpanKind.CLIENT,
        {
            "http.url": f"https://api.partner.example/v1/charge?token={SECRET}",
            "net.peer.name": "api.partner.example",
        },
    )
    clean = scrub_span(span, SCRUBBER, False)
    assert clean is not None
    no_secret(dict(clean.attributes))
    assert clean.attributes["net.peer.name"] == "api.partner.example"


def test_a_clean_span_is_sent_as_it_is() -> None:
    span = finished(attributes={"http.method": "GET"}, build=lambda s: s.add_event("e", {"n": 1}))
    # (the link of finished() carries a token: a span without links here)
    plain = ReadableSpan(
        name=span.name,
        context=span.get_span_context(),
        resource=span.resource,
        attributes=span.attributes,
        events=span.events,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
    )
    assert scrub_span(plain, SCRUBBER, False) is plain


def test_what_the_sdks_limits_dropped_is_still_counted() -> None:
    limits = SpanLimits(max_span_attributes=2, max_events=2)

    def build(span: Any) -> None:
        for n in range(4):
            span.add_event("log", {"log.message": f"token={SECRET} {n}"})

    span = finished(
        attributes={"a": 1, "log.message": f"token={SECRET}", "c": 3},
        limits=limits,
        build=build,
    )
    assert (span.dropped_attributes, span.dropped_events) == (1, 2)
    clean = scrub_span(span, SCRUBBER, False)
    assert clean is not None
    no_secret(clean.to_json())
    assert (clean.dropped_attributes, clean.dropped_events, clean.dropped_links) == (1, 2, 0)
    encoded = encode_spans([clean]).resource_spans[0].scope_spans[0].spans[0]
    assert (encoded.dropped_attributes_count, encoded.dropped_events_count) == (1, 2)


class UnreadableSpan(ReadableSpan):
    @property
    def attributes(self) -> Any:
        raise RuntimeError("no")


def test_a_span_that_cannot_be_read_is_not_sent() -> None:
    good = finished(attributes={"log.message": f"token={SECRET}"})
    bad = UnreadableSpan(name="bad", context=good.get_span_context())

    assert scrub_span(bad, SCRUBBER, False) is None
    out = scrub_spans([bad, good], SCRUBBER, False)
    assert [s.name for s in out] == [good.name]
    no_secret(out[0].to_json())


def test_a_batch_scrubs_a_shared_resource_once() -> None:
    span = finished(resource={"deployment.token": SECRET})
    first, second = scrub_spans([span, span], SCRUBBER, False)
    assert first.resource is second.resource
    assert first.resource.attributes["deployment.token"] == FILTERED


# -- log records --------------------------------------------------------------------------------


@pytest.fixture
def logs() -> Iterator[tuple[logging.Logger, InMemoryLogRecordExporter]]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "shop"}), shutdown_on_exit=False
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    with pytest.warns(DeprecationWarning):
        handler = LoggingHandler(logging.NOTSET, logger_provider=provider)
    log = logging.getLogger("tests.otlp_scrub")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    try:
        yield log, exporter
    finally:
        log.removeHandler(handler)
        log.propagate = True
        provider.shutdown()


def test_a_log_records_exception_attributes_and_extras_are_scrubbed(
    logs: tuple[logging.Logger, InMemoryLogRecordExporter],
) -> None:
    log, exporter = logs
    try:
        raise ConnectionError(f"postgres://app:{SECRET}@db/shop refused; password={SECRET}")
    except ConnectionError:
        log.exception("login failed with token=%s", SECRET, extra={"api_token": SECRET, "n": 3})
    (record,) = exporter.get_finished_logs()
    assert SECRET in record.to_json()

    clean = scrub_log_record(record, SCRUBBER, False)

    assert clean is not None
    no_secret(clean.to_json())
    assert SECRET.encode() not in encode_logs([clean]).SerializeToString()
    attributes = clean.log_record.attributes
    assert attributes is not None
    assert attributes["exception.type"] == "ConnectionError"
    assert attributes["api_token"] == FILTERED and attributes["n"] == 3
    assert "login failed" in str(clean.log_record.body)
    assert clean.log_record.trace_id == record.log_record.trace_id
    assert (clean.resource, clean.instrumentation_scope) == (
        record.resource,
        record.instrumentation_scope,
    )
    assert SECRET in record.to_json()  # the original is untouched


def test_a_mapping_body_is_scrubbed_by_key(
    logs: tuple[logging.Logger, InMemoryLogRecordExporter],
) -> None:
    log, exporter = logs
    log.info({"event": "login", "password": SECRET, "next": f"/a?token={SECRET}"})
    (record,) = exporter.get_finished_logs()
    clean = scrub_log_record(record, SCRUBBER, False)
    assert clean is not None
    no_secret(clean.to_json())


def test_a_clean_log_record_is_sent_as_it_is(
    logs: tuple[logging.Logger, InMemoryLogRecordExporter],
) -> None:
    log, exporter = logs
    log.info("order %s paid", 7)
    (record,) = exporter.get_finished_logs()
    assert scrub_log_record(record, SCRUBBER, False) is record


def test_a_log_record_that_cannot_be_read_is_not_sent(
    logs: tuple[logging.Logger, InMemoryLogRecordExporter],
) -> None:
    log, exporter = logs
    log.warning("fine")
    (good,) = exporter.get_finished_logs()
    bad = ReadableLogRecord(log_record=None, resource=good.resource)  # type: ignore[arg-type]
    assert scrub_log_record(bad, SCRUBBER, False) is None
    assert scrub_log_records([bad, good], SCRUBBER, False) == [good]

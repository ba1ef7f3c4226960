"""The functional core: real spans with real recorded exceptions -> Sentry events."""

from __future__ import annotations

import dataclasses
import os
import sys
import sysconfig
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_sentry_bridge import attributes as attr
from otel_sentry_bridge.convert.context import ConvertContext
from otel_sentry_bridge.convert.event import build_events
from otel_sentry_bridge.convert.frames import CodeLayout
from otel_sentry_bridge.convert.model import EventView, SpanView
from otel_sentry_bridge.convert.spans import span_view
from otel_sentry_bridge.deliver.source_files import SourceCache
from otel_sentry_bridge.setup.config import Settings
from tests.support.relay import assert_valid_event, relay_errors

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "shop", "service.version": "2.0"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _ctx(**settings: Any) -> ConvertContext:
    ids = iter(f"{n:032x}" for n in range(1, 1000))
    return ConvertContext(
        settings=Settings(**settings),
        layout=CodeLayout.current(
            settings.get("in_app_include", ()), settings.get("in_app_exclude", ())
        ),
        read_source=SourceCache(),
        hostname="test-host",
        new_event_id=lambda: next(ids),
    )


def _events(view: SpanView, **settings: Any) -> list[dict[str, Any]]:
    events = [event for _, event in build_events(view, _ctx(**settings))]
    for event in events:
        assert_valid_event(event)
    return events


def _record(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    fail: Callable[[], None],
    *,
    name: str = "GET /orders/<id>",
    kind: SpanKind = SpanKind.SERVER,
    attributes: dict[str, Any] | None = None,
    event_attributes: dict[str, Any] | None = None,
) -> ReadableSpan:
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span(name, kind=kind, attributes=attributes) as span:
        try:
            fail()
        except Exception as exc:
            span.record_exception(exc, attributes=event_attributes)
            span.set_status(Status(StatusCode.ERROR))
    return exporter.get_finished_spans()[-1]


def _inner() -> None:
    raise KeyError("order-17")


def _outer() -> None:
    try:
        _inner()
    except KeyError as exc:
        raise RuntimeError("lookup failed") from exc


class CommandFailed(Exception):
    pass


def _wrapping_a_traceback() -> None:
    """A command's error that carries the output of the failure under it (probe 2026-12-05:
    the separators in that output split the event into made-up exceptions, and the raised one
    lost its frames)."""
    import traceback

    try:
        _outer()
    except RuntimeError:
        raise CommandFailed("batch failed, details:\n" + traceback.format_exc()) from None


def test_a_message_that_holds_a_traceback_is_not_read_as_more_of_the_chain(
    spans: Any,
) -> None:
    (event,) = _events(span_view(_record(*spans, _wrapping_a_traceback)))
    (value,) = event["exception"]["values"]
    assert value["type"] == "CommandFailed"
    assert "The above exception was the direct cause" in value["value"]
    functions = [frame["function"] for frame in value["stacktrace"]["frames"]]
    assert functions[-1] == "_wrapping_a_traceback"


def test_chained_exception_becomes_values_root_cause_first(spans: Any) -> None:
    view = span_view(_record(*spans, _outer))
    (event,) = _events(view)
    values = event["exception"]["values"]
    assert [(v["type"], v["value"]) for v in values] == [
        ("KeyError", "'order-17'"),
        ("RuntimeError", "lookup failed"),
    ]
    assert "module" not in values[-1]  # builtins
    assert values[0]["stacktrace"]["frames"][-1]["function"] == "_inner"
    assert values[-1]["mechanism"] == {"type": "generic", "handled": True}


def test_frames_have_paths_modules_and_five_lines_of_context(spans: Any) -> None:
    view = span_view(_record(*spans, _outer))
    frame = _events(view)[0]["exception"]["values"][0]["stacktrace"]["frames"][-1]
    assert frame["abs_path"] == os.path.abspath(__file__)
    assert frame["filename"].endswith("test_event.py")
    assert frame["module"].endswith("test_event")
    assert frame["function"] == "_inner"
    assert frame["context_line"] == '    raise KeyError("order-17")'
    assert len(frame["pre_context"]) == 5 and len(frame["post_context"]) == 5
    assert frame["pre_context"][-1] == "def _inner() -> None:"
    assert frame["in_app"] is True


def test_third_party_and_stdlib_frames_are_not_in_app(spans: Any) -> None:
    import json

    def fail() -> None:
        json.loads("{not json")

    view = span_view(_record(*spans, fail))
    frames = _events(view)[0]["exception"]["values"][-1]["stacktrace"]["frames"]
    stdlib = sysconfig.get_paths()["stdlib"]
    library = [f for f in frames if f["abs_path"].startswith(os.path.realpath(stdlib))]
    assert library and all(f["in_app"] is False for f in library)
    assert any(f["in_app"] for f in frames)


def test_in_app_include_and_exclude_override_the_defaults(spans: Any) -> None:
    view = span_view(_record(*spans, _outer))
    module = __name__
    excluded = _events(view, in_app_exclude=(module,))
    frames = excluded[0]["exception"]["values"][0]["stacktrace"]["frames"]
    assert all(not f["in_app"] for f in frames if f.get("module") == module)

    import json

    def fail() -> None:
        json.loads("{not json")

    included = _events(span_view(_record(*spans, fail)), in_app_include=("json",))
    frames = included[0]["exception"]["values"][-1]["stacktrace"]["frames"]
    json_frames = [f for f in frames if f.get("module", "").startswith("json")]
    assert json_frames and all(f["in_app"] for f in json_frames)


def test_missing_source_file_falls_back_to_the_printed_line() -> None:
    stacktrace = (
        "Traceback (most recent call last):\n"
        '  File "/nonexistent/app/views.py", line 12, in index\n'
        "    raise ValueError('x')\n"
        "ValueError: x\n"
    )
    view = SpanView(
        trace_id=1,
        span_id=2,
        name="index",
        events=(
            EventView(
                "exception",
                10**18,
                {
                    "exception.type": "ValueError",
                    "exception.message": "x",
                    "exception.stacktrace": stacktrace,
                },
            ),
        ),
    )
    frame = _events(view)[0]["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert frame["context_line"] == "raise ValueError('x')"
    assert "pre_context" not in frame
    assert frame["lineno"] == 12 and frame["function"] == "index"


def test_truncated_stacktrace_still_names_the_raised_exception(spans: Any) -> None:
    span = _record(*spans, _outer)
    view = span_view(span)
    event = view.events[0]
    text = event.attributes["exception.stacktrace"]
    cut = dict(event.attributes, **{"exception.stacktrace": text[: len(text) // 3]})
    view = view._replace(events=(EventView("exception", event.timestamp_ns, cut),))
    values = _events(view)[0]["exception"]["values"]
    assert (values[-1]["type"], values[-1]["value"]) == ("RuntimeError", "lookup failed")


def test_trace_context_links_to_the_span_and_its_parent(spans: Any) -> None:
    provider, exporter = spans
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("parent") as parent:
        span = _record(provider, exporter, _outer, name="child", kind=SpanKind.INTERNAL)
    (event,) = _events(span_view(span))
    trace = event["contexts"]["trace"]
    assert trace["trace_id"] == format(parent.get_span_context().trace_id, "032x")
    assert trace["span_id"] == format(span.context.span_id, "016x")
    assert trace["parent_span_id"] == format(parent.get_span_context().span_id, "016x")
    assert trace["status"] == "internal_error"
    assert event["transaction"] == "child"


def test_http_server_span_gives_op_transaction_and_request_old_conventions(spans: Any) -> None:
    attributes = {
        "http.method": "POST",
        "http.scheme": "https",
        "http.host": "shop.example",
        "http.target": "/orders/17?expand=items",
        "http.route": "orders/<int:id>",
        "http.status_code": 500,
        "http.user_agent": "curl/8",
    }
    (event,) = _events(span_view(_record(*spans, _outer, attributes=attributes)))
    assert event["contexts"]["trace"]["op"] == "http.server"
    assert event["contexts"]["trace"]["status"] == "internal_error"
    assert event["transaction"] == "/orders/{id}"
    assert event["request"] == {
        "method": "POST",
        "url": "https://shop.example/orders/17",
        "query_string": "expand=items",
        "headers": {"User-Agent": "curl/8"},
    }


def test_http_server_span_request_stable_conventions(spans: Any) -> None:
    attributes = {
        "http.request.method": "GET",
        "url.scheme": "http",
        "server.address": "localhost",
        "server.port": 8000,
        "url.path": "/boom/",
        "url.query": "a=1",
        "http.response.status_code": 404,
        "client.address": "10.1.2.3",
    }
    view = span_view(_record(*spans, _outer, attributes=attributes))
    (event,) = _events(view)
    assert event["request"]["url"] == "http://localhost:8000/boom/"
    assert event["request"]["query_string"] == "a=1"
    assert "env" not in event["request"]  # client address is PII
    assert event["contexts"]["trace"]["status"] == "not_found"
    (with_pii,) = _events(view, send_default_pii=True)
    assert with_pii["request"]["env"] == {"REMOTE_ADDR": "10.1.2.3"}


def test_full_url_attribute_is_split_into_url_and_query(spans: Any) -> None:
    attributes = {"http.method": "GET", "http.url": "http://h:81/p?q=1"}
    (event,) = _events(span_view(_record(*spans, _outer, attributes=attributes)))
    assert event["request"]["url"] == "http://h:81/p"
    assert event["request"]["query_string"] == "q=1"


def test_client_span_has_no_request_interface(spans: Any) -> None:
    attributes = {"http.method": "GET", "http.url": "http://upstream/x"}
    span = _record(*spans, _outer, kind=SpanKind.CLIENT, attributes=attributes)
    (event,) = _events(span_view(span))
    assert "request" not in event
    assert event["contexts"]["trace"]["op"] == "http.client"


def test_release_environment_server_name_and_tags_from_resource(spans: Any) -> None:
    (event,) = _events(span_view(_record(*spans, _outer)))
    assert event["release"] == "2.0"
    assert event["environment"] == "production"
    assert event["server_name"] == "test-host"
    assert event["tags"]["service.name"] == "shop"
    assert event["platform"] == "python" and event["level"] == "error"
    assert event["sdk"]["name"] == "otel-sentry-bridge"


def test_settings_override_resource_values(spans: Any) -> None:
    view = span_view(_record(*spans, _outer))
    (event,) = _events(view, release="r9", environment="staging", server_name="web-1")
    assert (event["release"], event["environment"], event["server_name"]) == (
        "r9",
        "staging",
        "web-1",
    )


def test_deployment_environment_and_host_name_from_resource() -> None:
    view = SpanView(
        trace_id=1,
        span_id=2,
        name="x",
        resource={"deployment.environment.name": "qa", "host.name": "box"},
        events=(EventView("exception", 1, {"exception.type": "E", "exception.message": "m"}),),
    )
    (event,) = _events(view)
    assert (event["environment"], event["server_name"]) == ("qa", "box")


def _resource_view(resource: dict[str, Any]) -> SpanView:
    return SpanView(
        trace_id=1,
        span_id=2,
        name="x",
        resource=resource,
        events=(EventView("exception", 1, {"exception.type": "E", "exception.message": "m"}),),
    )


def _warning_ctx(messages: list[str], **settings: Any) -> ConvertContext:
    return dataclasses.replace(_ctx(**settings), warn=messages.append)


def _assert_relay_keeps_environment_and_release(event: dict[str, Any]) -> None:
    # Only these two: a resource value can also be a tag, which relay judges by other rules.
    errors = relay_errors(event)
    assert [e for e in errors if e.get("name") in ("environment", "release")] == []


@pytest.mark.parametrize(
    ("resource", "environment"),
    [
        ({"deployment.environment.name": "s" * 64}, "s" * 64),
        ({"deployment.environment.name": "s" * 65}, "production"),
        ({"deployment.environment.name": "s" * 100, "deployment.environment": "qa"}, "qa"),
        ({"deployment.environment.name": "None", "deployment.environment": "a/b"}, "production"),
        ({"deployment.environment.name": "eu\nwest"}, "production"),
        ({"deployment.environment.name": " eu west\n"}, "eu west"),  # relay trims it too
        ({"deployment.environment": "prödüktion"}, "prödüktion"),
    ],
)
def test_resource_environment_sentry_would_drop_is_not_used(
    resource: dict[str, Any], environment: str
) -> None:
    messages: list[str] = []
    events = [e for _, e in build_events(_resource_view(resource), _warning_ctx(messages))]
    (event,) = events
    _assert_relay_keeps_environment_and_release(event)
    assert event["environment"] == environment
    dropped = [k for k, v in resource.items() if v.strip() not in (environment, "")]
    assert len(messages) == len(dropped)
    for key, message in zip(dropped, messages, strict=True):
        assert f"resource attribute {key}:" in message


@pytest.mark.parametrize(
    ("version", "release"),
    [
        ("r" * 200, "r" * 200),
        ("r" * 201, None),
        ("2.0\nx", None),
        ("latest", None),
        ("..", None),
        ("None", "None"),
        ("2.0 beta", "2.0 beta"),
        (3, "3"),  # a non-string attribute
    ],
)
def test_resource_release_sentry_would_drop_is_not_used(version: Any, release: str | None) -> None:
    messages: list[str] = []
    resource = {"service.version": version}
    (event,) = [e for _, e in build_events(_resource_view(resource), _warning_ctx(messages))]
    _assert_relay_keeps_environment_and_release(event)
    assert event.get("release") == release
    assert len(messages) == (release is None)
    assert all("resource attribute service.version:" in m for m in messages)


def test_invalid_resource_value_is_checked_and_reported_once_per_context() -> None:
    messages: list[str] = []
    ctx = _warning_ctx(messages)
    view = _resource_view({"deployment.environment.name": "a/b", "service.version": "latest"})
    for _ in range(5):
        (_, event), *_ = build_events(view, ctx)
        assert event["environment"] == "production" and "release" not in event
    assert len(messages) == 2
    assert len(ctx.name_checks) == 2


def test_settings_values_win_without_checking_the_resource() -> None:
    messages: list[str] = []
    view = _resource_view({"deployment.environment.name": "a/b", "service.version": "latest"})
    ctx = _warning_ctx(messages, environment="staging", release="r1")
    (_, event), *_ = build_events(view, ctx)
    assert (event["environment"], event["release"]) == ("staging", "r1")
    assert messages == []


def test_event_id_and_mechanism_come_from_event_attributes(spans: Any) -> None:
    extra = {
        attr.EVENT_ID: "ab" * 16,
        attr.MECHANISM_TYPE: "django",
        attr.MECHANISM_HANDLED: False,
    }
    (event,) = _events(span_view(_record(*spans, _outer, event_attributes=extra)))
    assert event["event_id"] == "ab" * 16
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "django", "handled": False}


def test_fresh_event_id_when_none_or_malformed(spans: Any) -> None:
    (event,) = _events(span_view(_record(*spans, _outer, event_attributes={attr.EVENT_ID: "x"})))
    assert len(event["event_id"]) == 32 and int(event["event_id"], 16) >= 0


def test_timestamp_is_the_event_time(spans: Any) -> None:
    span = _record(*spans, _outer)
    (event,) = _events(span_view(span))
    assert event["timestamp"] == pytest.approx(span.events[0].timestamp / 1e9)


def test_same_exception_recorded_twice_on_a_span_gives_one_event(spans: Any) -> None:
    provider, exporter = spans
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("req") as span:
        try:
            _outer()
        except RuntimeError as exc:
            span.record_exception(exc)  # e.g. the Django instrumentation
            span.record_exception(exc, attributes={attr.EVENT_ID: "cd" * 16})  # our hook
    events = _events(span_view(exporter.get_finished_spans()[-1]))
    assert len(events) == 1
    assert events[0]["event_id"] == "cd" * 16  # the id the user was shown


def test_our_copy_first_then_another_recorders_copy_gives_one_event(spans: Any) -> None:
    provider, exporter = spans
    with provider.get_tracer("tests").start_as_current_span("req") as span:
        try:
            _outer()
        except RuntimeError as exc:
            span.record_exception(exc, attributes={attr.EVENT_ID: "ab" * 16})  # our capture
            span.record_exception(exc)  # another instrumentation, after it
    events = _events(span_view(exporter.get_finished_spans()[-1]))
    assert [e["event_id"] for e in events] == ["ab" * 16]


def test_two_captures_of_exceptions_alike_on_a_span_give_two_events(spans: Any) -> None:
    provider, exporter = spans
    with provider.get_tracer("tests").start_as_current_span("req") as span:
        for event_id in ("ab" * 16, "cd" * 16):
            try:
                _outer()
            except RuntimeError as exc:
                span.record_exception(exc, attributes={attr.EVENT_ID: event_id})
    events = _events(span_view(exporter.get_finished_spans()[-1]))
    assert [e["event_id"] for e in events] == ["ab" * 16, "cd" * 16]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are new in 3.11")
@pytest.mark.parametrize("message", ["bad row", "bad row\non two lines", ""])
def test_exception_notes_follow_the_message_as_python_prints_them(spans: Any, message: str) -> None:
    provider, exporter = spans
    with provider.get_tracer("tests").start_as_current_span("req") as span:
        error = ValueError(message)
        error.add_note("while importing line 7")
        error.add_note("of orders.csv")
        try:
            raise error
        except ValueError as exc:
            span.record_exception(exc)
    (event,) = _events(span_view(exporter.get_finished_spans()[-1]))
    notes = "while importing line 7\nof orders.csv"
    assert event["exception"]["values"][-1]["value"] == (
        f"{message}\n{notes}" if message else notes
    )


def test_two_different_exceptions_on_a_span_give_two_events(spans: Any) -> None:
    provider, exporter = spans
    with provider.get_tracer("tests").start_as_current_span("req") as span:
        for fail in (_outer, _inner):
            try:
                fail()
            except Exception as exc:
                span.record_exception(exc)
    events = _events(span_view(exporter.get_finished_spans()[-1]))
    assert [e["exception"]["values"][-1]["type"] for e in events] == ["RuntimeError", "KeyError"]


def test_span_without_exception_gives_nothing(spans: Any) -> None:
    provider, exporter = spans
    with provider.get_tracer("tests").start_as_current_span("ok") as span:
        span.add_event("cache.miss")
    assert build_events(span_view(exporter.get_finished_spans()[-1]), _ctx()) == []


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are 3.11+")
def test_exception_group_values_are_linked_by_ids(spans: Any) -> None:
    def fail() -> None:
        raise ExceptionGroup("many", [ValueError("a"), KeyError("b")])  # noqa: F821

    (event,) = _events(span_view(_record(*spans, fail)))
    values = event["exception"]["values"]
    main = values[-1]
    assert main["type"] == "ExceptionGroup"
    assert main["mechanism"]["is_exception_group"] is True
    assert main["mechanism"]["exception_id"] == 0
    members = {v["type"]: v["mechanism"] for v in values[:-1]}
    assert set(members) == {"ValueError", "KeyError"}
    assert all(m["parent_id"] == 0 for m in members.values())


def test_syntax_error_event(spans: Any) -> None:
    def fail() -> None:
        compile("def broken(:\n", "generated.py", "exec")

    (event,) = _events(span_view(_record(*spans, fail)))
    main = event["exception"]["values"][-1]
    assert main["type"] == "SyntaxError"
    # The location of the syntax error is in the value, as str() and sentry-sdk give it; it
    # is not a frame of the stack (the innermost frame is the one that called compile()).
    assert main["value"].endswith("(generated.py, line 1)")
    assert main["stacktrace"]["frames"][-1]["function"] == "fail"
    assert all(f["filename"] != "generated.py" for f in main["stacktrace"]["frames"])


def test_trace_url_template_adds_a_link_to_the_trace(spans: Any) -> None:
    view = span_view(_record(*spans, _outer))
    template = "http://localhost:16686/trace/{trace_id}"
    (event,) = _events(view, trace_url_template=template)
    trace_id = event["contexts"]["trace"]["trace_id"]
    assert event["extra"]["trace_url"] == f"http://localhost:16686/trace/{trace_id}"


def test_weird_attribute_values_still_give_a_valid_event() -> None:
    view = SpanView(
        trace_id=2**128 - 1,
        span_id=2**64 - 1,
        name="",
        attributes={"http.method": "GET", "http.status_code": "not-a-number"},
        events=(
            EventView(
                "exception",
                0,
                {"exception.type": "", "exception.message": "", "exception.stacktrace": "\x00"},
            ),
        ),
    )
    (event,) = _events(view)
    assert event["exception"]["values"][-1]["type"] == "Exception"


def test_the_parsed_exceptions_it_is_given_are_left_as_they_are() -> None:
    """Parsed stack traces are shared by the events that show them (ParseCache): converting
    one event must not change what the next one reads."""
    import copy

    from otel_sentry_bridge.convert.exceptions import exception_values
    from otel_sentry_bridge.convert.stacktrace import parse_stacktrace

    text = (
        "Traceback (most recent call last):\n"
        '  File "/app/shop/views.py", line 3, in pay\n'
        "ValueError: as printed\n"
    )
    parsed = parse_stacktrace(text)
    before = copy.deepcopy(parsed)
    ctx = _ctx()
    first = exception_values(
        parsed, {"exception.type": "ValueError", "exception.message": "x"}, ctx
    )
    assert first[-1]["value"] == "x"
    assert parsed == before
    again = exception_values(parsed, {"exception.type": "ValueError"}, ctx)
    assert again[-1]["value"] == "as printed"

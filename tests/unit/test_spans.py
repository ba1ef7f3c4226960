"""``convert/spans.py``: reading finished SDK spans into views on the thread that ends them."""

from __future__ import annotations

from types import MappingProxyType, SimpleNamespace

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from otel_sentry_bridge.convert.spans import attribute_dict, reportable, span_events, span_view


def _finished_span() -> ReadableSpan:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("tests").start_as_current_span(
        "GET /pay", kind=SpanKind.SERVER, attributes={"http.route": "/pay", "n": 3}
    ) as span:
        span.add_event("exception", {"exception.type": "ValueError", "sentry.event_id": "e1"})
        span.set_status(StatusCode.ERROR, "boom")
    (finished,) = exporter.get_finished_spans()
    return finished


def test_attribute_dict_copies_bounded_attributes_as_a_plain_independent_dict() -> None:
    bounded = BoundedAttributes(attributes={"a": 1, "b": "two"}, immutable=False)
    copy = attribute_dict(bounded)
    assert type(copy) is dict and copy == {"a": 1, "b": "two"}
    copy["a"] = 99
    bounded["c"] = 3
    assert bounded["a"] == 1 and "c" not in copy


def test_attribute_dict_takes_any_mapping_and_none() -> None:
    assert attribute_dict(None) == {}
    assert attribute_dict(MappingProxyType({"x": 1})) == {"x": 1}
    assert attribute_dict({"y": [1, 2]}) == {"y": [1, 2]}


def test_span_view_reads_what_the_public_api_gives() -> None:
    span = _finished_span()
    view = span_view(span)
    assert view.attributes == dict(span.attributes or {})
    assert view.resource == dict(span.resource.attributes)
    (event,) = view.events
    assert event.attributes == dict(span.events[0].attributes or {})
    assert (view.kind, view.status_code, view.status_description) == ("SERVER", "ERROR", "boom")
    assert all(type(m) is dict for m in (view.attributes, view.resource, event.attributes))


def test_the_sdk_still_holds_what_the_fast_copy_reads() -> None:
    """The fast copy reads the SDK's own ``BoundedAttributes`` (a plain dict inside): if an
    SDK release changes that, this says the fast path is gone (the copy is still right)."""
    span = _finished_span()
    held = getattr(span, "_attributes", None)
    assert type(held) is BoundedAttributes and type(getattr(held, "_dict", None)) is dict
    assert type(span.resource.attributes) is BoundedAttributes


def _ended(*events: tuple[str, dict[str, object]]) -> ReadableSpan:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("tests").start_as_current_span("GET /") as span:
        for name, attributes in events:
            span.add_event(name, attributes)  # type: ignore[arg-type]
    (finished,) = exporter.get_finished_spans()
    return finished


def has_reportable_event(span: ReadableSpan) -> bool:
    """What ``Bridge.on_span_end`` asks of an ending span."""
    return reportable(span_events(span))


def test_a_span_is_reported_for_an_exception_or_an_error_log_event_only() -> None:
    assert not has_reportable_event(_ended())
    assert not has_reportable_event(_ended(("log", {"sentry.level": "info"})))
    assert not has_reportable_event(_ended(("cache.hit", {})))
    assert has_reportable_event(_ended(("cache.hit", {}), ("exception", {})))
    assert has_reportable_event(_ended(("log", {"sentry.send": True})))


def test_a_span_that_is_not_the_sdks_is_read_through_its_events() -> None:
    class Other:
        events = (SimpleNamespace(name="exception", attributes={}),)

    assert has_reportable_event(Other())  # type: ignore[arg-type]
    Other.events = ()
    assert not has_reportable_event(Other())  # type: ignore[arg-type]

"""CaptureStore: the bounded hand-over between capturing threads and a bridge's worker."""

from __future__ import annotations

import datetime
from typing import Any

from opentelemetry.trace import SpanKind, Status

from otel_sentry_bridge.capture.record import CaptureRecord, Mechanism
from otel_sentry_bridge.capture.store import CaptureStore

# -- records -------------------------------------------------------------------------------------


def test_a_record_is_taken_once() -> None:
    store = CaptureStore()
    record = CaptureRecord("a" * 32, mechanism=Mechanism("django", False))
    store.put(record)
    assert store.take("a" * 32) is record
    assert store.take("a" * 32) is None


def test_an_expected_record_waits_for_its_exception_by_span_type_and_message() -> None:
    store = CaptureStore()
    record = CaptureRecord("b" * 32)
    store.expect((5, "KeyError", "'x'"), record)
    assert store.take_expected((5, "KeyError", "'y'")) is None
    assert store.take_expected((5, "KeyError", "'x'")) is record
    assert store.take_expected((5, "KeyError", "'x'")) is None


def test_records_never_picked_up_fall_out_oldest_first() -> None:
    store = CaptureStore(max_events=2)
    for n in range(3):
        store.put(CaptureRecord(f"{n:032x}"))
    assert store.take(f"{0:032x}") is None
    assert store.take(f"{2:032x}") is not None


# -- breadcrumbs ---------------------------------------------------------------------------------


def test_breadcrumbs_are_kept_per_trace_up_to_a_time() -> None:
    store = CaptureStore(max_breadcrumbs=2)
    for at in (1.0, 2.0, 3.0):
        store.add_breadcrumb(7, {"timestamp": at, "message": str(at)})
    assert [c["message"] for c in store.breadcrumbs(7, until=2.5) or []] == ["2.0"]
    assert store.breadcrumbs(8, until=9.0) is None


def test_a_breadcrumb_without_a_usable_time_never_spoils_the_others() -> None:
    store = CaptureStore()
    store.add_breadcrumb(7, {"timestamp": 1.0, "message": "before"})
    for odd in (datetime.datetime.now(), "yesterday", None, float("nan"), float("inf")):
        store.add_breadcrumb(7, {"timestamp": odd, "message": "odd"})
    store.add_breadcrumb(7, {"timestamp": 2, "message": "after"})
    assert [c["message"] for c in store.breadcrumbs(7, until=5.0) or []] == ["before", "after"]


def test_reading_breadcrumbs_skips_one_whose_time_was_changed_after_it_was_kept() -> None:
    store = CaptureStore()
    changed = {"timestamp": 1.0, "message": "changed"}
    store.add_breadcrumb(7, changed)
    store.add_breadcrumb(7, {"timestamp": 2.0, "message": "kept"})
    changed["timestamp"] = "later"
    assert [c["message"] for c in store.breadcrumbs(7, until=5.0) or []] == ["kept"]


# -- span records: bounded per trace and in traces --------------------------------------------


def _record(end_ns: int, name: str = "GET") -> Any:
    return (end_ns, end_ns - 1, name, SpanKind.CLIENT, Status(), {})


def test_store_keeps_the_newest_records_per_trace() -> None:
    store = CaptureStore(max_breadcrumbs=3)
    for end in range(1, 6):
        store.add_span(7, _record(end))
    assert [r[0] for r in store.spans(7, until_ns=100)] == [3, 4, 5]


def test_store_returns_only_spans_ended_by_the_given_time() -> None:
    store = CaptureStore()
    for end in (10, 20, 30):
        store.add_span(7, _record(end))
    assert [r[0] for r in store.spans(7, until_ns=20)] == [10, 20]
    assert store.spans(8, until_ns=100) == []


def test_store_forgets_the_oldest_trace_beyond_its_bound() -> None:
    store = CaptureStore(max_span_traces=2)
    for trace_id in (1, 2, 3):
        store.add_span(trace_id, _record(5))
    assert store.spans(1, until_ns=10) == []
    assert len(store.spans(2, until_ns=10)) == len(store.spans(3, until_ns=10)) == 1


def test_records_of_a_trace_without_error_go_when_its_root_ends() -> None:
    store = CaptureStore()
    store.add_span(7, _record(5))
    store.end_trace(7)
    assert store.spans(7, until_ns=10) == []


def test_records_of_a_trace_with_a_queued_error_outlive_its_root() -> None:
    store = CaptureStore()
    store.add_span(7, _record(5))
    store.want_spans(7)
    store.end_trace(7)
    assert [r[0] for r in store.spans(7, until_ns=10)] == [5]


def test_a_second_local_root_in_the_trace_keeps_the_earlier_records() -> None:
    store = CaptureStore()
    store.add_span(7, _record(5))
    store.want_spans(7)
    store.end_trace(7)  # e.g. the service called itself: the inner request ended
    store.add_span(7, _record(8))
    store.want_spans(7)
    store.end_trace(7)
    assert [r[0] for r in store.spans(7, until_ns=10)] == [5, 8]


def test_kept_traces_are_bounded() -> None:
    store = CaptureStore(max_kept_traces=2)
    for trace_id in (1, 2, 3):
        store.add_span(trace_id, _record(5))
        store.want_spans(trace_id)
        store.end_trace(trace_id)
    assert store.spans(1, until_ns=10) == []
    assert len(store.spans(3, until_ns=10)) == 1


def test_a_completed_record_keeps_every_other_field() -> None:
    import dataclasses

    from otel_sentry_bridge.capture.record import Details, LogEntry

    values = {
        "event_id": "d" * 32,
        "mechanism": Mechanism("celery", False),
        "level": "warning",
        "logger": "shop",
        "logentry": LogEntry("t %s", ("1",), "t 1"),
        "details": Details(transaction="/x/"),
        "frame_vars": ({"a": 1},),
        "breadcrumbs": ({"message": "m"},),
        "send": False,
        "template_frame": {"filename": "x.html"},
    }
    assert set(values) == {f.name for f in dataclasses.fields(CaptureRecord)}  # all listed
    record = CaptureRecord(**values)  # type: ignore[arg-type]
    details = Details(transaction="/y/")
    completed = record.completed(details, ({"b": 2},))
    assert completed == dataclasses.replace(record, details=details, frame_vars=({"b": 2},))


def test_a_trace_is_held_while_it_has_breadcrumbs_or_span_records() -> None:
    store = CaptureStore()
    assert not store.holds(1)
    store.add_breadcrumb(1, {"timestamp": 1.0, "message": "m"})
    store.add_span(2, (5, 1, "GET /x", SpanKind.CLIENT, Status(), {}))
    assert (store.holds(1), store.holds(2), store.holds(3)) == (True, True, False)
    store.want_spans(2)
    store.end_trace(2)  # an error of the trace was queued: its records are kept
    assert store.holds(2)

"""before_send and ignored_exceptions through a real SDK TracerProvider: what is sent, what is
dropped, how each drop is counted (``processor.pipeline.lost``, client reports) and logged."""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.deliver import pipeline
from otel_sentry_bridge.testing import CapturingTransport
from tests.support.receiver import SentryReceiver

BEFORE_SEND = ("before_send", "error")
INTERNAL = ("internal_sdk_error", "error")


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    yield provider
    provider.shutdown()


def _start(
    provider: TracerProvider, **options: Any
) -> tuple[CapturingTransport, SentrySpanProcessor]:
    transport = CapturingTransport()
    processor = SentrySpanProcessor(transport=transport, **options)
    provider.add_span_processor(processor)
    return transport, processor


def _record(provider: TracerProvider, *errors: BaseException) -> None:
    """Record each error on a span of its own, as an instrumentation does."""
    tracer = provider.get_tracer("t")
    for error in errors:
        with tracer.start_as_current_span("checkout") as span:
            try:
                raise error
            except Exception as exc:
                span.record_exception(exc)


def _errors(provider: TracerProvider, count: int) -> None:
    _record(provider, *(ValueError(f"declined {n}") for n in range(count)))


def _values(events: list[dict[str, Any]]) -> list[str]:
    return [e["exception"]["values"][-1]["value"] for e in events]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "otel_sentry_bridge" and r.levelno >= logging.WARNING
    ]


# -- before_send: what it returns --------------------------------------------------------------


@pytest.mark.parametrize(
    "result",
    [True, "event", ["event"], 0, object()],
    ids=["True", "str", "list", "zero", "object"],
)
def test_before_send_returning_no_mapping_drops_the_event_counted_and_warned_once(
    provider: TracerProvider, caplog: pytest.LogCaptureFixture, result: object
) -> None:
    transport, processor = _start(provider, before_send=lambda event: result)
    _errors(provider, 3)

    assert processor.force_flush(5000)
    assert transport.events == []
    assert processor.pipeline.lost[BEFORE_SEND] == 3
    assert processor.pipeline.lost[INTERNAL] == 0
    (warning,) = _warnings(caplog)  # one line, not one per event
    assert "before_send must return the event or None" in warning.getMessage()
    assert type(result).__name__ in warning.getMessage()
    assert not warning.exc_info  # nothing failed: no traceback to show


def test_before_send_returning_none_drops_the_event_counted_without_a_warning(
    provider: TracerProvider, caplog: pytest.LogCaptureFixture
) -> None:
    transport, processor = _start(provider, before_send=lambda event: None)
    _errors(provider, 2)

    assert processor.force_flush(5000)
    assert transport.events == []
    assert processor.pipeline.lost[BEFORE_SEND] == 2
    assert _warnings(caplog) == []


def _keeping_originals(
    edit: Callable[[dict[str, Any]], Any],
) -> tuple[list[dict[str, Any]], Callable[[dict[str, Any]], Any]]:
    originals: list[dict[str, Any]] = []

    def before_send(event: dict[str, Any]) -> Any:
        originals.append(dict(event))
        return edit(event)

    return originals, before_send


@pytest.mark.parametrize(
    "edit",
    [
        lambda event: {},
        lambda event: {"message": "replaced", "event_id": None},
        lambda event: event.clear() or event,  # emptied in place, then returned
        lambda event: types.MappingProxyType({"message": "read-only"}),
    ],
    ids=["new-empty-dict", "event_id-none", "cleared-in-place", "read-only-mapping"],
)
def test_before_send_result_gets_back_the_fields_sentry_requires(
    provider: TracerProvider, caplog: pytest.LogCaptureFixture, edit: Callable[..., Any]
) -> None:
    originals, before_send = _keeping_originals(edit)
    transport, processor = _start(provider, before_send=before_send)
    _errors(provider, 1)

    assert processor.force_flush(5000)
    (event,) = transport.events
    (original,) = originals
    for field in ("event_id", "timestamp", "platform", "level"):
        assert event[field] == original[field], field
    assert "exception" not in event  # only what the envelope needs is put back
    assert sum(processor.pipeline.lost.values()) == 0
    assert _warnings(caplog) == []


def test_before_send_keeps_its_own_values_for_the_required_fields(
    provider: TracerProvider,
) -> None:
    transport, processor = _start(provider, before_send=lambda event: {**event, "level": "fatal"})
    _errors(provider, 1)

    assert processor.force_flush(5000)
    (event,) = transport.events
    assert event["level"] == "fatal"
    assert _values([event]) == ["declined 0"]


# -- before_send: when it raises ---------------------------------------------------------------


def test_before_send_raising_drops_the_event_counted_and_warned_once_with_traceback(
    provider: TracerProvider, caplog: pytest.LogCaptureFixture
) -> None:
    def before_send(event: dict[str, Any]) -> dict[str, Any] | None:
        if _values([event]) == ["declined 1"]:
            return event
        raise RuntimeError("the filter has a bug")

    transport, processor = _start(provider, before_send=before_send)
    _errors(provider, 3)

    assert processor.force_flush(5000)
    # Not sent unfiltered: before_send may be the only thing removing personal data.
    assert _values(transport.events) == ["declined 1"]
    assert processor.pipeline.lost[BEFORE_SEND] == 2
    assert processor.pipeline.lost[INTERNAL] == 0
    (warning,) = _warnings(caplog)
    assert "before_send raised" in warning.getMessage()
    assert warning.exc_info is not None and warning.exc_info[0] is RuntimeError


# -- before_send: (event) or sentry-sdk's (event, hint) ------------------------------------


class _HintFilter:
    def __call__(self, event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("tags", {})["hint"] = repr(hint)
        return event


def _tag_hint(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    event.setdefault("tags", {})["hint"] = repr(hint)
    return event


def _tag_hint_default(event: dict[str, Any], hint: Any = "not given") -> dict[str, Any]:
    event.setdefault("tags", {})["hint"] = repr(hint)
    return event


def _tag_args(*args: Any) -> dict[str, Any]:
    event: dict[str, Any] = args[0]
    event.setdefault("tags", {})["hint"] = repr(args[1]) if len(args) > 1 else "not given"
    return event


def _tag_event_only(event: dict[str, Any], **options: Any) -> dict[str, Any]:
    event.setdefault("tags", {})["hint"] = "not given"
    return event


@pytest.mark.parametrize(
    ("before_send", "hint"),
    [
        (_tag_hint, "{}"),
        (_HintFilter(), "{}"),
        (_tag_hint_default, "{}"),
        (_tag_args, "{}"),
        (_tag_event_only, "not given"),
    ],
    ids=["event-hint", "callable-object", "hint-with-default", "star-args", "event-kwargs"],
)
def test_before_send_gets_a_hint_when_its_signature_takes_one(
    provider: TracerProvider,
    caplog: pytest.LogCaptureFixture,
    before_send: Callable[..., Any],
    hint: str,
) -> None:
    transport, processor = _start(provider, before_send=before_send)
    _errors(provider, 2)

    assert processor.force_flush(5000)
    assert [e["tags"]["hint"] for e in transport.events] == [hint, hint]
    assert sum(processor.pipeline.lost.values()) == 0
    assert _warnings(caplog) == []


def test_sentry_sdk_style_before_send_drops_what_it_returns_none_for(
    provider: TracerProvider,
) -> None:
    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        if "exc_info" in hint:  # sentry-sdk's documented pattern must not fail on our hint
            raise AssertionError("no exc_info is given")
        return None if _values([event]) == ["declined 0"] else event

    transport, processor = _start(provider, before_send=before_send)
    _errors(provider, 2)

    assert processor.force_flush(5000)
    assert _values(transport.events) == ["declined 1"]
    assert processor.pipeline.lost[BEFORE_SEND] == 1


# -- our own failures --------------------------------------------------------------------------


def test_a_failure_processing_one_event_is_counted_and_warned_once(
    provider: TracerProvider, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    send = pipeline.Pipeline.send

    def failing_for_some(self: pipeline.Pipeline, event: dict[str, Any]) -> bool:
        if _values([event]) != ["declined 1"]:
            raise RuntimeError("a bug of ours")
        return send(self, event)

    monkeypatch.setattr(pipeline.Pipeline, "send", failing_for_some)
    transport, processor = _start(provider)
    _errors(provider, 3)

    assert processor.force_flush(5000)
    assert _values(transport.events) == ["declined 1"]
    assert processor.pipeline.lost[INTERNAL] == 2
    (warning,) = _warnings(caplog)
    assert "internal_sdk_error" in warning.getMessage()
    assert warning.exc_info is not None and warning.exc_info[0] is RuntimeError


def test_a_span_whose_errors_cannot_be_read_is_counted_as_a_loss(
    provider: TracerProvider, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug of ours in the conversion")

    monkeypatch.setattr(pipeline, "select_events", broken)
    transport, processor = _start(provider)
    _errors(provider, 2)

    assert processor.force_flush(5000)
    assert transport.events == []
    assert processor.pipeline.lost[INTERNAL] == 2
    (warning,) = _warnings(caplog)
    assert "internal_sdk_error" in warning.getMessage()


def test_before_send_drops_reach_sentry_as_a_client_report(
    provider: TracerProvider, sentry_receiver: SentryReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> Any:
        value = _values([event])[0]
        if value == "declined 0":
            raise RuntimeError("the filter has a bug")
        if value == "declined 1":
            return True
        return event

    send = pipeline.Pipeline.send

    def failing_for_one(self: pipeline.Pipeline, event: dict[str, Any]) -> bool:
        if _values([event]) == ["declined 2"]:
            raise RuntimeError("a bug of ours")
        return send(self, event)

    monkeypatch.setattr(pipeline.Pipeline, "send", failing_for_one)
    processor = SentrySpanProcessor(dsn=sentry_receiver.dsn, before_send=before_send)
    provider.add_span_processor(processor)
    _errors(provider, 4)

    assert processor.force_flush(5000)
    assert _values(sentry_receiver.wait_for_events(1)) == ["declined 3"]
    processor.shutdown()  # sends the final client report
    discarded = [
        d for report in sentry_receiver.client_reports() for d in report["discarded_events"]
    ]
    assert sorted(discarded, key=lambda d: d["reason"]) == [
        {"reason": "before_send", "category": "error", "quantity": 2},
        {"reason": "internal_sdk_error", "category": "error", "quantity": 1},
    ]


# -- ignored_exceptions: classes of the script being run ------------------------------------


@pytest.fixture
def main_classes(monkeypatch: pytest.MonkeyPatch) -> tuple[type[Exception], type[Exception]]:
    """``MainErr`` and its subclass ``MainSub``, as if defined in the script run as __main__."""
    main_err = type("MainErr", (Exception,), {"__module__": "__main__"})
    main_sub = type("MainSub", (main_err,), {"__module__": "__main__"})
    monkeypatch.setattr(sys.modules["__main__"], "MainErr", main_err, raising=False)
    monkeypatch.setattr(sys.modules["__main__"], "MainSub", main_sub, raising=False)
    return main_err, main_sub


def test_ignored_main_class_and_its_subclasses_are_not_sent(
    provider: TracerProvider, main_classes: tuple[type[Exception], type[Exception]]
) -> None:
    main_err, main_sub = main_classes
    transport, processor = _start(provider, ignored_exceptions="__main__.MainErr")
    _record(provider, main_err("a"), main_sub("b"), ValueError("c"))

    assert processor.force_flush(5000)
    assert [e["exception"]["values"][-1]["type"] for e in transport.events] == ["ValueError"]


def test_main_class_not_ignored_is_sent_without_its_module(
    provider: TracerProvider, main_classes: tuple[type[Exception], type[Exception]]
) -> None:
    main_err, main_sub = main_classes
    transport, processor = _start(provider, ignored_exceptions="__main__.MainSub")
    _record(provider, main_err("a"), main_sub("b"))

    assert processor.force_flush(5000)
    (value,) = [e["exception"]["values"][-1] for e in transport.events]
    assert (value["type"], value.get("module")) == ("MainErr", None)


def test_before_send_changing_frames_in_place_leaves_the_next_event_alone(
    provider: TracerProvider,
) -> None:
    """Frames are made once per code location and shared by the events of that location:
    before_send gets copies, so what it plants in one event never reaches another."""

    def plant(event: dict[str, Any]) -> dict[str, Any]:
        for frame in event["exception"]["values"][-1]["stacktrace"]["frames"]:
            frame["function"] = "planted"
            frame.setdefault("pre_context", []).append("planted")
        return event

    transport, processor = _start(provider, before_send=plant)
    transport_plain, processor_plain = _start(provider)
    for _ in range(2):
        _record(provider, ValueError("declined"))
    processor.force_flush(10_000)
    processor_plain.force_flush(10_000)
    planted = [e["exception"]["values"][-1]["stacktrace"]["frames"] for e in transport.events]
    plain = [e["exception"]["values"][-1]["stacktrace"]["frames"] for e in transport_plain.events]
    assert len(planted) == len(plain) == 2
    assert all(f["function"] == "planted" for frames in planted for f in frames)
    assert all(f["pre_context"].count("planted") == 1 for frames in planted for f in frames)
    assert all(f["function"] != "planted" for frames in plain for f in frames)
    assert all("planted" not in f.get("pre_context", []) for frames in plain for f in frames)

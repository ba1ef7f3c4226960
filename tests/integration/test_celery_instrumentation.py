"""The zero-code instrumentor with Celery installed: hooks connected and disconnected, and the
failures the worker's main process reports (no span there), sent to a loopback receiver."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from billiard.einfo import ExceptionWithTraceback
from celery import signals
from celery.exceptions import Reject
from celery.utils.serialization import UnpickleableExceptionWrapper
from opentelemetry.sdk.trace import TracerProvider

from otel_sentry_bridge.capture.celery_hooks import _UID
from otel_sentry_bridge.setup.instrumentor import SentryBridgeInstrumentor
from tests.celeryapp import tasks
from tests.support.receiver import SentryReceiver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


def _connected(signal: Any, name: str) -> bool:
    return any(key[0] == _UID + name for key, _ in signal.receivers)


@pytest.fixture
def instrumented(
    monkeypatch: pytest.MonkeyPatch, sentry_receiver: SentryReceiver
) -> Iterator[SentryBridgeInstrumentor]:
    monkeypatch.setenv("SENTRY_DSN", sentry_receiver.dsn)
    provider = TracerProvider()
    instrumentor = SentryBridgeInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


def _events(receiver: SentryReceiver) -> list[dict[str, Any]]:
    processor = SentryBridgeInstrumentor.processor
    assert processor is not None and processor.force_flush(5000)
    return list(receiver.events)


def _lost_worker_failure(request: dict[str, Any]) -> Exception:
    """What the main process does for a pool process that died: push the task's request
    (message headers included) and send ``task_failure``, outside any span."""
    try:
        raise RuntimeError("Worker exited prematurely: signal 9 (SIGKILL)")
    except RuntimeError as exc:
        error = exc
    tasks.charge.push_request(**request)
    try:
        signals.task_failure.send(
            sender=tasks.charge,
            task_id=request["id"],
            exception=error,
            args=(7, tasks.CARD_TOKEN, 10),
            kwargs={},
            einfo=None,
        )
    finally:
        tasks.charge.pop_request()
    return error


def test_the_instrumentor_connects_the_celery_hooks_and_disconnects_them(
    instrumented: SentryBridgeInstrumentor,
) -> None:
    names = ("task_failure", "task_prerun", "after_setup_logger", "worker_process_shutdown")
    assert all(_connected(getattr(signals, n), n) for n in names)
    instrumented.uninstrument()
    assert not any(_connected(getattr(signals, n), n) for n in names)


def test_a_failure_outside_any_span_takes_the_trace_from_the_task_message(
    instrumented: SentryBridgeInstrumentor, sentry_receiver: SentryReceiver
) -> None:
    _lost_worker_failure(
        {"id": "task-1", "retries": 1, "traceparent": f"00-{TRACE_ID}-{SPAN_ID}-01"}
    )
    (event,) = _events(sentry_receiver)
    assert event["contexts"]["trace"]["trace_id"] == TRACE_ID
    assert event["contexts"]["celery"] == {
        "task_name": "celeryapp.charge",
        "task_id": "task-1",
        "retries": 1,
        "args": [7, "[Filtered]", 10],
        "kwargs": {},
    }
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "celery", "handled": False}


def test_a_request_of_another_task_lends_neither_trace_nor_retries(
    instrumented: SentryBridgeInstrumentor, sentry_receiver: SentryReceiver
) -> None:
    # A hard time limit: the main process sends task_failure without the task's request.
    tasks.charge.push_request(id="other", retries=5, traceparent=f"00-{TRACE_ID}-{SPAN_ID}-01")
    try:
        signals.task_failure.send(
            sender=tasks.charge, task_id="task-2", exception=TimeoutError("hard limit"), einfo=None
        )
    finally:
        tasks.charge.pop_request()
    (event,) = _events(sentry_receiver)
    assert event["contexts"]["trace"]["trace_id"] != TRACE_ID
    assert "retries" not in event["contexts"]["celery"]


def test_celerys_log_line_of_a_reported_failure_is_not_a_second_event(
    instrumented: SentryBridgeInstrumentor, sentry_receiver: SentryReceiver
) -> None:
    error = _lost_worker_failure({"id": "task-3"})
    # As Celery's Request.on_failure logs it: billiard's wrapper in exc_info.
    wrapped = ExceptionWithTraceback(error, "Traceback (most recent call last):\n")
    logging.getLogger("celery.worker.request").error(
        "Task handler raised error: %r", error, exc_info=(type(error), wrapped, None)
    )
    logging.getLogger("celery.worker.request").error("an unrelated error")  # still sent
    events = _events(sentry_receiver)
    assert [e.get("logger") for e in events] == [None, "celery.worker.request"]
    assert events[1]["logentry"]["formatted"] == "an unrelated error"


def _fail(task: Any, exception: BaseException) -> None:
    signals.task_failure.send(sender=task, task_id="t", exception=exception, einfo=None)


def test_control_flow_and_expected_exceptions_are_not_sent(
    instrumented: SentryBridgeInstrumentor, sentry_receiver: SentryReceiver
) -> None:
    _fail(tasks.charge, Reject("poison message", requeue=False))
    _fail(tasks.decline_one, tasks.CardDeclined("declined"))  # throws=CardDeclined
    _fail(tasks.decline, tasks.CardDeclined("declined"))
    _fail(tasks.charge, tasks.GatewayTimeout("a control that is sent"))
    (event,) = _events(sentry_receiver)
    assert event["exception"]["values"][-1]["type"] == "GatewayTimeout"


def test_celerys_wrapper_of_an_exception_that_does_not_pickle_is_sent_as_that_exception(
    instrumented: SentryBridgeInstrumentor, sentry_receiver: SentryReceiver
) -> None:
    # Sent outside the handling of the exception itself (which the hook takes when it can):
    # the wrapper's module, class name and arguments, on the exception's frames.
    try:
        tasks.reserve.run(1011)
    except tasks.StockLocked as exc:
        wrapper = UnpickleableExceptionWrapper.from_exception(exc)
    _fail(tasks.reserve, wrapper)
    (event,) = _events(sentry_receiver)
    (exception,) = event["exception"]["values"]
    assert (exception["module"], exception["type"]) == ("tests.celeryapp.tasks", "StockLocked")
    assert exception["value"] == "stock locked for order 1011"
    assert exception["stacktrace"]["frames"][-1]["function"] == "_lock_stock"
    assert exception["mechanism"] == {"type": "celery", "handled": False}

"""``sys.excepthook`` and ``threading.excepthook``: chained, never twice, undone on request."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_sentry_bridge import SentrySpanProcessor, install_excepthooks
from otel_sentry_bridge.capture import excepthooks
from otel_sentry_bridge.capture.api import capture_exception
from otel_sentry_bridge.capture.excepthooks import uninstall_excepthooks
from otel_sentry_bridge.testing import CapturingTransport


class Previous:
    """A hook that was there before ours: records its calls, may raise."""

    def __init__(self, raises: BaseException | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.raises = raises

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)
        if self.raises is not None:
            raise self.raises


@pytest.fixture
def previous(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Previous, Previous]]:
    """Recording hooks in place of the interpreter's (and pytest's) for the test."""
    sys_hook, thread_hook = Previous(), Previous()
    monkeypatch.setattr(sys, "excepthook", sys_hook)
    monkeypatch.setattr(threading, "excepthook", thread_hook)
    monkeypatch.delattr(sys, "ps1", raising=False)
    yield sys_hook, thread_hook
    uninstall_excepthooks()


class Sent:
    """The events an active bridge sent, once everything queued so far went out."""

    def __init__(self) -> None:
        self.transport = CapturingTransport()
        self.processor = SentrySpanProcessor(transport=self.transport)

    @property
    def events(self) -> list[dict[str, Any]]:
        assert self.processor.force_flush(5000)
        return list(self.transport.events)


@pytest.fixture
def sent() -> Iterator[Sent]:
    sent = Sent()
    yield sent
    sent.processor.shutdown()


def _raised(exc: BaseException) -> tuple[type[BaseException], BaseException, TracebackType]:
    try:
        raise exc
    except BaseException as caught:
        assert caught.__traceback__ is not None
        return type(caught), caught, caught.__traceback__


def _thread_args(exc: BaseException | None, thread: threading.Thread | None = None) -> Any:
    exc_type, value, tb = _raised(exc) if exc is not None else (None, None, None)
    return threading.ExceptHookArgs([exc_type, value, tb, thread])  # type: ignore[call-arg]


def _mechanism(event: dict[str, Any]) -> dict[str, Any]:
    return dict(event["exception"]["values"][-1]["mechanism"])


def test_an_uncaught_exception_is_sent_unhandled_and_the_previous_hook_still_runs(
    previous: tuple[Previous, Previous], sent: Sent
) -> None:
    sys_hook, _ = previous
    install_excepthooks()
    assert sys.excepthook is not sys_hook
    args = _raised(RuntimeError("boom at top level"))

    sys.excepthook(*args)

    assert sys_hook.calls == [args]  # the traceback is still printed
    # Flushed before returning: the process is about to exit.
    (event,) = sent.transport.events
    assert _mechanism(event)["type"] == "excepthook"
    assert _mechanism(event)["handled"] is False
    assert event["exception"]["values"][-1]["value"] == "boom at top level"
    assert event["level"] == "error"


def test_an_exception_escaping_a_thread_is_sent_unhandled_and_the_previous_hook_runs(
    previous: tuple[Previous, Previous], sent: Sent
) -> None:
    _, thread_hook = previous
    install_excepthooks()
    assert threading.excepthook is not thread_hook

    def work() -> None:
        raise ValueError("boom in a thread")

    thread = threading.Thread(target=work, name="Thread-7 (work)")
    thread.start()
    thread.join()

    (call,) = thread_hook.calls
    assert call[0].exc_type is ValueError
    (event,) = sent.events
    assert _mechanism(event) == {**_mechanism(event), "type": "threading", "handled": False}
    assert event["transaction"] == "work"  # the target, not the numbered default name


def test_a_thread_started_in_a_trace_is_reported_in_that_trace(
    previous: tuple[Previous, Previous], sent: Sent
) -> None:
    """OpenTelemetry's threading instrumentation keeps the starting thread's context on the
    thread (``_otel_context``) and lets go of it before the hook runs (probe 2026-12-05: a
    thread crashing inside a request got a trace of its own)."""
    from opentelemetry import context

    install_excepthooks()
    provider = TracerProvider()
    provider.add_span_processor(sent.processor)

    def work() -> None:
        raise ValueError("boom in a request's thread")

    with provider.get_tracer("t").start_as_current_span("GET /report/") as span:
        thread = threading.Thread(target=work)
        thread._otel_context = context.get_current()  # type: ignore[attr-defined]
    thread.start()  # after the span ended, as a request that does not wait for its thread
    thread.join()

    (event,) = sent.events
    trace_context = event["contexts"]["trace"]
    assert trace_context["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert _mechanism(event)["type"] == "threading"


def test_the_bridges_own_threads_are_not_reported(
    previous: tuple[Previous, Previous], sent: Sent
) -> None:
    _, thread_hook = previous
    install_excepthooks()

    def work() -> None:
        raise RuntimeError("a bug in the bridge")

    thread = threading.Thread(target=work, name="otel-sentry-bridge-sender")
    thread.start()
    thread.join()

    assert len(thread_hook.calls) == 1
    assert sent.events == []


def test_the_previous_hook_runs_even_when_capturing_fails(
    previous: tuple[Previous, Previous], monkeypatch: pytest.MonkeyPatch
) -> None:
    sys_hook, thread_hook = previous
    install_excepthooks()

    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("capture is broken")

    monkeypatch.setattr(excepthooks, "capture_exception", broken)
    args = _raised(KeyError("k"))
    sys.excepthook(*args)
    thread_args = _thread_args(KeyError("k"))
    threading.excepthook(thread_args)

    assert sys_hook.calls == [args]
    assert thread_hook.calls == [(thread_args,)]


def test_the_previous_hooks_error_is_not_swallowed(
    previous: tuple[Previous, Previous], sent: Sent
) -> None:
    sys_hook, _ = previous
    sys_hook.raises = OSError("stderr is closed")
    install_excepthooks()

    with pytest.raises(OSError, match="stderr is closed"):
        sys.excepthook(*_raised(RuntimeError("boom")))
    assert len(sent.events) == 1


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3)])
def test_keyboard_interrupt_and_system_exit_are_not_errors(
    previous: tuple[Previous, Previous], sent: Sent, exc: BaseException
) -> None:
    sys_hook, thread_hook = previous
    install_excepthooks()

    sys.excepthook(*_raised(exc))
    threading.excepthook(_thread_args(exc))

    assert len(sys_hook.calls) == len(thread_hook.calls) == 1
    assert sent.events == []


def test_an_exception_already_captured_is_not_sent_again(
    previous: tuple[Previous, Previous], sent: Sent
) -> None:
    sys_hook, _ = previous
    install_excepthooks()
    args = _raised(RuntimeError("logged, then escaped"))
    assert capture_exception(args[1], mechanism="logging") is not None

    sys.excepthook(*args)

    assert sys_hook.calls == [args]
    (event,) = sent.events
    assert _mechanism(event)["type"] == "logging"  # the first capture, only


def test_an_interactive_session_is_not_reported(
    previous: tuple[Previous, Previous],
    sent: Sent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sys_hook, _ = previous
    monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)
    install_excepthooks()

    sys.excepthook(*_raised(NameError("name 'pritn' is not defined")))

    assert len(sys_hook.calls) == 1
    assert sent.events == []


def test_installing_twice_installs_once(previous: tuple[Previous, Previous], sent: Sent) -> None:
    sys_hook, _ = previous
    install_excepthooks()
    ours = sys.excepthook, threading.excepthook
    install_excepthooks()

    assert (sys.excepthook, threading.excepthook) == ours
    sys.excepthook(*_raised(RuntimeError("once")))
    assert len(sys_hook.calls) == 1
    assert len(sent.events) == 1


def test_uninstall_restores_the_previous_hooks(previous: tuple[Previous, Previous]) -> None:
    sys_hook, thread_hook = previous
    install_excepthooks()

    uninstall_excepthooks()

    assert sys.excepthook is sys_hook
    assert threading.excepthook is thread_hook
    uninstall_excepthooks()  # idempotent
    assert sys.excepthook is sys_hook


def test_a_hook_chained_after_ours_is_kept_and_ours_only_passes_on(
    previous: tuple[Previous, Previous], sent: Sent
) -> None:
    sys_hook, _ = previous
    install_excepthooks()
    ours = sys.excepthook
    later = Previous()

    def wrapper(*args: Any) -> None:  # another library chains onto ours
        later(*args)
        ours(*args)

    sys.excepthook = wrapper
    uninstall_excepthooks()
    assert sys.excepthook is wrapper  # not ours to take away
    sys.excepthook(*_raised(RuntimeError("after uninstall")))
    assert len(later.calls) == len(sys_hook.calls) == 1
    assert sent.events == []  # ours only passes on now

    install_excepthooks()  # a new one on top; the old one still only passes on
    assert sys.excepthook is not wrapper
    sys.excepthook(*_raised(RuntimeError("installed again")))
    assert len(later.calls) == len(sys_hook.calls) == 2  # one traceback
    assert len(sent.events) == 1  # one event


def test_a_crash_carries_the_process_resource_but_no_per_process_tag(
    previous: tuple[Previous, Previous], sent: Sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    resource = Resource.create({"service.name": "jobs", "service.instance.id": "4f1c-random"})
    provider = TracerProvider(resource=resource)
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    install_excepthooks()

    sys.excepthook(*_raised(RuntimeError("boom")))

    (event,) = sent.events
    assert event["tags"]["service.name"] == "jobs"
    assert "service.instance.id" not in event["tags"]  # a random id per process
    assert event["contexts"]["otel"]["resource"]["service.instance.id"] == "4f1c-random"

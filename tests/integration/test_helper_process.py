"""``helper_process=True``: conversion and delivery in a spawned helper process. Real helper
processes, real pipes, a real receiver (which runs every event through sentry-relay)."""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler
from opentelemetry.trace import SpanKind

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.offload import link as link_module
from otel_sentry_bridge.offload.link import HelperLink, python_executable_problem
from tests.support.processes import base_env
from tests.support.receiver import SentryReceiver


def _alive(pid: int) -> bool:
    """Whether any thread of process ``pid`` is still there (the first thread of a killed
    process turns zombie before the others are gone, and they hold its files until then)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/stat", encoding="ascii") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                    return True
        except OSError:
            continue
    return False


def _until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _bridge(
    receiver: SentryReceiver, sampler: Sampler | None = None, **options: Any
) -> tuple[SentrySpanProcessor, TracerProvider, HelperLink]:
    """A processor with ``helper_process`` on (not yet started; or as ``options`` say), its
    provider and its link."""
    options.setdefault("helper_process", True)
    processor = SentrySpanProcessor(dsn=receiver.dsn, **options)
    provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    provider.add_span_processor(processor)
    link = processor.bridge.link
    assert link is not None
    return processor, provider, link


@pytest.fixture
def opened(sentry_receiver: SentryReceiver) -> Iterator[tuple[SentrySpanProcessor, TracerProvider]]:
    processor, provider, link = _bridge(sentry_receiver)
    assert link.start(30)  # else the first errors are converted here
    try:
        yield processor, provider
    finally:
        processor.shutdown()


def _fail(provider: TracerProvider, message: str) -> tuple[int, int]:
    """A server span that records a ValueError; its (trace id, span id)."""
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("GET /pay", kind=SpanKind.SERVER) as span:
        with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as call:
            call.set_attribute("db.system", "postgresql")
            call.set_attribute("db.statement", "SELECT 1")
        try:
            raise ValueError(message)
        except ValueError as exc:
            span.record_exception(exc)
        context = span.get_span_context()
    return context.trace_id, context.span_id


def _sent_through_helper(
    processor: SentrySpanProcessor, provider: TracerProvider, message: str
) -> tuple[HelperLink, int]:
    """One error sent through the helper (started) and flushed: the link and the helper's
    process id."""
    _fail(provider, message)
    link = processor.bridge.link
    assert link is not None and link.helper_pid is not None
    assert processor.force_flush(20_000)
    return link, link.helper_pid


def test_errors_go_through_the_helper_with_their_trace_and_breadcrumbs(
    opened: tuple[SentrySpanProcessor, TracerProvider], sentry_receiver: SentryReceiver
) -> None:
    processor, provider = opened
    trace_id, span_id = _fail(provider, "card declined")
    assert processor.force_flush(20_000)
    # flush waited for the helper: the event is there now, not later
    [event] = sentry_receiver.accepted
    link = processor.bridge.link
    assert link is not None and link.helper_pid not in (None, os.getpid())
    assert processor.pipeline.sent_count == 0  # nothing converted or sent in this process
    assert event["exception"]["values"][-1]["value"] == "card declined"
    trace = event["contexts"]["trace"]
    assert (trace["trace_id"], trace["span_id"]) == (f"{trace_id:032x}", f"{span_id:016x}")
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert frames[-1]["function"] == "_fail" and frames[-1]["context_line"].strip()
    crumbs = event["breadcrumbs"]["values"]
    assert [c["message"] for c in crumbs if c.get("category") == "query"] == ["SELECT 1"]


def test_transactions_are_read_on_the_worker_and_sent_by_the_helper(
    sentry_receiver: SentryReceiver,
) -> None:
    processor, provider, link = _bridge(sentry_receiver, traces_sample_rate=1.0)
    try:
        assert link.start(30)
        trace_id, _ = _fail(provider, "in a transaction")
        assert processor.force_flush(20_000)
        [transaction] = sentry_receiver.wait_for_transactions(1)
        [event] = sentry_receiver.accepted
    finally:
        processor.shutdown()
    assert processor.pipeline.sent_count == 0
    assert transaction["transaction"] == "GET /pay"
    assert [span["description"] for span in transaction["spans"]] == ["SELECT 1"]
    assert transaction["contexts"]["trace"]["trace_id"] == f"{trace_id:032x}"
    assert event["contexts"]["trace"]["trace_id"] == f"{trace_id:032x}"


def test_an_error_in_a_sampled_out_trace_goes_through_the_helper_with_its_trace_id(
    sentry_receiver: SentryReceiver,
) -> None:
    from otel_sentry_bridge.capture.api import capture_exception

    processor, provider, link = _bridge(sentry_receiver, ALWAYS_OFF)
    try:
        assert link.start(30)
        with provider.get_tracer("tests").start_as_current_span("GET /pay") as span:
            assert not span.is_recording()
            trace_id = span.get_span_context().trace_id
            try:
                raise ValueError("sampled out")
            except ValueError as exc:
                capture_exception(exc)
        assert processor.force_flush(20_000)
    finally:
        processor.shutdown()
    [event] = sentry_receiver.accepted
    assert processor.pipeline.sent_count == 0
    assert event["contexts"]["trace"]["trace_id"] == f"{trace_id:032x}"
    [frame] = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert frame["function"].endswith("with_its_trace_id")
    assert frame["context_line"].strip() == 'raise ValueError("sampled out")'


def test_shutdown_sends_what_was_shipped_and_the_helper_exits(
    sentry_receiver: SentryReceiver,
) -> None:
    processor, provider, link = _bridge(sentry_receiver)
    assert link.start(30)
    for n in range(20):
        _fail(provider, f"failure {n}")
    pid = link.helper_pid
    assert pid is not None
    processor.shutdown()  # no flush before: the helper drains its pipe at the end of it
    values = sorted(e["exception"]["values"][-1]["value"] for e in sentry_receiver.accepted)
    assert values == sorted(f"failure {n}" for n in range(20))
    assert not _alive(pid)
    _fail(provider, "after shutdown")  # refused, never raised into the application
    assert not link.usable


def test_the_helper_imports_neither_the_opentelemetry_sdk_nor_requests(
    sentry_receiver: SentryReceiver,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A helper starts at every storm: it imports what converting and sending need, not the
    SDK (it never sees a span) nor requests (no proxy applies), which were two thirds of its
    start. Python's own import log, written by the helper to the standard error it shares
    with this process, says what it imported in its whole life, the first send included."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")  # read by the helper's interpreter
    processor, provider, link = _bridge(sentry_receiver)
    assert link.start(30)
    _, pid = _sent_through_helper(processor, provider, "imports")
    processor.shutdown()
    _until(lambda: not _alive(pid))
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in capfd.readouterr().err.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "otel_sentry_bridge.offload.codec" in imported  # the log is the helper's
    assert "otel_sentry_bridge.deliver.http_conn" in imported
    heavy = {m for m in imported if m.split(".")[0] in ("requests", "urllib3", "psutil", "wrapt")}
    assert not heavy
    assert not {
        m for m in imported if m.startswith(("opentelemetry.sdk", "otel_sentry_bridge.processor"))
    }
    assert [e["exception"]["values"][-1]["value"] for e in sentry_receiver.accepted] == ["imports"]


def test_a_full_pipe_hands_errors_to_the_worker_and_none_is_lost_or_sent_twice(
    opened: tuple[SentrySpanProcessor, TracerProvider], sentry_receiver: SentryReceiver
) -> None:
    processor, provider = opened
    link, pid = _sent_through_helper(processor, provider, "first")
    os.kill(pid, signal.SIGSTOP)  # a helper far behind: its pipe fills up
    made = 0
    try:
        # ~1 KB each: until the pipe (1 MiB) is full and the worker got some, then more
        while processor.bridge.queued < 50:
            _fail(provider, f"failure {made}")
            made += 1
            assert made < 20_000, "the pipe never filled up"
    finally:
        os.kill(pid, signal.SIGCONT)
    assert processor.force_flush(60_000)
    values = [e["exception"]["values"][-1]["value"] for e in sentry_receiver.accepted]
    assert sorted(values) == sorted(["first", *(f"failure {n}" for n in range(made))])
    assert processor.pipeline.sent_count == processor.bridge.queued
    assert link.usable


def test_a_lost_helper_leaves_the_errors_to_the_worker_with_a_warning(
    opened: tuple[SentrySpanProcessor, TracerProvider],
    sentry_receiver: SentryReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    processor, provider = opened
    link, pid = _sent_through_helper(processor, provider, "before")
    os.kill(pid, signal.SIGKILL)
    _until(lambda: not _alive(pid))
    with caplog.at_level(logging.WARNING, logger="otel_sentry_bridge"):
        for n in range(3):
            _fail(provider, f"after {n}")
    assert processor.force_flush(20_000)
    values = [e["exception"]["values"][-1]["value"] for e in sentry_receiver.accepted]
    assert values[0] == "before"
    # The first one after the loss may be the one that found the pipe broken: it is kept too.
    assert sorted(values[1:]) == ["after 0", "after 1", "after 2"]
    assert not link.usable
    assert "helper process exited" in caplog.text


def test_an_error_with_a_value_the_codec_refuses_is_converted_in_this_process(
    opened: tuple[SentrySpanProcessor, TracerProvider], sentry_receiver: SentryReceiver
) -> None:
    from otel_sentry_bridge.capture.api import capture_exception
    from otel_sentry_bridge.capture.record import Details

    processor, provider = opened
    _fail(provider, "plain")
    not_plain = {"handle": (lambda: None)}
    with provider.get_tracer("tests").start_as_current_span("job"):
        try:
            raise KeyError("odd extra")
        except KeyError as exc:
            capture_exception(exc, details=Details(extra=not_plain))
    assert processor.force_flush(20_000)
    values = sorted(e["exception"]["values"][-1]["value"] for e in sentry_receiver.accepted)
    assert values == ["'odd extra'", "plain"]
    assert processor.pipeline.sent_count == 1


def test_before_send_keeps_the_work_in_this_process(
    sentry_receiver: SentryReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_sentry_bridge"):
        processor = SentrySpanProcessor(
            dsn=sentry_receiver.dsn, helper_process=True, before_send=lambda event: event
        )
    try:
        assert processor.bridge.link is None
        assert "helper_process is ignored with before_send" in caplog.text
    finally:
        processor.shutdown()


@pytest.mark.parametrize("executable", ["exits", "missing", "uwsgi"])
def test_a_helper_that_cannot_start_loses_no_error(
    sentry_receiver: SentryReceiver,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    executable: str,
) -> None:
    exits = tmp_path / "python3"  # looks like an interpreter, ends before it is ready
    exits.write_text("#!/bin/sh\nexit 1\n")
    exits.chmod(0o755)
    paths = {"exits": str(exits), "missing": "/nonexistent/python", "uwsgi": "/usr/bin/uwsgi"}
    monkeypatch.setattr(sys, "executable", paths[executable])
    processor, provider, link = _bridge(sentry_receiver)
    try:
        with caplog.at_level(logging.WARNING, logger="otel_sentry_bridge"):
            assert not link.start(30)
            for n in range(5):
                _fail(provider, f"failure {n}")
        assert processor.force_flush(20_000)
    finally:
        processor.shutdown()
    values = sorted(e["exception"]["values"][-1]["value"] for e in sentry_receiver.accepted)
    assert values == [f"failure {n}" for n in range(5)]
    assert not link.usable
    assert "helper process" in caplog.text


def test_the_first_errors_are_converted_here_while_a_thread_starts_the_helper(
    sentry_receiver: SentryReceiver,
) -> None:
    processor, provider, link = _bridge(sentry_receiver)
    try:
        _fail(provider, "first")  # not waiting for a process to be spawned, nor lost
        assert link.start(30)
        _fail(provider, "second")
        assert processor.force_flush(20_000)
    finally:
        processor.shutdown()
    values = sorted(e["exception"]["values"][-1]["value"] for e in sentry_receiver.accepted)
    assert values == ["first", "second"]
    assert processor.pipeline.sent_count == 1  # the first one, here


def test_no_helper_where_sigpipe_would_kill_the_process(
    sentry_receiver: SentryReceiver,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    getsignal = signal.getsignal
    monkeypatch.setattr(
        signal,
        "getsignal",
        lambda signum: signal.SIG_DFL if signum == signal.SIGPIPE else getsignal(signum),
    )
    processor, provider, link = _bridge(sentry_receiver)
    try:
        with caplog.at_level(logging.WARNING, logger="otel_sentry_bridge"):
            assert not link.start(30)
            _fail(provider, "kept")
        assert processor.force_flush(20_000)
    finally:
        processor.shutdown()
    assert [e["exception"]["values"][-1]["value"] for e in sentry_receiver.accepted] == ["kept"]
    assert link.helper_pid is None
    assert "SIGPIPE is not ignored" in caplog.text


_PARENT = textwrap.dedent(
    """
    import os, signal, sys
    from opentelemetry.sdk.trace import TracerProvider
    from otel_sentry_bridge import SentrySpanProcessor

    processor = SentrySpanProcessor(dsn=sys.argv[1], helper_process=True)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("script")

    def fail(message):
        with tracer.start_as_current_span("work") as span:
            try:
                raise RuntimeError(message)
            except RuntimeError as exc:
                span.record_exception(exc)

    mode = sys.argv[2]
    assert processor.bridge.link.start(30)
    if mode == "kill":
        for n in range(int(sys.argv[3])):
            fail(f"failure {n}")
        print(processor.bridge.link.helper_pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    elif mode == "fork":
        fail("in the parent")
        parent_helper = processor.bridge.link.helper_pid
        child = os.fork()
        if child == 0:
            assert processor.bridge.link.start(30)
            fail("in the child")
            ok = processor.force_flush(20_000)
            child_helper = processor.bridge.link.helper_pid
            print(child_helper, int(ok), flush=True)
            processor.shutdown()
            os._exit(0 if child_helper != parent_helper else 3)
        _, status = os.waitpid(child, 0)
        print(parent_helper, status, flush=True)
        processor.shutdown()
    elif mode == "fork-mid-flush":
        link = processor.bridge.link
        link._lock.acquire()  # as threads of the parent shipping and flushing at the fork
        link._flushing.acquire()
        child = os.fork()
        if child == 0:
            fail("in the child")
            ok = processor.force_flush(20_000)
            processor.shutdown()
            os._exit(0 if ok else 3)
        link._lock.release()
        link._flushing.release()
        _, status = os.waitpid(child, 0)
        print(status, flush=True)
        processor.shutdown()
    """
)


def _script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "parent.py"
    script.write_text(_PARENT)
    return subprocess.run(
        [sys.executable, str(script), *args],
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_kill_9_of_the_parent_loses_nothing_it_shipped_and_the_helper_then_exits(
    sentry_receiver: SentryReceiver, tmp_path: Path
) -> None:
    done = _script(tmp_path, sentry_receiver.dsn, "kill", "200")
    assert done.returncode == -signal.SIGKILL, done.stderr
    helper = int(done.stdout.split()[0])
    accepted = sentry_receiver.wait_for_accepted(200, timeout=30)
    values = sorted(e["exception"]["values"][-1]["value"] for e in accepted)
    assert values == sorted(f"failure {n}" for n in range(200))
    _until(lambda: not _alive(helper))  # its parent is gone: it sent what it had, and ended


def test_a_forked_child_starts_its_own_helper_and_each_exits_with_its_process(
    sentry_receiver: SentryReceiver, tmp_path: Path
) -> None:
    done = _script(tmp_path, sentry_receiver.dsn, "fork")
    assert done.returncode == 0, done.stderr
    (child_helper, flushed), (parent_helper, status) = (
        line.split() for line in done.stdout.splitlines()
    )
    assert (flushed, status) == ("1", "0"), done.stderr  # own helper, flushed through it
    assert child_helper != parent_helper
    values = sorted(e["exception"]["values"][-1]["value"] for e in sentry_receiver.accepted)
    assert values == ["in the child", "in the parent"]
    for pid in (int(child_helper), int(parent_helper)):
        _until(lambda pid=pid: not _alive(pid))  # type: ignore[misc]


def test_a_child_forked_while_the_parent_ships_or_flushes_does_not_hang(
    sentry_receiver: SentryReceiver, tmp_path: Path
) -> None:
    done = _script(tmp_path, sentry_receiver.dsn, "fork-mid-flush")
    assert (done.returncode, done.stdout.split()) == (0, ["0"]), done.stderr
    values = [e["exception"]["values"][-1]["value"] for e in sentry_receiver.accepted]
    assert values == ["in the child"]


def test_a_helper_whose_parent_is_gone_before_an_answer_still_sends_what_follows(
    sentry_receiver: SentryReceiver, tmp_path: Path
) -> None:
    """The pipe as a parent killed right after a flush request leaves it: the helper cannot
    answer (its answers' reader is closed) and must still read on to the end."""
    from otel_sentry_bridge.offload.codec import shipment_frame
    from otel_sentry_bridge.offload.shipment import CONFIG, FLUSH, FLUSH_BODY, frame
    from otel_sentry_bridge.setup.config import load_settings

    settings = load_settings({"dsn": sentry_receiver.dsn})
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _fail(provider, "after the flush")
    [span] = [s for s in exporter.get_finished_spans() if s.events]
    reader = SentrySpanProcessor(dsn=sentry_receiver.dsn)
    try:
        shipment = reader.pipeline.shipment(span)
    finally:
        reader.shutdown()
    stream = tmp_path / "pipe"
    stream.write_bytes(
        frame(CONFIG, pickle.dumps(settings))
        + frame(FLUSH, FLUSH_BODY.pack(1, 5_000))
        + shipment_frame(shipment)
    )
    answers_read, answers_write = os.pipe()
    os.close(answers_read)  # nobody reads the answers any more
    try:
        with stream.open("rb") as source:
            done = subprocess.run(
                [sys.executable, "-m", "otel_sentry_bridge.offload.helper"],
                stdin=source,
                stdout=answers_write,
                env=base_env(),
                stderr=subprocess.PIPE,
                timeout=60,
            )
    finally:
        os.close(answers_write)
    assert done.returncode == 0, done.stderr
    values = [e["exception"]["values"][-1]["value"] for e in sentry_receiver.accepted]
    assert values == ["after the flush"]


# -- "auto" (the default): a helper only while errors come in a storm --------------------------


def _storm(provider: TracerProvider, prefix: str, count: int) -> list[str]:
    messages = [f"{prefix} {n}" for n in range(count)]
    for message in messages:
        _fail(provider, message)
    return messages


def test_auto_is_the_default_and_a_few_errors_start_no_helper(
    sentry_receiver: SentryReceiver,
) -> None:
    processor = SentrySpanProcessor(dsn=sentry_receiver.dsn)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    link = processor.bridge.link
    try:
        assert link is not None
        made = _storm(provider, "calm", 20)
        assert processor.force_flush(20_000)
        assert link.helper_pid is None  # no process started for 20 errors
    finally:
        processor.shutdown()
    values = sorted(e["exception"]["values"][-1]["value"] for e in sentry_receiver.accepted)
    assert values == sorted(made)
    assert processor.pipeline.sent_count == 20


def test_auto_starts_a_helper_at_a_storm_ends_it_when_idle_and_starts_another_at_the_next(
    sentry_receiver: SentryReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link_module, "IDLE_S", 0.5)
    processor, provider, link = _bridge(sentry_receiver, helper_process="auto")
    made: list[str] = []
    try:
        made += _storm(provider, "first storm", link_module.STORM_ERRORS)
        _until(link.taking, 30)  # started at the storm, ready a moment later
        first = link.helper_pid
        assert first is not None and _alive(first)
        made += _storm(provider, "in the helper", 30)
        assert processor.force_flush(20_000)
        # Idle for IDLE_S: the helper is ended (after sending what it had) and reaped.
        _until(lambda: link.helper_pid is None and not _alive(first))
        assert link.usable
        made += _storm(provider, "calm again", 5)  # converted here: no storm
        assert link.helper_pid is None
        made += _storm(provider, "second storm", link_module.STORM_ERRORS)
        _until(link.taking, 30)
        second = link.helper_pid
        assert second not in (None, first)
        made += _storm(provider, "in the second helper", 30)
        assert processor.force_flush(20_000)
    finally:
        processor.shutdown()
    values = [e["exception"]["values"][-1]["value"] for e in sentry_receiver.accepted]
    assert sorted(values) == sorted(made)  # each error once, whoever converted it
    # The errors after each helper was ready went through it, not through this process.
    assert processor.pipeline.sent_count <= len(made) - 60


def test_auto_keeps_an_idle_helper_that_still_holds_errors_it_could_not_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server down (no spool): ending the helper would give up what it holds; it stays,
    retrying, and is ended with its process."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    monkeypatch.setattr(link_module, "IDLE_S", 0.3)
    processor = SentrySpanProcessor(
        dsn=f"http://public@127.0.0.1:{port}/1", helper_process="auto", shutdown_timeout=0.5
    )
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    link = processor.bridge.link
    assert link is not None
    try:
        _storm(provider, "unsent", link_module.STORM_ERRORS)
        _until(link.taking, 30)
        pid = link.helper_pid
        assert pid is not None
        _storm(provider, "held by the helper", 5)
        deadline = time.monotonic() + 3.0  # ten idle times
        while time.monotonic() < deadline:
            assert link.helper_pid == pid and _alive(pid)
            time.sleep(0.1)
    finally:
        processor.shutdown()
    _until(lambda: not _alive(pid))


def test_auto_without_a_python_interpreter_stays_in_process_and_says_nothing(
    sentry_receiver: SentryReceiver,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "executable", "/usr/local/bin/uwsgi")  # an embedding server
    processor, provider, link = _bridge(sentry_receiver, helper_process="auto")
    try:
        with caplog.at_level(logging.WARNING, logger="otel_sentry_bridge"):
            made = _storm(provider, "storm", link_module.STORM_ERRORS + 10)
            assert processor.force_flush(20_000)
    finally:
        processor.shutdown()
    assert link.helper_pid is None and not link.usable
    assert caplog.text == ""
    assert processor.pipeline.sent_count == len(made)
    assert len(sentry_receiver.accepted) == len(made)


@pytest.mark.parametrize(
    ("executable", "usable"),
    [
        ("/usr/bin/python3.11", True),
        ("/srv/app/.venv/bin/python", True),
        ("/opt/pypy/bin/pypy3", True),
        ("/usr/bin/uwsgi", False),
        ("/usr/sbin/httpd", False),
        ("", False),
    ],
)
def test_python_executable_problem(executable: str, usable: bool) -> None:
    assert (python_executable_problem(executable) is None) == usable

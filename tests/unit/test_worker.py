from __future__ import annotations

import json
import logging
import os
import select
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator

import pytest

from otel_sentry_bridge.deliver.worker import Worker, is_worker_thread

WAIT = 5.0  # upper bound for anything that should happen promptly


class Recorder:
    """A handler that records items; items in ``blocking`` wait for ``gate`` first."""

    def __init__(self, blocking: set[str] | None = None) -> None:
        self.blocking = blocking or set()
        self.gate = threading.Event()
        self.started = threading.Event()  # set when a blocking item enters the handler
        self.items: list[str] = []
        self.worker_name = ""  # the worker thread's name, set by the fixture
        self.on_worker_thread: list[bool] = []
        self._lock = threading.Lock()

    def __call__(self, item: str) -> None:
        with self._lock:
            self.on_worker_thread.append(is_worker_thread())
        if item in self.blocking:
            self.started.set()
            self.gate.wait(WAIT * 4)
        if item.startswith("boom"):
            raise RuntimeError(f"handler failed on {item}")
        with self._lock:
            self.items.append(item)

    def handled(self) -> list[str]:
        with self._lock:
            return list(self.items)


MakeWorker = Callable[..., tuple[Worker[str], Recorder]]


@pytest.fixture
def make_worker() -> Iterator[MakeWorker]:
    """Builds workers and, at teardown, releases their handlers and stops their threads."""
    made: list[tuple[Worker[str], Recorder]] = []

    def make(
        *, maxsize: int = 100, blocking: set[str] | None = None
    ) -> tuple[Worker[str], Recorder]:
        recorder = Recorder(blocking)
        recorder.worker_name = f"otel-sentry-bridge-test-{uuid.uuid4().hex}"
        worker: Worker[str] = Worker(recorder, maxsize=maxsize, name=recorder.worker_name)
        made.append((worker, recorder))
        return worker, recorder

    yield make
    for worker, recorder in made:
        recorder.gate.set()
        worker.shutdown(WAIT)


def threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    """For states with no event to wait on: check with short waits until a deadline."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        pause.wait(0.005)
    return True


# -- submit ----------------------------------------------------------------------------------


def test_items_are_handled_in_submission_order(make_worker: MakeWorker) -> None:
    worker, recorder = make_worker()
    items = [f"item-{i}" for i in range(50)]

    assert all(worker.submit(item) for item in items)
    assert worker.flush(WAIT)

    assert recorder.handled() == items


def test_submit_returns_false_when_full_without_blocking(make_worker: MakeWorker) -> None:
    worker, recorder = make_worker(maxsize=3, blocking={"first"})
    assert worker.submit("first")
    assert recorder.started.wait(WAIT)  # "first" is off the queue, stuck in the handler

    results: list[bool] = []
    done = threading.Event()

    def submit_all() -> None:
        results.extend(worker.submit(f"queued-{i}") for i in range(5))
        done.set()

    threading.Thread(target=submit_all, daemon=True).start()

    assert done.wait(WAIT), "submit blocked on a full queue"
    assert results == [True, True, True, False, False]
    assert len(worker) == 3

    recorder.gate.set()
    assert worker.flush(WAIT)
    assert recorder.handled() == ["first", "queued-0", "queued-1", "queued-2"]


def test_queue_accepts_again_once_items_are_handled(make_worker: MakeWorker) -> None:
    worker, recorder = make_worker(maxsize=1, blocking={"first"})
    assert worker.submit("first")
    assert recorder.started.wait(WAIT)
    assert worker.submit("second")
    assert not worker.submit("refused")

    recorder.gate.set()
    assert worker.flush(WAIT)

    assert worker.submit("third")
    assert worker.flush(WAIT)
    assert recorder.handled() == ["first", "second", "third"]


def test_no_thread_is_started_before_the_first_submit() -> None:
    name = f"otel-sentry-bridge-lazy-{uuid.uuid4().hex}"
    worker: Worker[str] = Worker(lambda item: None, maxsize=10, name=name)
    try:
        assert threads_named(name) == []
        assert worker.flush(0.1)  # nothing submitted: trivially flushed, still no thread
        assert threads_named(name) == []

        assert worker.submit("x")

        assert len(threads_named(name)) == 1
        assert all(t.daemon for t in threads_named(name))
    finally:
        worker.shutdown(WAIT)


def test_one_thread_serves_many_submits(make_worker: MakeWorker) -> None:
    worker, recorder = make_worker()

    for i in range(20):
        assert worker.submit(str(i))
    assert worker.flush(WAIT)

    assert len(threads_named(recorder.worker_name)) == 1


# -- handler failures ------------------------------------------------------------------------


def test_handler_exception_does_not_kill_the_thread(
    make_worker: MakeWorker, caplog: pytest.LogCaptureFixture
) -> None:
    worker, recorder = make_worker()

    with caplog.at_level(logging.WARNING, logger="otel_sentry_bridge"):
        for item in ["a", "boom-1", "b", "boom-2", "c"]:
            assert worker.submit(item)
        assert worker.flush(WAIT)

    assert recorder.handled() == ["a", "b", "c"]
    assert worker.submit("after")
    assert worker.flush(WAIT)
    assert recorder.handled()[-1] == "after"
    failures = [r for r in caplog.records if r.exc_info and r.name == "otel_sentry_bridge"]
    assert len(failures) == 2


# -- worker thread identity ------------------------------------------------------------------


def test_is_worker_thread_is_true_only_inside_the_handler(make_worker: MakeWorker) -> None:
    worker, recorder = make_worker()

    assert worker.submit("x")
    assert worker.flush(WAIT)

    assert recorder.on_worker_thread == [True]
    assert not is_worker_thread()


def test_is_worker_thread_is_false_on_other_threads() -> None:
    seen: list[bool] = []
    thread = threading.Thread(target=lambda: seen.append(is_worker_thread()))
    thread.start()
    thread.join(WAIT)

    assert seen == [False]


# -- flush -----------------------------------------------------------------------------------


def test_flush_returns_true_after_everything_submitted_is_handled(make_worker: MakeWorker) -> None:
    worker, recorder = make_worker(blocking={"slow"})
    for item in ["slow", "a", "b"]:
        assert worker.submit(item)
    assert recorder.started.wait(WAIT)

    flushed: list[bool] = []
    done = threading.Event()

    def flush() -> None:
        flushed.append(worker.flush(WAIT))
        done.set()

    threading.Thread(target=flush, daemon=True).start()
    assert not done.wait(0.1), "flush returned while an item was still being handled"

    recorder.gate.set()

    assert done.wait(WAIT)
    assert flushed == [True]
    assert recorder.handled() == ["slow", "a", "b"]


def test_flush_returns_false_in_about_the_timeout_when_handler_is_stuck(
    make_worker: MakeWorker,
) -> None:
    worker, recorder = make_worker(blocking={"stuck"})
    assert worker.submit("stuck")
    assert worker.submit("waiting")
    assert recorder.started.wait(WAIT)

    start = time.monotonic()
    result = worker.flush(0.3)
    elapsed = time.monotonic() - start

    assert result is False
    assert 0.3 <= elapsed < 0.3 + 1.0
    assert recorder.handled() == []


def test_flush_with_zero_timeout_does_not_wait(make_worker: MakeWorker) -> None:
    worker, recorder = make_worker(blocking={"stuck"})
    assert worker.submit("stuck")
    assert recorder.started.wait(WAIT)

    start = time.monotonic()
    assert worker.flush(0) is False
    assert time.monotonic() - start < 0.5


def test_flush_on_an_idle_worker_is_true(make_worker: MakeWorker) -> None:
    worker, _ = make_worker()
    assert worker.submit("x")
    assert worker.flush(WAIT)

    assert worker.flush(0)


# -- shutdown --------------------------------------------------------------------------------


def test_shutdown_drains_queued_items_before_stopping(make_worker: MakeWorker) -> None:
    worker, recorder = make_worker(blocking={"first"})
    for item in ["first", "a", "b", "c"]:
        assert worker.submit(item)
    assert recorder.started.wait(WAIT)

    result: list[bool] = []
    done = threading.Event()

    def shutdown() -> None:
        result.append(worker.shutdown(WAIT))
        done.set()

    threading.Thread(target=shutdown, daemon=True).start()
    # Release the handler only once shutdown has closed the queue, so "a".."c" are
    # drained by the shutdown rather than handled before it.
    assert wait_until(lambda: not worker.submit("probe"))
    recorder.gate.set()

    assert done.wait(WAIT)
    assert result == [True]
    assert recorder.handled() == ["first", "a", "b", "c"]
    assert threads_named(recorder.worker_name) == []


def test_shutdown_is_idempotent(make_worker: MakeWorker) -> None:
    worker, recorder = make_worker()
    assert worker.submit("x")

    assert worker.shutdown(WAIT) is True
    assert worker.shutdown(WAIT) is True
    assert worker.shutdown(0) is True

    assert recorder.handled() == ["x"]


def test_submit_is_refused_after_shutdown(make_worker: MakeWorker) -> None:
    worker, recorder = make_worker()
    assert worker.submit("before")
    assert worker.shutdown(WAIT)

    assert worker.submit("after") is False
    assert worker.flush(0.1)
    assert recorder.handled() == ["before"]
    assert len(worker) == 0


def test_shutdown_before_any_submit_starts_no_thread() -> None:
    name = f"otel-sentry-bridge-never-{uuid.uuid4().hex}"
    worker: Worker[str] = Worker(lambda item: None, maxsize=10, name=name)

    assert worker.shutdown(WAIT) is True
    assert worker.submit("x") is False
    assert threads_named(name) == []


def test_shutdown_returns_false_in_about_the_timeout_when_handler_is_stuck(
    make_worker: MakeWorker,
) -> None:
    worker, recorder = make_worker(blocking={"stuck"})
    assert worker.submit("stuck")
    assert recorder.started.wait(WAIT)

    start = time.monotonic()
    result = worker.shutdown(0.3)
    elapsed = time.monotonic() - start

    assert result is False
    assert 0.3 <= elapsed < 0.3 + 1.0


def test_items_queued_at_a_timed_out_shutdown_are_still_handled_later(
    make_worker: MakeWorker,
) -> None:
    worker, recorder = make_worker(blocking={"stuck"})
    for item in ["stuck", "a", "b"]:
        assert worker.submit(item)
    assert recorder.started.wait(WAIT)

    assert worker.shutdown(0.05) is False
    assert worker.submit("late") is False
    recorder.gate.set()

    assert worker.flush(WAIT)
    assert recorder.handled() == ["stuck", "a", "b"]


def test_drain_pending_returns_items_left_by_a_timed_out_shutdown(make_worker: MakeWorker) -> None:
    worker, recorder = make_worker(blocking={"stuck"})
    for item in ["stuck", "a", "b", "c"]:
        assert worker.submit(item)
    assert recorder.started.wait(WAIT)

    assert worker.shutdown(0.05) is False
    pending = worker.drain_pending()

    assert pending == ["a", "b", "c"]
    assert worker.drain_pending() == []
    assert len(worker) == 0

    recorder.gate.set()
    assert wait_until(
        lambda: threads_named(recorder.worker_name) == []
    )  # the thread exits once unstuck
    assert recorder.handled() == ["stuck"]  # drained items are never handled as well


def test_drain_pending_after_a_clean_shutdown_is_empty(make_worker: MakeWorker) -> None:
    worker, _ = make_worker()
    assert worker.submit("x")
    assert worker.shutdown(WAIT)

    assert worker.drain_pending() == []


# -- fork safety -----------------------------------------------------------------------------


def _read_all(fd: int, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("child did not report in time")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_handles_only_its_own_items(make_worker: MakeWorker) -> None:
    worker, recorder = make_worker(blocking={"parent-0"})
    for item in ["parent-0", "parent-1", "parent-2"]:
        assert worker.submit(item)
    assert recorder.started.wait(WAIT)  # parent-0 in the handler, 1 and 2 still queued

    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded, use of fork()"
        pid = os.fork()
    if pid == 0:  # child: report through the pipe, never return into pytest
        code = 1
        try:
            os.close(read_fd)
            before = recorder.handled()
            report = {
                "queued_after_fork": len(worker),
                "submitted": [worker.submit(item) for item in ["child-0", "child-1"]],
                "flushed": worker.flush(WAIT),
            }
            report["handled"] = recorder.handled()[len(before) :]
            os.write(write_fd, json.dumps(report).encode())
            code = 0
        finally:
            os._exit(code)

    os.close(write_fd)
    try:
        report = json.loads(_read_all(read_fd, WAIT * 3))
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

    assert report == {
        "queued_after_fork": 0,
        "submitted": [True, True],
        "flushed": True,
        "handled": ["child-0", "child-1"],
    }

    # The parent's worker is untouched by the fork and never sees the child's items.
    recorder.gate.set()
    assert worker.flush(WAIT)
    assert recorder.handled() == ["parent-0", "parent-1", "parent-2"]

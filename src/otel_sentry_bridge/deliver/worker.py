"""A bounded queue drained by one background thread, with a flush/shutdown contract.

- ``submit`` never blocks and never raises: it returns False when the item is refused
  (queue full, shut down, interpreter exiting), and the caller counts the loss.
- ``flush(timeout)`` returns True once everything submitted before it has been handled.
- ``shutdown(timeout)`` is idempotent: it stops accepting, drains within the timeout and
  stops the thread.
- The thread starts on the first submit, so a process that forks before any error (gunicorn
  ``--preload``) starts no thread in the parent; after a fork the child gets a fresh queue and
  thread of its own and never handles the parent's items.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["THREAD_PREFIX", "Worker", "is_worker_thread"]

_log = logging.getLogger("otel_sentry_bridge")
_T = TypeVar("_T")
# Every thread of this package is named with it (worker, sender): what is logged there is ours.
THREAD_PREFIX = "otel-sentry-bridge"


def is_worker_thread() -> bool:
    """True on one of this package's threads (whose logs must never be captured)."""
    return threading.current_thread().name.startswith(THREAD_PREFIX)


class Worker(Generic[_T]):
    def __init__(self, handle: Callable[[_T], None], *, maxsize: int, name: str) -> None:
        self._handle = handle
        self._maxsize = max(1, maxsize)
        self._name = name
        self._reset()
        self._closed = False
        # Through a weak reference: the fork hook must not keep the worker alive.
        ref = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (m := ref()) is not None and m())

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._queue: deque[_T] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._busy = 0  # items taken off the queue and not yet handled
        self._submitted = 0
        self._done = 0
        self._thread: threading.Thread | None = None

    def _after_fork(self) -> None:
        self._reset()  # the parent's items are the parent's to send

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def submitted(self) -> int:
        """Items accepted since the start (or the fork)."""
        return self._submitted

    def submit(self, item: _T) -> bool:
        if os.getpid() != self._pid:  # forked without the hook (e.g. os.fork from C)
            self._reset()
        with self._cond:
            if self._closed or len(self._queue) >= self._maxsize:
                return False
            if self._thread is None and not self._start():
                return False
            self._queue.append(item)
            self._submitted += 1
            self._cond.notify_all()
        return True

    def _start(self) -> bool:
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        try:
            thread.start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown"
            return False
        self._thread = thread
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return  # closed and drained
                item = self._queue.popleft()
                self._busy += 1
            try:
                self._handle(item)
            except Exception:  # one bad item must not kill the thread
                _log.warning("otel-sentry-bridge: failed to process an event", exc_info=True)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._done += 1
                    self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until all items submitted so far are handled, at most ``timeout`` seconds."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            target = self._submitted
            while self._done < target:
                if self._thread is None or not self._thread.is_alive():
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def shutdown(self, timeout: float) -> bool:
        """Stop accepting, drain within ``timeout``; True when nothing was left behind."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            already = self._closed
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if already or thread is None:
            return not self._queue
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        return not self._queue and not self._busy

    def drain_pending(self) -> list[_T]:
        """Take the items still queued (after a timed-out shutdown), e.g. to spool them."""
        with self._cond:
            items = list(self._queue)
            self._queue.clear()
            return items

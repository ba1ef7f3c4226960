"""Crashes outside requests: exceptions that reach ``sys.excepthook`` or ``threading.excepthook``.

A script or management command that raises at top level, or a thread whose target raises,
never passes through a request hook or a log call. These hooks chain onto the ones in place
(the interpreter's, which print the traceback, or another library's) and capture the
exception first, as unhandled (mechanism ``excepthook`` or ``threading``), then always call
the previous hook, even when capturing failed.

- ``sys.excepthook`` runs when the process is about to exit: after the previous hook has
  printed the traceback, it waits for the active bridges to send (``flush`` with each
  bridge's ``shutdown_timeout``). In an interactive session (``sys.ps1`` set) it captures
  nothing: every typo would be an event.
- ``threading.excepthook`` runs on the dying thread; the process goes on, so it only queues.
  The bridge's own threads are left out (no feedback loop). A thread started inside a
  trace under OpenTelemetry's threading instrumentation (which keeps the starting thread's
  context on the thread, and has already let go of it when the hook runs) is reported in
  that trace, under the span that started it.
- ``KeyboardInterrupt`` and ``SystemExit`` are not errors and are passed on untouched. An
  exception already captured (logged, say, then re-raised) keeps its one event.

:func:`install_excepthooks` is idempotent. :func:`uninstall_excepthooks` puts the previous
hooks back; when another hook was chained onto ours in the meantime, ours stays in that chain
but only passes on (a later install chains a new one on top: one capture, one traceback).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context

from ..bridge import active_bridges
from ..deliver.worker import is_worker_thread
from .api import capture_exception

__all__ = ["install_excepthooks", "uninstall_excepthooks"]

_log = logging.getLogger("otel_sentry_bridge")
_NOT_ERRORS = (KeyboardInterrupt, SystemExit)
# Python's default thread name, "Thread-3 (work)": the number would split one crash site
# into as many transactions as the process started threads.
_DEFAULT_THREAD_NAME = re.compile(r"Thread-\d+(?: \((?P<target>.*)\))?")

_SysHook = Callable[[type[BaseException], BaseException, TracebackType | None], Any]
_ThreadHook = Callable[["threading.ExceptHookArgs"], Any]


class _SysExcepthook:
    """Our ``sys.excepthook``: capture, call the previous hook, then flush."""

    def __init__(self, previous: _SysHook) -> None:
        self.previous = previous
        self.active = True

    def __call__(
        self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        event_id = None
        try:
            if self.active and not hasattr(sys, "ps1"):
                event_id = _capture(exc, "excepthook", _program())
        finally:
            try:
                # The traceback is printed before the flush, which may take a while.
                self.previous(exc_type, exc, tb)
            finally:
                if event_id is not None:
                    _flush()


class _ThreadingExcepthook:
    """Our ``threading.excepthook``: capture, then call the previous hook."""

    def __init__(self, previous: _ThreadHook) -> None:
        self.previous = previous
        self.active = True

    def __call__(self, args: threading.ExceptHookArgs) -> None:
        try:
            if self.active and not is_worker_thread():  # never the bridge's own threads
                with _started_in(args.thread):
                    _capture(args.exc_value, "threading", _thread_name(args.thread))
        finally:
            self.previous(args)


@contextmanager
def _started_in(thread: threading.Thread | None) -> Iterator[None]:
    """The OTel context the thread was started in, current while the crash is captured,
    when OpenTelemetry's threading instrumentation kept it (``Thread._otel_context``)."""
    started = getattr(thread, "_otel_context", None)
    token = None
    if isinstance(started, Context):
        try:
            token = otel_context.attach(started)
        except Exception:
            token = None
    try:
        yield
    finally:
        if token is not None:
            try:
                otel_context.detach(token)
            except Exception:
                pass


class _Installed:
    """Our hooks while they are (or may still be, chained under another) in place."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sys_hook: _SysExcepthook | None = None
        self.thread_hook: _ThreadingExcepthook | None = None


_installed = _Installed()


def install_excepthooks() -> None:
    """Chain our hooks onto ``sys.excepthook`` and ``threading.excepthook``. Idempotent: while
    ours are installed (wherever they are in the chain now), nothing is added."""
    with _installed.lock:
        if _installed.sys_hook is None or not _installed.sys_hook.active:
            _installed.sys_hook = _SysExcepthook(sys.excepthook)
            sys.excepthook = _installed.sys_hook
        if _installed.thread_hook is None or not _installed.thread_hook.active:
            _installed.thread_hook = _ThreadingExcepthook(threading.excepthook)
            threading.excepthook = _installed.thread_hook


def uninstall_excepthooks() -> None:
    """Put the previous hooks back; under a hook chained after ours, ours stays in the chain
    but only passes on."""
    with _installed.lock:
        sys_hook, _installed.sys_hook = _installed.sys_hook, None
        if sys_hook is not None:
            sys_hook.active = False
            if sys.excepthook is sys_hook:
                sys.excepthook = sys_hook.previous
        thread_hook, _installed.thread_hook = _installed.thread_hook, None
        if thread_hook is not None:
            thread_hook.active = False
            if threading.excepthook is thread_hook:
                threading.excepthook = thread_hook.previous


def _capture(exc: BaseException | None, mechanism: str, name: str) -> str | None:
    """Capture ``exc`` as unhandled; its event id, or None. Never raises."""
    try:
        if exc is None or isinstance(exc, _NOT_ERRORS):
            return None
        event_id = capture_exception(exc, mechanism=mechanism, handled=False, name=name)
        if event_id is not None:
            _log.debug(
                "otel-sentry-bridge: captured uncaught %s (%s) as event %s",
                type(exc).__name__,
                mechanism,
                event_id,
            )
        return event_id
    except Exception:
        return None


def _flush() -> None:
    """The process is about to exit: give each bridge its shutdown time to send."""
    for bridge in active_bridges():
        try:
            bridge.flush(bridge.settings.shutdown_timeout)
        except Exception:
            _log.debug("otel-sentry-bridge: flush at exit failed", exc_info=True)


def _program() -> str:
    """What the crashed process was: ``manage.py``, ``worker.py``, ``python`` for ``-c``."""
    argv0 = sys.argv[0] if sys.argv else ""
    name = os.path.basename(argv0) if argv0 not in ("", "-c", "-m") else ""
    return name or "python"


def _thread_name(thread: threading.Thread | None) -> str:
    if thread is None:
        return "thread"
    match = _DEFAULT_THREAD_NAME.fullmatch(thread.name)
    if match is None:
        return thread.name
    return match.group("target") or "thread"

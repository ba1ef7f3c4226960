"""The parent's end of the helper process: ships each span's data through a pipe, never waits.

- **Started when wanted**, in the process that ships (not at import: a gunicorn
  ``--preload`` master or a Celery prefork parent that never fails starts none), by a thread
  of its own: a request thread never waits for a process to be spawned. With
  ``helper_process=True`` at the first error; with ``"auto"`` (the default) at a storm, the
  first time :data:`STORM_ERRORS` errors come within :data:`STORM_WINDOW_S` seconds, and it
  is then ended once none came for :data:`IDLE_S` seconds (it sends what it holds first), to
  be started again at the next storm. Not in a process where SIGPIPE is not ignored (an
  embedding server's): writing to a helper that died would kill it; nor where
  ``sys.executable`` is not a Python interpreter (uWSGI, mod_wsgi, a frozen application). A
  forked child forgets its parent's helper (closes its copies of the pipes) and starts its
  own.
- **Spawned, not forked**: ``python -m otel_sentry_bridge.offload.helper`` with this process's
  environment, minus OpenTelemetry's auto-instrumentation (the helper must not instrument
  itself), plus the directory this package was imported from.
- **Ready before used**: until the helper says it is ready (its bridge is made, a few hundred
  milliseconds after the first error), errors are converted in this process, so a helper that
  cannot start (a broken environment) loses none of them: it is given up with a warning.
- **Never blocks the caller**: the pipe is non-blocking (1 MiB where the system allows). A
  shipment that does not fit, is not plain data (:mod:`.codec`), or finds the helper gone is
  refused (the caller converts it in-process); a frame written in part is finished by the
  next shipment or by ``flush``/``close``, before anything else is written.
- **Never outlived by much, and never loses what it was given**: the helper reads to the end of
  the pipe, so when this process exits, even by ``kill -9``, it converts and sends what was
  written, within its own ``shutdown_timeout``, spools or counts the rest, and exits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from ..setup.config import Settings
from ..warn_once import WarnOnce
from .codec import shipment_frame
from .shipment import (
    CONFIG,
    FLUSH,
    FLUSH_BODY,
    READY,
    Shipment,
    TransactionShipment,
    frame,
)

__all__ = [
    "HELPER_MARKER",
    "IDLE_S",
    "STORM_ERRORS",
    "STORM_WINDOW_S",
    "HelperLink",
    "helper_environment",
    "python_executable_problem",
]

_log = logging.getLogger("otel_sentry_bridge")
PIPE_SIZE = 1024 * 1024
_ORPHAN_WAIT_S = 30.0  # a helper started after close: it ends at once, without settings
HELPER_MARKER = "OTEL_SENTRY_BRIDGE_HELPER"  # set in the helper's environment
# "auto": a helper is worth its process (~24 MB, ~0.12 s of CPU to start) when errors come at
# 50 a second or more: converted here, they would take 5 % of the process's GIL time and
# more (about 1 ms each under traffic, docs/performance.md). It ends after five minutes
# without one (so that storms a few minutes apart do not pay for a start each).
STORM_ERRORS = 100
STORM_WINDOW_S = 2.0
IDLE_S = 300.0
_RETIRE_FLUSH_S = 1.0  # how long the idle helper is given to say it holds nothing unsent
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def helper_environment(environ: Mapping[str, str], package_root: str) -> dict[str, str]:
    """The helper's environment: ``environ`` without OpenTelemetry's auto-instrumentation
    (its ``sitecustomize`` directory on ``PYTHONPATH``), with ``package_root`` first on it."""
    env = dict(environ)
    kept = [
        path
        for path in env.get("PYTHONPATH", "").split(os.pathsep)
        if path and not _auto_instrumentation(path)
    ]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([package_root, *kept]))
    env[HELPER_MARKER] = "1"
    return env


def python_executable_problem(executable: str) -> str | None:
    """Why ``executable`` cannot run the helper (None when it can): embedding servers set
    ``sys.executable`` to their own binary (uWSGI, mod_wsgi's httpd), frozen applications to
    themselves; started with ``-m ...`` they would do something else entirely."""
    if not executable:
        return "no Python executable to run it with (sys.executable is empty)"
    if getattr(sys, "frozen", False):
        return "a frozen application has no Python interpreter to run it with"
    name = os.path.basename(executable).lower()
    if not name.startswith(("python", "pypy")):
        return f"sys.executable ({name}) does not look like a Python interpreter"
    return None


def _auto_instrumentation(path: str) -> bool:
    parts = os.path.normpath(path).split(os.sep)
    return "opentelemetry" in parts and "auto_instrumentation" in parts


class HelperLink:
    """Owned by one bridge; any thread may ship, flush or close."""

    def __init__(
        self,
        settings: Settings,
        warn: WarnOnce,
        *,
        auto: bool = False,
        idle_s: float | None = None,
    ) -> None:
        # The helper runs a bridge of its own with these settings (no before_send: the
        # bridge does not offload when there is one, as it runs in this process).
        config = dataclasses.replace(settings, helper_process=False, before_send=None)
        self._config = frame(CONFIG, pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL))
        self._warn = warn
        self._auto = auto
        self._idle_s = IDLE_S if idle_s is None else idle_s
        self._closed = False
        self._reset()
        ref = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (m := ref()) is not None and m())

    def _reset(self) -> None:
        # Made again in a forked child: a thread of the parent may have held them.
        self._lock = threading.Lock()  # the write end: held only for a non-blocking write
        self._flushing = threading.Lock()  # one flush or close at a time
        self._pid = os.getpid()
        self._process: subprocess.Popen[bytes] | None = None
        self._out = -1  # shipments and requests to the helper
        self._in = -1  # the helper's flush answers
        self._partial = b""  # the rest of a frame written in part
        self._opening: tuple[int, ...] = ()  # the pipes while the helper is being started
        self._ready = False  # the helper said it is ready: shipments go to it from then on
        self._spawning = False  # a thread is starting it
        self._spawned = threading.Event()  # set when that thread is done (either way)
        self._failed = False
        self._token = 0
        # "auto": errors counted in the current window while no helper runs, and when the
        # last shipment was written (the idle watcher ends the helper a while after it).
        self._window_start = 0.0
        self._window_count = 0
        self._last_ship = 0.0
        self._stop_watch = threading.Event()

    def _after_fork(self) -> None:
        # This child's copies (the parent keeps its own), also of the pipes a thread of the
        # parent was just making: a child holding the helper's input would keep it from
        # seeing the end of it when the parent dies.
        for fd in (self._out, self._in, *self._opening):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._reset()

    @property
    def usable(self) -> bool:
        """False once the helper could not be started or was lost, or after ``close``."""
        return not (self._failed or self._closed)

    @property
    def helper_pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    def start(self, timeout: float) -> bool:
        """Start the helper now (rather than at the first error) and wait at most ``timeout``
        seconds until it is ready; True when it is."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self.usable:
                    return False
                if self._ready:
                    return True
                if self._out < 0:
                    self._spawn_in_background()
                    fd = -1
                elif self._heard_ready():
                    return True
                else:
                    fd = self._in
                spawned = self._spawned
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if fd < 0:
                spawned.wait(remaining)
            else:
                with contextlib.suppress(OSError, ValueError):
                    select.select([fd], [], [], remaining)

    def taking(self) -> bool:
        """Whether shipments go to the helper now (it is ready): else the caller converts
        in-process. Starts the helper when it is wanted (see the module's docstring)."""
        if not self.usable:
            return False
        if os.getpid() != self._pid:  # forked without the hook (os.fork from C)
            self._after_fork()
        if self._ready:
            return True
        with self._lock:
            if self._out < 0:
                if not self._auto or self._storm():
                    self._spawn_in_background()
                return False  # starting (or not wanted yet): converted here meanwhile
            return self._heard_ready()

    def _storm(self) -> bool:
        """Under the lock, "auto" with no helper: count one error; True once enough came
        within the window."""
        now = time.monotonic()
        if now - self._window_start > STORM_WINDOW_S:
            self._window_start = now
            self._window_count = 0
        self._window_count += 1
        return self._window_count >= STORM_ERRORS

    def ship(self, shipment: Shipment | TransactionShipment | tuple[Any, ...]) -> bool:
        """Hand ``shipment`` (or its parcel: ``codec.plain``) to the helper, once
        :meth:`taking` said it takes them; False when it was not taken (convert it here)."""
        if not self._ready:
            return False
        try:
            data = shipment_frame(shipment)
        except Exception:  # not plain data (an application object), or far too large
            return False
        with self._lock:
            if self._out < 0 or self._failed:
                return False
            self._last_ship = time.monotonic()
            if self._partial and not self._write(b""):
                return False  # the pipe is still full: the helper is behind
            return self._write(data)

    def _spawn_in_background(self) -> None:
        """Under the lock: start the helper on a thread of its own (a process spawn takes
        milliseconds, not for a request thread), unless it is under way or given up."""
        if self._spawning or self._closed or self._failed:
            return
        thread = threading.Thread(
            target=self._spawn, name="otel-sentry-bridge-helper-start", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:  # at interpreter shutdown
            return
        self._spawning = True

    def _spawn(self) -> None:
        pid = os.getpid()
        started = self._popen()
        orphan = None
        with self._lock:
            self._spawning = False
            self._opening = ()  # installed below (or closed): fds the object now owns
            if os.getpid() != pid:  # forked meanwhile: this child has its own state
                return
            if started is None:
                self._failed = True
            elif self._closed:  # closed meanwhile: the helper reads no settings, and ends
                for fd in started:
                    os.close(fd)
                orphan = self._process
            else:
                self._out, self._in = started
                with contextlib.suppress(OSError):  # a bigger pipe, where the system allows
                    fcntl.fcntl(self._out, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
                os.set_blocking(self._out, False)
                self._write(self._config)  # an empty pipe takes it whole
                if self._auto:
                    self._watch(self._process)
            self._spawned.set()
        if orphan is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                orphan.wait(_ORPHAN_WAIT_S)  # reaped, not left a zombie

    def _watch(self, process: subprocess.Popen[bytes] | None) -> None:
        """Under the lock: end ``process`` (an "auto" helper) once it has been idle for the
        idle time, on a thread of its own that wakes a few times per idle time."""
        thread = threading.Thread(
            target=self._end_when_idle,
            args=(process, self._stop_watch),
            name="otel-sentry-bridge-helper-idle",
            daemon=True,
        )
        with contextlib.suppress(RuntimeError):  # at interpreter shutdown: it stays
            thread.start()

    def _end_when_idle(
        self, process: subprocess.Popen[bytes] | None, stop: threading.Event
    ) -> None:
        while not stop.wait(self._idle_s / 4):
            # Idle since it said it is ready, or since the last shipment, whichever is later.
            if not self._ready or time.monotonic() - self._last_ship < self._idle_s:
                continue
            # Not while it holds errors it could not send yet (a server down, no spool): it
            # would have to give them up at its end, where it can keep retrying now.
            if not self.flush(_RETIRE_FLUSH_S):
                continue
            with self._flushing, self._lock:
                if self._process is not process or self._closed or self._failed:
                    return  # closed, lost, or this is a forked child's copy
                if self._partial or time.monotonic() - self._last_ship < self._idle_s:
                    continue
                # Back to "not started": the next storm starts a new helper. This one reads
                # to the end of its pipe, sends what it holds, and exits.
                ends = (self._out, self._in)
                self._out = self._in = -1
                self._ready = False
                self._process = None
                self._spawned = threading.Event()
                self._window_count = 0
            for fd in ends:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(_ORPHAN_WAIT_S)  # reaped, not left a zombie
            return

    def _popen(self) -> tuple[int, int] | None:
        """The helper process, and the parent's ends of its two pipes; None (warned) when it
        cannot be started."""
        problem = python_executable_problem(sys.executable)
        if problem is None and signal.getsignal(signal.SIGPIPE) is not signal.SIG_IGN:
            # Writing to a helper that died would kill this process, not raise an error.
            problem = "SIGPIPE is not ignored in this process"
        if problem is not None:
            if self._auto:  # not asked for: nothing is wrong, errors are converted here
                _log.debug("otel-sentry-bridge: no helper process here (%s)", problem)
            else:
                self._cannot_start(problem)
            return None
        to_helper = from_helper = (-1, -1)
        try:
            to_helper = os.pipe()
            self._opening = to_helper
            from_helper = os.pipe()
            self._opening = (*to_helper, *from_helper)
            self._process = subprocess.Popen(
                [sys.executable, "-m", "otel_sentry_bridge.offload.helper"],
                stdin=to_helper[0],
                stdout=from_helper[1],
                env=helper_environment(os.environ, _PACKAGE_ROOT),
                close_fds=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            self._opening = ()
            for fd in (*to_helper, *from_helper):
                if fd >= 0:
                    os.close(fd)
            self._cannot_start(str(exc))
            return None
        self._opening = (to_helper[1], from_helper[0])
        os.close(to_helper[0])
        os.close(from_helper[1])
        return to_helper[1], from_helper[0]

    def _cannot_start(self, reason: str) -> None:
        self._warn(
            "helper start",
            f"otel-sentry-bridge: cannot start the helper process ({reason}); errors are "
            "converted in this process",
        )

    def _heard_ready(self) -> bool:
        """Under the lock: whether the helper's ``ready`` has come (without waiting). Not
        while a flush reads the answers (it notes ``ready`` itself)."""
        if not self._flushing.acquire(blocking=False):
            return False
        try:
            return self._read_ready()
        finally:
            self._flushing.release()

    def _read_ready(self) -> bool:
        try:
            readable, _, _ = select.select([self._in], [], [], 0)
            if not readable:
                return False
            answer = os.read(self._in, len(READY))
        except OSError:
            answer = b""
        if answer != READY:  # it ended (or said something else) before it was ready
            self._lost()
            return False
        self._now_ready()
        return True

    def _now_ready(self) -> None:
        """The helper said ``ready``: shipments go to it, and its idle time counts from now."""
        self._last_ship = time.monotonic()
        self._ready = True

    def _write(self, data: bytes) -> bool:
        """Under the lock: the partial frame, then ``data``, as far as the pipe takes them.
        True when ``data`` was taken (maybe in part: the rest is kept to finish first)."""
        try:
            if self._partial:
                done = os.write(self._out, self._partial)
                self._partial = self._partial[done:]
                if self._partial:
                    return False
            if not data:
                return True
            done = os.write(self._out, data)
        except BlockingIOError:
            return False
        except OSError:
            self._lost()
            return False
        if done < len(data):
            self._partial = data[done:]
        return True

    def _lost(self) -> None:
        """Under the lock: the helper is gone; nothing more goes to it. (Its answers' pipe is
        closed by ``finish``, under the flush lock: a flush may be reading it.)"""
        self._failed = True
        with contextlib.suppress(OSError):
            os.close(self._out)
        self._out = -1
        process = self._process
        status = process.poll() if process is not None else None
        self._warn(
            "helper lost",
            f"otel-sentry-bridge: the helper process exited (status {status}); errors are "
            "converted in this process from now on (those it had not read are lost)",
        )

    # -- flush and close (any thread; they may wait, never holding the write lock) ---------

    def flush(self, timeout: float) -> bool:
        """Wait until the helper sent (or spooled, or gave up on) everything shipped so far."""
        deadline = time.monotonic() + timeout
        with self._flushing:
            if self._out < 0:  # none started, or lost: what it had is given up on (warned)
                return True
            self._token += 1
            token = self._token
            millis = min(int(timeout * 1000), 2**32 - 1)
            if not self._finish(frame(FLUSH, FLUSH_BODY.pack(token, millis)), deadline):
                return False
            return self._answer(token, deadline)

    def _finish(self, data: bytes, deadline: float) -> bool:
        """Write ``data`` whole (after any partial frame), waiting for room until
        ``deadline``."""
        sent = not data
        while True:
            with self._lock:
                if self._out < 0 or self._failed:
                    return False
                if not sent:
                    sent = self._write(data)
                else:
                    self._write(b"")
                if sent and not self._partial:
                    return True
                fd = self._out
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(OSError, ValueError):
                select.select([], [fd], [], remaining)

    def _answer(self, token: int, deadline: float) -> bool:
        """The helper's answer to flush request ``token`` (older answers are skipped)."""
        pending = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                ready, _, _ = select.select([self._in], [], [], remaining)
                chunk = os.read(self._in, 4096) if ready else b""
            except (OSError, ValueError):
                return False
            if ready and not chunk:
                return False  # the helper is gone
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if line + b"\n" == READY:  # not heard by a shipment yet
                    self._now_ready()
                    continue
                parts = line.split()
                if len(parts) == 2 and parts[0] == b"%d" % token:
                    return parts[1] == b"1"

    def finish(self, deadline: float) -> None:
        """Finish the partial frame (until ``deadline``, a ``time.monotonic()`` value) and
        close the pipe: the helper sends what it holds, within its ``shutdown_timeout``, and
        exits. Later shipments are refused."""
        with self._flushing:
            self._closed = True
            self._stop_watch.set()
            if self._out >= 0:
                self._finish(b"", deadline)
            with self._lock:
                for fd in (self._out, self._in):
                    if fd >= 0:
                        with contextlib.suppress(OSError):
                            os.close(fd)
                self._out = self._in = -1

    def wait(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the helper to exit after :meth:`finish`; True
        when it did (else it goes on until its own deadline, then exits)."""
        process = self._process
        if process is None:
            return True
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

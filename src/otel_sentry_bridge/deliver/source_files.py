"""Reads source files for context lines, on the worker thread, with a small bounded cache.

The worker reads a file when it converts an error, which may be well after the code ran, and
the code may have been loaded long before it ran. A file modified in between no longer holds
that code: its lines would show another version as the one that raised, and so would the line
printed in the traceback (linecache reads the same file, maybe after the edit too). So a
file's lines are used only when it has not been modified since this process started: its
``st_mtime`` is not later than the process start time. For a later one the reader answers
:data:`~.convert.frames.SOURCE_CHANGED` and the frame gets no source at all.
"""

from __future__ import annotations

import codecs
import io
import os
import stat
import sys
import threading
import time
import tokenize
from collections.abc import Callable, Sequence
from typing import Final, NamedTuple

from ..convert.frames import SOURCE_CHANGED, SourceChanged
from ..lru import Lru

__all__ = ["PROCESS_STARTED_AT", "SourceCache", "process_start_time"]

_MAX_FILE_BYTES = 2 * 1024 * 1024
_IMPORTED_AT: Final = time.time()


def _linux_start_time(self_stat: str, proc_stat: str, ticks_per_second: int) -> float | None:
    """When a process started (seconds since the epoch), from the text of ``/proc/<pid>/stat``
    (field 22, ``starttime``: clock ticks since boot) and of ``/proc/stat`` (``btime``: the
    boot time, whole seconds since the epoch); None when either does not parse.

    Both are rounded down by the kernel, so the result is early by up to a second, never late:
    a file written in the second before the start counts as modified after it.
    """
    # Field 2, the command name, is in parentheses and may itself hold spaces and ")".
    _, paren, rest = self_stat.rpartition(")")
    fields = rest.split()
    if not paren or len(fields) < 20 or not fields[19].isdigit():  # fields[0] is field 3
        return None
    boot = _boot_time(proc_stat)
    if boot is None or ticks_per_second <= 0:
        return None
    return boot + int(fields[19]) / ticks_per_second


def _boot_time(proc_stat: str) -> int | None:
    """``btime`` of ``/proc/stat``: when the machine booted, whole seconds since the epoch."""
    boot = [line.split() for line in proc_stat.splitlines() if line.startswith("btime ")]
    if len(boot) != 1 or len(boot[0]) != 2 or not boot[0][1].isdigit():
        return None
    return int(boot[0][1])


def process_start_time(fallback: float) -> float:
    """When this process started (seconds since the epoch): from ``/proc`` on Linux, else, or
    when ``/proc`` cannot be read, ``fallback``. Never later than ``fallback``."""
    if not sys.platform.startswith("linux"):
        return fallback
    try:
        with open("/proc/self/stat", "rb") as self_stat, open("/proc/stat", "rb") as proc_stat:
            started = _linux_start_time(
                self_stat.read().decode("latin-1"),
                proc_stat.read().decode("latin-1"),
                os.sysconf("SC_CLK_TCK"),
            )
    except (OSError, ValueError):
        return fallback
    if started is None or started <= 0:
        return fallback
    boot_clock = getattr(time, "CLOCK_BOOTTIME", None)
    if boot_clock is not None:
        # btime is whole seconds: the boot time from the clocks themselves is within
        # microseconds, which leaves the start's own resolution (a clock tick, 10 ms).
        try:
            with open("/proc/stat", "rb") as proc_stat:
                btime = _boot_time(proc_stat.read().decode("latin-1"))
            precise_boot = time.time() - time.clock_gettime(boot_clock)
            if btime is not None and abs(precise_boot - btime) < 2:
                started += precise_boot - btime
        except (OSError, ValueError):
            pass
    return min(started, fallback)


# Computed when this module is imported, so a forked worker (gunicorn --preload) keeps its
# parent's start: the code it runs was loaded there. Where /proc is missing: the import time,
# later than the start (files edited while the process started up are not noticed there).
PROCESS_STARTED_AT: Final = process_start_time(_IMPORTED_AT)


class _Known(NamedTuple):
    """The last answer for a path, and what it was based on."""

    checked_at: float  # the clock when the file was last stat'ed
    identity: tuple[int, int, int] | None  # (inode, mtime in ns, size); None: stat failed
    source: tuple[str, ...] | SourceChanged | None


class SourceCache:
    """Callable ``path -> lines | SOURCE_CHANGED | None``, a ``SourceReader``:

    - :data:`~.convert.frames.SOURCE_CHANGED` when the file's ``st_mtime`` is later than
      ``loaded_before`` (default: when this process started, :data:`PROCESS_STARTED_AT`),
      also when it changes while being read;
    - None when it is not a regular file, cannot be read, holds a NUL byte, is over 2 MiB or
      does not decode with the codec it declares;
    - else its lines, decoded as Python decodes the source (BOM, PEP 263 declaration).

    The answers for the last ``max_files`` paths are kept. A path is stat'ed again at most
    every ``recheck_after`` seconds of ``clock``; a file found modified is judged again (and
    is then changed). So lines read before an edit may be given for up to ``recheck_after``
    seconds after it: they are those of the version that was loaded, unless the module is
    reloaded in that window.
    """

    def __init__(
        self,
        max_files: int = 256,
        *,
        loaded_before: float | None = None,
        recheck_after: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loaded_before = PROCESS_STARTED_AT if loaded_before is None else loaded_before
        self._recheck_after = recheck_after
        self._clock = clock
        self._files: Lru[str, _Known] = Lru(max_files)
        self._lock = threading.Lock()

    @property
    def loaded_before(self) -> float:
        """Files modified after this time (seconds since the epoch) give SOURCE_CHANGED."""
        return self._loaded_before

    def __call__(self, path: str) -> Sequence[str] | SourceChanged | None:
        now = self._clock()
        with self._lock:
            known = self._files.use(path)
        if known is not None and now - known.checked_at < self._recheck_after:
            return known.source
        identity, source = self._judge(path, known)
        with self._lock:
            self._files.put(path, _Known(now, identity, source))
        return source

    def _judge(
        self, path: str, known: _Known | None
    ) -> tuple[tuple[int, int, int] | None, tuple[str, ...] | SourceChanged | None]:
        """``(identity, answer)`` of the file now: the last answer while its inode, mtime and
        size are unchanged; else SOURCE_CHANGED for one modified after ``loaded_before``
        without reading it, else what :meth:`_read` makes of it."""
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return None, None
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        if known is not None and known.identity == identity:
            return identity, known.source
        if st.st_mtime > self._loaded_before:
            return identity, SOURCE_CHANGED
        if not stat.S_ISREG(st.st_mode):  # a directory, or a FIFO the read would block on
            return identity, None
        return identity, self._read(path)

    def _read(self, path: str) -> tuple[str, ...] | SourceChanged | None:
        """The file's lines, checking once read that what was read was not modified after
        ``loaded_before`` (a write during the read, or a file replaced since the stat)."""
        try:
            with open(path, "rb") as handle:
                data = handle.read(_MAX_FILE_BYTES + 1)
                modified = os.fstat(handle.fileno()).st_mtime
        except (OSError, ValueError):
            return None
        if modified > self._loaded_before:
            return SOURCE_CHANGED
        if len(data) > _MAX_FILE_BYTES or b"\0" in data:
            return None
        try:
            text = data.decode(_source_encoding(data), "replace")
        except Exception:
            # A declared codec that is not a text encoding ("# Content-Encoding: base64"
            # reads as "coding: base64": LookupError), or one that fails: no lines.
            return None
        return tuple(text.splitlines())


def _source_encoding(data: bytes) -> str:
    """The encoding Python itself reads the file with: a BOM or a PEP 263 ``coding:`` line
    in the first two lines (``# -*- coding: latin-1 -*-``), else UTF-8."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        codecs.lookup(encoding)
    except (SyntaxError, LookupError):  # an unknown or contradictory declaration
        return "utf-8"
    return encoding  # "utf-8-sig" after a BOM: decoding drops it

"""A cheap ``exception.stacktrace`` for captures made on the request thread.

``traceback.format_exception`` reads every source file (linecache) and, on 3.11+, parses each
line to place the ``^^^`` markers: about 170 µs for a ten-frame chain here. This writes the
same text without the source lines (2-3 µs). The Sentry event loses nothing: the worker reads
the context lines from the files. Jaeger shows the frames without the code under them.
Exception groups, rare and intricate, still go through ``traceback`` (without reading files).

The text is bounded whatever the depth: a stack deeper than an event keeps is collapsed as
Python collapses it (``[Previous line repeated N more times]``), then only its outermost and
innermost frames are written, ``[N frames omitted]`` between them. The worker's variant with
the source lines (``source=True``) reads them only where reading cannot block.
"""

from __future__ import annotations

import builtins
import linecache
import os
import stat
import traceback
from collections import deque
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

from ..safe_repr import safe_repr

__all__ = [
    "exception_attributes",
    "exception_message",
    "exception_text",
    "exception_type_name",
    "stacktrace",
]

_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"
_MAX_CHAIN = 100
_RECURSIVE_CUTOFF = 3  # traceback's: identical frames printed before "[Previous line ...]"
_REPEATED_PREFIX = "  [Previous line repeated "
_KEEP = 50  # frames written at each end of a deeper stack: as many as an event keeps
_CHAIN_KEEP = 200  # at each end, over all the exceptions of a chain (50 each for up to 4)


def exception_type_name(exc_type: type[BaseException]) -> str:
    """The ``exception.type`` OTel's ``record_exception`` writes for this class. A
    ``__module__`` that is not a str (set by a metaclass or a code generator) is
    ``<unknown>``, as Python's traceback prints it."""
    module: object = exc_type.__module__
    qualname = exc_type.__qualname__
    if not isinstance(module, str):
        return f"<unknown>.{qualname}"
    return f"{module}.{qualname}" if module and module != "builtins" else qualname


def exception_message(exc: BaseException) -> str:
    """``str(exc)``, as ``record_exception`` writes it; a placeholder when that raises."""
    try:
        return str(exc)
    except Exception:
        return safe_repr(exc)


def exception_attributes(exc: BaseException, *, full: bool = False) -> dict[str, str]:
    """OTel's ``exception.*`` attributes of ``exc``. ``full``: the stack trace with the source
    lines under the frames (the worker, which has time), read only where reading cannot
    block (see :func:`_source_line`); else the cheap text."""
    if full:
        try:
            text = stacktrace(exc, source=True)
        except Exception:
            text = stacktrace(exc)
    else:
        text = stacktrace(exc)
    return {
        "exception.type": exception_type_name(type(exc)),
        "exception.message": exception_message(exc),
        "exception.stacktrace": text,
    }


def exception_text(exc: BaseException) -> str:
    """The last line Python prints: ``pkg.Error: message`` (``Error`` if no message)."""
    cls = type(exc)
    module: object = cls.__module__
    if not isinstance(module, str):
        module = "<unknown>"  # as Python prints it
    name = (
        cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"
    )
    try:
        # Python prints a SyntaxError's bare msg (its location is on the File line above).
        message = str(exc.msg) if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    except Exception:
        message = "<exception str() failed>"
    text = f"{name}: {message}" if message else name
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list | tuple):
        text += "".join(f"\n{note}" for note in notes if isinstance(note, str))
    return text


def _write(exc: BaseException, parts: list[str], keep: int, source: bool) -> None:
    """What Python prints of ``exc`` alone (its traceback, its last line), appended to
    ``parts``; the source lines under the frames only when ``source``."""
    tb = exc.__traceback__
    if tb is not None:
        parts.append("Traceback (most recent call last):\n")
        if source or not _write_plain_frames(tb, parts, keep):
            _write_frames(_entries(tb, source), parts, keep)
    if isinstance(exc, SyntaxError) and exc.filename is not None:
        parts.append(f'  File "{exc.filename}", line {exc.lineno}\n')
    parts.append(exception_text(exc))
    parts.append("\n")


def _write_plain_frames(tb: TracebackType | None, parts: list[str], keep: int) -> bool:
    """The common case: a line per frame, appended to ``parts``. False, with ``parts`` as it
    was, for over ``2 * keep`` frames, to be written the long way (:func:`_entries`). Counted
    once written, so that a stack of usual depth costs nothing more than its lines; a
    shorter recursion keeps its repeated lines, as it did."""
    start = len(parts)
    while tb is not None:
        code = tb.tb_frame.f_code
        parts.append(f'  File "{code.co_filename}", line {tb.tb_lineno or 0}, in {code.co_name}\n')
        tb = tb.tb_next
    if len(parts) - start <= 2 * keep:
        return True
    del parts[start:]
    return False


# A frame's line, or Python's "[Previous line repeated N more times]"; how many frames it
# stands for; where its source line is: (path, line number, module globals), when wanted.
_Entry = tuple[str, int, tuple[str, int, dict[str, Any]] | None]


def _entries(tb: TracebackType | None, source: bool) -> Iterator[_Entry]:
    """The stack outermost first, as Python prints it: a line per frame, but of a run of
    identical frames only the first three, then ``[Previous line repeated N more times]``."""
    last: tuple[str, int, str] | None = None
    count = 0
    while tb is not None:
        code = tb.tb_frame.f_code
        key = (code.co_filename, tb.tb_lineno or 0, code.co_name)
        if key != last:
            if count > _RECURSIVE_CUTOFF:
                yield _repeated(count - _RECURSIVE_CUTOFF)
            last, count = key, 0
        count += 1
        if count <= _RECURSIVE_CUTOFF:
            where = (key[0], key[1], tb.tb_frame.f_globals) if source else None
            yield f'  File "{key[0]}", line {key[1]}, in {key[2]}\n', 1, where
        tb = tb.tb_next
    if count > _RECURSIVE_CUTOFF:
        yield _repeated(count - _RECURSIVE_CUTOFF)


def _repeated(count: int) -> _Entry:
    return f"  [Previous line repeated {count} more time{'s' if count > 1 else ''}]\n", count, None


def _write_frames(entries: Iterable[_Entry], parts: list[str], keep: int) -> None:
    """``entries`` appended to ``parts``; of more than ``2 * keep``, the first and last
    ``keep`` (an event keeps the outermost and innermost frames), with a line saying how many
    frames are left out between them: ``[N frames omitted]``. Source lines are read for the
    entries written only."""
    tail: deque[_Entry] = deque()
    omitted = 0
    for index, entry in enumerate(entries):
        if index < keep:
            _append(parts, entry)
            continue
        tail.append(entry)
        if len(tail) > keep:
            omitted += tail.popleft()[1]
    if omitted and tail and tail[0][0].startswith(_REPEATED_PREFIX):
        omitted += tail.popleft()[1]  # the repeats of a frame left out: left out too
    if omitted:
        parts.append(f"  [{omitted} frame{'s' if omitted > 1 else ''} omitted]\n")
    for entry in tail:
        _append(parts, entry)


def _append(parts: list[str], entry: _Entry) -> None:
    text, _, where = entry
    parts.append(text)
    if where is not None:
        line = _source_line(*where)
        if line:
            parts.append(f"    {line}\n")


def _source_line(path: str, lineno: int, module_globals: dict[str, Any] | None) -> str:
    """The stripped line ``linecache`` gives, where getting it cannot block: from what it
    holds (a loader's source, an IPython cell) or from a regular file. "" for a FIFO or a
    device (``open`` would wait for a writer), for a path it would look for along
    ``sys.path``, for a file it fails to read."""
    try:
        if module_globals is not None:
            linecache.lazycache(path, module_globals)  # a loader's source (a zip import)
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            entry = linecache.cache.get(path)
            # Not held, or held lazily for a relative path (should the loader fail): linecache
            # would look for the path along sys.path, and open what it finds there.
            if entry is None or (len(entry) == 1 and not os.path.isabs(path)):
                return ""
        else:
            if not stat.S_ISREG(st.st_mode):
                return ""
        return linecache.getline(path, lineno).strip()
    except Exception:  # a declared codec that is not text raises LookupError, say
        return ""


# Python 3.11+; on 3.10 no exception is a group.
_GROUP: type[BaseException] | tuple[()] = getattr(builtins, "BaseExceptionGroup", ())


def _is_group(exc: BaseException) -> bool:
    return isinstance(exc, _GROUP)


def _group_text(exc: BaseException, source: bool) -> str:
    """Python's text of a chain that holds an exception group, its source lines read only
    as :func:`_source_line` reads them (``source``), else none."""
    top = traceback.TracebackException(type(exc), exc, exc.__traceback__, lookup_lines=False)
    pending = [top]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.stack = traceback.StackSummary.from_list(
            [
                traceback.FrameSummary(
                    frame.filename,
                    frame.lineno,
                    frame.name,
                    lookup_line=False,
                    line=_source_line(frame.filename, frame.lineno or 0, None) if source else "",
                )
                for frame in current.stack
            ]
        )
        linked = [
            current.__cause__,
            current.__context__,
            *(getattr(current, "exceptions", None) or ()),
        ]
        pending.extend(other for other in linked if other is not None)
    return "".join(top.format())


def stacktrace(exc: BaseException, *, source: bool = False) -> str:
    """``traceback.format_exception(exc)``, without the source lines unless ``source``:
    chains root cause first. Bounded: a stack of over ``2 * 50`` frames (all of them with
    ``source``) has its runs of identical frames collapsed as Python collapses them, and
    then only its outermost and innermost 50 written (:func:`_write_frames`); fewer of each
    in a chain of over 4 exceptions."""
    parts: list[str] = []
    if (
        exc.__cause__ is None
        and (exc.__context__ is None or exc.__suppress_context__)
        and not isinstance(exc, _GROUP)
    ):
        _write(exc, parts, _KEEP, source)  # most exceptions: no chain to follow
        return "".join(parts)
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    how = ""
    while current is not None and id(current) not in seen and len(chain) < _MAX_CHAIN:
        if _is_group(current):
            return _group_text(exc, source)
        seen.add(id(current))
        chain.append((current, how))
        if current.__cause__ is not None:
            current, how = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, how = current.__context__, _CONTEXT
        else:
            current = None
    keep = min(_KEEP, max(1, _CHAIN_KEEP // len(chain)))
    # Python prints the root cause first; each separator sits before the exception it leads to.
    for index in range(len(chain) - 1, -1, -1):
        _write(chain[index][0], parts, keep, source)
        if index:
            parts.append(chain[index][1])
    return "".join(parts)

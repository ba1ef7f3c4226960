"""Parse the text of ``traceback.format_exception`` back into structured exceptions.

``Span.record_exception`` flattens a traceback into one string (``exception.stacktrace``).
This module recovers what Sentry needs from it: one :class:`ParsedException` per exception in
the chain (root cause first, as Python prints them), each with its frames (outermost first),
and the members of exception groups. Pure: text in, dataclasses out. It never raises on odd
input: unknown lines are skipped, a string cut short by an attribute length limit yields the
frames that survived.

What sentry-sdk reads from the traceback object, and Python's text abbreviates or adds, is
restored: a ``[Previous line repeated N more times]`` line stands for N more copies of the frame
above it (up to :data:`MAX_REPEATED_FRAMES` per exception: an event keeps the first and last
50 frames anyway); a SyntaxError's location block (``File "x.py", line 3`` without ``in``, the
offending line, carets) is where the syntax error is, not a frame, and goes back into the
message as ``str()`` writes it; an exception group's ``(N sub-exceptions)`` suffix, which
sentry-sdk does not send, is not part of its message; the ``... (max_group_depth is 10)``
Python writes for the members of a group nested deeper is no member. The ``[N frames omitted]``
line the bridge's own text writes in the middle of a very deep stack is no frame.

A message is printed as it is: one holding a traceback (``format_exc()``, a child process's
stderr) holds lines that read like the separators of a chain. Given the raised exception's
message (``exception.message``), the text from where it is printed on is that exception's.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from ..lru import Lru

__all__ = [
    "MAX_REPEATED_FRAMES",
    "ParsedException",
    "ParsedFrame",
    "group_message",
    "parse_stacktrace",
    "split_type",
]

MAX_REPEATED_FRAMES = 200  # frames added per exception for "[Previous line repeated N ...]"

_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"
_TRACEBACK_HEADERS = (
    "Traceback (most recent call last):",
    "Exception Group Traceback (most recent call last):",
)
_FRAME = re.compile(r'^\s*File "(?P<path>.*)", line (?P<lineno>\d+)(?:, in (?P<function>.*))?$')
_GROUP_START = re.compile(r"^\+ Exception Group Traceback \(most recent call last\):$")
_GROUP_SEPARATOR = re.compile(r"^\+[-+]*-+ (?:\d+|\.\.\.) -+$|^\+-+$")
# Python's "[Previous line repeated N more times]", or the "[N frames omitted]" the bridge's own
# text writes between the outermost and innermost frames of a deeper stack.
_REPEATED = re.compile(
    r"^\s*\[(?:Previous line repeated (?P<count>\d+) more times?|\d+ frames? omitted)\]$"
)
# What BaseExceptionGroup.__str__ adds to the group's message.
_GROUP_SUFFIX = re.compile(r" \(\d+ sub-exceptions?\)$", re.MULTILINE)
# What stands in a group's box for members Python does not print: those past
# ``max_group_width`` (15), or all of a group nested deeper than ``max_group_depth`` (10).
_UNPRINTED_MEMBERS = re.compile(r"^(?:and \d+ more exceptions?|\.\.\. \(max_group_depth is \d+\))$")
_UNKNOWN_MODULE = "<unknown>."
# A marker line under a source line in 3.11+: only carets, tildes and spaces.
_MARKERS = re.compile(r"^\s*[\^~\s]+$")


@dataclass(frozen=True)
class ParsedFrame:
    """One ``File "...", line N, in f`` entry and the source line Python printed under it."""

    path: str
    lineno: int
    function: str | None
    source_line: str | None


@dataclass
class ParsedException:
    """One exception of a chain or group, as Python printed it."""

    type: str  # as printed: "ValueError", "pkg.mod.Error"
    message: str
    frames: list[ParsedFrame] = field(default_factory=list)
    # How this exception relates to the one printed before it.
    chained: str | None = None  # "cause" | "context" | None
    is_group: bool = False
    children: list[ParsedException] = field(default_factory=list)


def group_message(message: str, printed: str | None) -> str:
    """``msg (2 sub-exceptions)`` -> ``msg``, as sentry-sdk sends a group's message. When the
    message printed before (without the suffix) is this one followed by more lines, those are
    the group's notes (``add_note``), which ``str()`` lacks: they are kept."""
    message = _GROUP_SUFFIX.sub("", message, count=1)
    if printed is not None and printed.startswith(message + "\n"):
        return printed
    return message


def split_type(qualified: str) -> tuple[str | None, str]:
    """``"pkg.mod.Error"`` -> ``("pkg.mod", "Error")``; ``"ValueError"`` -> ``(None, ...)``.

    Nested classes are not distinguishable from modules in the text; the last dotted part is
    taken as the type, which matches how Sentry displays them.
    """
    qualified = qualified.strip()
    if qualified.startswith(_UNKNOWN_MODULE):  # a __module__ Python could not print
        return None, qualified.rpartition(".")[2]
    if "." not in qualified or qualified.startswith("<"):
        return None, qualified
    module, _, name = qualified.rpartition(".")
    return module or None, name


def parse_stacktrace(
    text: str, tracebacks: Tracebacks | None = None, *, message: str | None = None
) -> list[ParsedException]:
    """All exceptions printed in ``text``, root cause first, the raised one last.

    ``tracebacks`` (see :class:`Tracebacks`) makes a traceback printed before cost a lookup,
    whatever the message under it. ``message``: the raised exception's ``str()`` (the
    ``exception.message`` attribute). Python prints a message as it is, so one that holds
    a traceback (``format_exc()``, a child process's stderr) holds lines that read like the
    separators of a chain: from the line that prints ``message`` on, the text is the raised
    exception's (its message, its notes)."""
    if not text:
        return []
    lines = text.splitlines()
    cuts = [(index, how) for index, line in enumerate(lines) if (how := _separator(line))]
    quoted = _quoted_from(text, message) if message and _quotes(message) else None
    if quoted is not None:
        cuts = [cut for cut in cuts if cut[0] < quoted]
    exceptions: list[ParsedException] = []
    start, chained = 0, None
    for end, how in [*cuts, (len(lines), None)]:
        plain = quoted is not None and end == len(lines)  # a traceback in it is no group's
        parsed = _parse_block(lines[start:end], tracebacks, plain=plain)
        if parsed is not None:
            parsed.chained = chained
            exceptions.append(parsed)
        start, chained = end + 1, how
    return exceptions


def _quotes(message: str) -> bool:
    """Whether a message may hold a line that reads like a chain separator, or like the box
    Python draws around an exception group's members (``+-+---- 1 ----``)."""
    return "\n" in message and (_CAUSE in message or _CONTEXT in message or "+-" in message)


def _quoted_from(text: str, message: str) -> int | None:
    """The index in ``text.splitlines()`` of the line ``Type: <first line of message>``:
    Python prints the raised exception last, its notes after it. None when the text does not
    hold the message (cut short by a length limit, or the message of a group, printed in its
    box)."""
    at = text.rfind(": " + message)
    if at < 0:
        return None
    return max(len(text[:at].splitlines()) - 1, 0)


def _separator(line: str) -> str | None:
    stripped = line.strip()
    if stripped == _CAUSE:
        return "cause"
    if stripped == _CONTEXT:
        return "context"
    return None


def _parse_block(
    lines: list[str], tracebacks: Tracebacks | None = None, *, plain: bool = False
) -> ParsedException | None:
    """One exception (possibly a group, unless ``plain``) with its traceback."""
    while lines and not lines[0].strip():
        lines = lines[1:]
    if not lines:
        return None
    if not plain and (
        _GROUP_START.match(lines[0].strip()) or _first_member_separator(lines) is not None
    ):
        return _parse_group(lines)
    return _parse_plain(lines, tracebacks)


@dataclass
class _Reading:
    """Where the reading of one plain block stands after some of its lines."""

    frames: list[ParsedFrame] = field(default_factory=list)
    exc_lines: list[str] = field(default_factory=list)
    pending: tuple[str, int, str | None] | None = None
    location: tuple[str, int] | None = None  # a SyntaxError's file and line
    repeats_left: int = MAX_REPEATED_FRAMES
    in_traceback: bool = False

    def copy(self) -> _Reading:
        return _Reading(
            list(self.frames),
            list(self.exc_lines),
            self.pending,
            self.location,
            self.repeats_left,
            self.in_traceback,
        )


class Tracebacks:
    """What the lines of the last ``max_tracebacks`` tracebacks (the part of a block before
    its exception line) were read as. The same code path failing again prints the same
    traceback under a new message (``KeyError: '17'``, ``order 17 not found``); its frames
    are then read once. Guarded by the caller (:class:`ParseCache`)."""

    def __init__(self, max_tracebacks: int = 256) -> None:
        self._read: Lru[tuple[str, ...], _Reading] = Lru(max(1, max_tracebacks))

    def read(self, lines: list[str]) -> tuple[_Reading, list[str]]:
        """The reading after the block's traceback lines, and the lines left to read."""
        end = _traceback_end(lines)
        traceback = lines[:end]
        key = tuple(traceback)
        known = self._read.use(key)
        if known is None:
            known = _read_lines(_Reading(), traceback)
            self._read.put(key, known)
        return known.copy(), lines[end:]


def _traceback_end(lines: list[str]) -> int:
    """Where a plain block's exception line is: the first line after its header that does
    not start with a space (frames and source lines are indented); ``len(lines)`` if none."""
    for index, line in enumerate(lines):
        if index and line and not line[0].isspace() and line.strip() not in _TRACEBACK_HEADERS:
            return index
    return len(lines)


def _parse_plain(lines: list[str], tracebacks: Tracebacks | None = None) -> ParsedException | None:
    if tracebacks is None:
        reading = _read_lines(_Reading(), lines)
    else:
        reading, rest = tracebacks.read(lines)
        reading = _read_lines(reading, rest)
    frames, exc_lines, pending = reading.frames, reading.exc_lines, reading.pending
    location = reading.location
    if pending:
        frames.append(ParsedFrame(*pending, None))
    if not exc_lines and not frames:
        return None
    exc_type, message = _split_exception_line(exc_lines)
    if location is not None and exc_lines:
        message = _with_location(message, *location)
    return ParsedException(type=exc_type, message=message, frames=frames)


def _read_lines(reading: _Reading, lines: list[str]) -> _Reading:
    """``reading`` (changed in place) after ``lines``: one line at a time, so that reading a
    block in two parts gives what reading it whole gives."""
    frames, exc_lines = reading.frames, reading.exc_lines
    pending, location = reading.pending, reading.location
    repeats_left, in_traceback = reading.repeats_left, reading.in_traceback
    for raw in lines:
        stripped = raw.strip()
        if stripped in _TRACEBACK_HEADERS and not exc_lines:
            in_traceback = True
            continue
        match = _FRAME.match(raw)
        if match and (in_traceback or raw.startswith("  ")) and not exc_lines:
            if pending:
                frames.append(ParsedFrame(*pending, None))
                pending = None
            if match["function"] is None:
                # Every frame is printed with ``, in <function>``; a bare ``File "x",
                # line N`` is the location of a SyntaxError, its source and carets follow.
                location = (match["path"], int(match["lineno"]))
            else:
                pending = (match["path"], int(match["lineno"]), match["function"])
            continue
        if raw.startswith("    ") and not exc_lines:
            # Source line under a frame, or the caret markers below it.
            if pending and not _MARKERS.match(raw):
                frames.append(ParsedFrame(*pending, stripped))
                pending = None
            continue
        repeated = _REPEATED.match(raw) if not exc_lines else None
        if repeated:
            if pending:
                frames.append(ParsedFrame(*pending, None))
                pending = None
            if repeated["count"] is not None and frames and repeats_left > 0:
                count = min(int(repeated["count"]), repeats_left)
                frames.extend([frames[-1]] * count)
                repeats_left -= count
            continue
        if raw.startswith("  ") and not exc_lines and (pending or frames or location):
            continue  # SyntaxError's source/caret lines, or a frame line cut short
        exc_lines.append(raw)
    reading.pending, reading.location = pending, location
    reading.repeats_left, reading.in_traceback = repeats_left, in_traceback
    return reading


def _with_location(message: str, path: str, lineno: int) -> str:
    """A SyntaxError's printed message with its location, as ``str()`` writes it (and so as
    sentry-sdk sends it): ``invalid syntax (views.py, line 3)``; notes stay below."""
    first, newline, rest = message.partition("\n")
    suffix = f" ({path.rpartition('/')[2]}, line {lineno})"
    if first.endswith(suffix):
        return message
    return f"{first}{suffix}{newline}{rest}"


def _split_exception_line(lines: list[str]) -> tuple[str, str]:
    """``"pkg.Error: first line"`` + continuation lines -> type and message."""
    if not lines:
        return "", ""  # cut short before the exception line: the caller fills it in
    head, sep, rest = lines[0].partition(": ")
    if not sep:
        head, _, rest = lines[0].partition(":")
    message = "\n".join([rest, *lines[1:]]) if lines[1:] else rest
    return head.strip(), message.strip("\n")


def _unbox(lines: list[str], column: int) -> list[str]:
    """Shift a group box's content left so its ``| `` bar at ``column`` disappears.

    Deeper lines (a nested group's boxes) keep their shape relative to the new margin.
    """
    bar = " " * column + "|"
    margin = " " * column
    out: list[str] = []
    for line in lines:
        if line.startswith(bar):
            out.append(line[column + 2 :])
        elif line.startswith(margin):
            out.append(line[column:])
        elif not line.strip():
            out.append("")
    return out


def _first_member_separator(lines: list[str]) -> int | None:
    for index, line in enumerate(lines):
        if line.lstrip().startswith("+-+") and _GROUP_SEPARATOR.match(line.strip()):
            return index
    return None


def _parse_group(lines: list[str]) -> ParsedException | None:
    """An exception group: its own traceback box, then one box per member.

    Python draws the group's own lines with a ``| `` bar at column c, opens the members with
    ``+-+---- 1 ----`` at column c, and puts each member's lines (bar) and the separators
    ``+---- 2 ----`` between members at column c + 2. Nested groups repeat that, further in.
    """
    first = _first_member_separator(lines)
    own_lines = lines if first is None else lines[:first]
    column = (
        len(own_lines[0]) - len(own_lines[0].lstrip())
        if first is None
        else (len(lines[first]) - len(lines[first].lstrip()))
    )
    own = [line for line in own_lines if not _GROUP_START.match(line.strip())]
    # A nested group's own lines come here without their bar (its box is the member's), and
    # keep their indentation: a frame's source line is no exception line.
    own = _unbox(own, column)
    group = _parse_plain(["Traceback (most recent call last):", *own])
    if group is None:
        return None
    group.is_group = True
    group.message = group_message(group.message, None)
    if first is None:
        return group

    inner = column + 2
    members: list[list[str]] = []
    current: list[str] = []
    for line in lines[first + 1 :]:
        is_separator = (
            line.startswith(" " * inner + "+-")
            and not line.startswith(" " * inner + "+-+")
            and _GROUP_SEPARATOR.match(line.strip()) is not None
        )
        if is_separator:
            members.append(current)
            current = []
        else:
            current.append(line)
    members.append(current)
    for member in members:
        text = "\n".join(_unbox(member, inner)).strip("\n")
        if not text or _UNPRINTED_MEMBERS.match(text.strip()):
            continue
        group.children.extend(parse_stacktrace(text))
    return group


class ParseCache:
    """:func:`parse_stacktrace` with a memory of the last ``max_texts`` texts it parsed: an
    error that happens again prints the same text. Texts over ``max_chars`` are parsed each
    time. The parsed exceptions are shared by every caller: read them, never change them."""

    def __init__(self, max_texts: int = 256, max_chars: int = 16_384) -> None:
        self._max_chars = max_chars
        self._parsed: Lru[str, list[ParsedException]] = Lru(max(1, max_texts))
        self._tracebacks = Tracebacks(max_texts)
        self._lock = threading.Lock()

    def __call__(self, text: str, message: str | None = None) -> list[ParsedException]:
        """``parse_stacktrace(text, message=message)``; see there for ``message``."""
        if message is not None and _quotes(message):
            # Rare (a message holding a traceback), and read with the message: not kept.
            return parse_stacktrace(text, message=message)
        if len(text) > self._max_chars:
            return parse_stacktrace(text)
        with self._lock:
            known = self._parsed.use(text)
            if known is not None:
                return known
            # A new text: often a known traceback under a new message.
            parsed = parse_stacktrace(text, self._tracebacks)
            self._parsed.put(text, parsed)
        return parsed

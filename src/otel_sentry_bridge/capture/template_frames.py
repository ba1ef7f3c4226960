"""The template frame of an error raised while Django compiled or rendered a template.

With the template engine's ``debug`` option (``TEMPLATES[...]["OPTIONS"]["debug"]``, by
default ``settings.DEBUG``), Django attaches ``exc.template_debug`` to such an exception: the
template's name, the line that failed and the lines around it (``Template.get_exception_info``;
its Jinja2 backend gives the same keys). As sentry-sdk does, that becomes one more stack
frame, the template file and line with its source, so the event shows where in the template
it failed and not only where in Django's parser.

Runs on the capturing thread: it only reads the attribute Django already filled, never a
file, and copies a bounded part of it. Pure; never raises.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

from ..safe_repr import truncate

__all__ = ["CONTEXT_LINES", "MAX_LINE_CHARS", "template_frame"]

CONTEXT_LINES = 5  # source lines kept on each side of the failing one
MAX_LINE_CHARS = 1024  # per source line (and for the template's name)
_MAX_SOURCE_LINES = 1000  # entries of ``source_lines`` looked at (Django gives 21)
_UNNAMED = "<django template>"


def template_frame(exc: BaseException | None) -> dict[str, Any] | None:
    """The Sentry frame of the template ``exc`` was raised in, or None when ``exc`` carries no
    template debug information (``template_debug``) that names a line."""
    try:
        debug = getattr(exc, "template_debug", None)
        if debug is None or not isinstance(debug, Mapping):  # (None: no ABC check)
            return None
        line = debug.get("line")
        if type(line) is not int or line < 1:
            return None
        name = debug.get("name")
        path = truncate(name, MAX_LINE_CHARS) if isinstance(name, str) and name else _UNNAMED
        frame: dict[str, Any] = {
            "filename": path,
            "abs_path": path,
            "lineno": line,
            "function": "<template>",
            "in_app": True,
        }
        before, current, after = _context(debug, line)
        if current is not None:
            frame["context_line"] = current
            frame["pre_context"] = before
            frame["post_context"] = after
        return frame
    except Exception:  # whatever a template engine put there: no frame rather than no event
        return None


def _context(debug: Mapping[str, Any], line: int) -> tuple[list[str], str | None, list[str]]:
    """The lines before the failing one (at most ``CONTEXT_LINES``), that line (None when it
    is not among them) and those after it, each cut to ``MAX_LINE_CHARS``."""
    numbered = _numbered_lines(debug)
    before: list[str] = []
    after: list[str] = []
    current: str | None = None
    for number, text in numbered:
        if number < line:
            before.append(text)
            del before[:-CONTEXT_LINES]
        elif number == line:
            current = text
        elif len(after) < CONTEXT_LINES:
            after.append(text)
        else:
            break
    return before, current, after


def _numbered_lines(debug: Mapping[str, Any]) -> list[tuple[int, str]]:
    """``(line number, text)`` pairs: Django's ``source_lines`` (its text keeps the line's
    newline), or the whole ``source`` split into lines."""
    pairs = debug.get("source_lines")
    out: list[tuple[int, str]] = []
    if isinstance(pairs, Sequence) and not isinstance(pairs, str):
        for pair in islice(pairs, _MAX_SOURCE_LINES):
            if isinstance(pair, Sequence) and len(pair) == 2:
                number, text = pair
                if type(number) is int and isinstance(text, str):
                    out.append((number, text))
        if out and out[-1][1] == "":
            # Django's last "line" of a template that ends with a newline: what follows that
            # newline (every line it gives keeps its newline, so only that one is empty).
            out.pop()
        return [(number, _line(text)) for number, text in out]
    source = debug.get("source")
    if isinstance(source, str):
        line = debug.get("line")
        first = max(1, line - CONTEXT_LINES) if type(line) is int else 1
        # Only the lines needed: a template of a million lines is not split whole.
        for number, text in enumerate(islice(_split(source), first - 1, None), start=first):
            out.append((number, _line(text)))
            if type(line) is int and number >= line + CONTEXT_LINES:
                break
    return out


def _split(source: str) -> Iterator[str]:
    start = 0
    while start <= len(source):
        end = source.find("\n", start)
        if end < 0:
            yield source[start:]
            return
        yield source[start:end]
        start = end + 1


def _line(text: str) -> str:
    return truncate(str.__str__(text).rstrip("\r\n"), MAX_LINE_CHARS)

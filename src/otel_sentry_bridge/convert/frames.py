"""Parsed frames -> Sentry stack frames: module names, ``in_app``, source context.

Pure given its inputs: the interpreter's layout (:class:`CodeLayout`) and a source reader are
passed in, so tests can use any layout and the worker can cache file reads.
"""

from __future__ import annotations

import enum
import os
import sys
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .stacktrace import ParsedFrame

__all__ = [
    "SOURCE_CHANGED",
    "CodeLayout",
    "SourceChanged",
    "SourceReader",
    "sentry_frame",
    "sentry_frames",
]


class SourceChanged(enum.Enum):
    """A source reader's answer for a file that may no longer hold the code that ran: it was
    modified since the process started. Neither its lines nor the line printed in the
    traceback (linecache read that from the same file, maybe after the change) are shown."""

    SINCE_START = "modified since the process started"


SOURCE_CHANGED: Final = SourceChanged.SINCE_START

# Reads a file's lines (without newlines): None when it cannot be read (missing, binary, too
# big; the printed line is shown instead), SOURCE_CHANGED when it changed since the process
# started (no source at all).
SourceReader = Callable[[str], "Sequence[str] | SourceChanged | None"]

_MAX_PLACEMENTS = 4096
_THIRD_PARTY_MARKERS = (
    f"{os.sep}site-packages{os.sep}",
    f"{os.sep}dist-packages{os.sep}",
)


@dataclass(frozen=True)
class CodeLayout:
    """Where code lives in this interpreter: import roots and the standard library."""

    import_roots: tuple[str, ...]  # longest first, each ending with os.sep
    stdlib_roots: tuple[str, ...]
    in_app_include: tuple[str, ...] = ()
    in_app_exclude: tuple[str, ...] = ()
    # path -> (module, filename, in_app): a memo, so not part of the layout's identity. The
    # same few files raise again and again; matching them against every root is not free.
    _placements: dict[str, tuple[str | None, str, bool]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def placement(self, path: str) -> tuple[str | None, str, bool]:
        """``(module, filename relative to its import root, in_app)`` of a source path."""
        known = self._placements.get(path)
        if known is None:
            module, filename = _module_and_filename(path, self)
            known = (module, filename, _in_app(module, path, self))
            if len(self._placements) >= _MAX_PLACEMENTS:
                self._placements.clear()  # odd paths (exec'd code): start over, stay bounded
            self._placements[path] = known
        return known

    @classmethod
    def current(
        cls, in_app_include: Sequence[str] = (), in_app_exclude: Sequence[str] = ()
    ) -> CodeLayout:
        """The layout of the running interpreter (reads ``sys.path`` once)."""
        roots = {_as_dir(p) for p in sys.path if p and os.path.isabs(p)}
        paths = sysconfig.get_paths()
        stdlib = {_as_dir(paths[key]) for key in ("stdlib", "platstdlib") if paths.get(key)}
        return cls(
            import_roots=tuple(sorted(roots, key=len, reverse=True)),
            stdlib_roots=tuple(sorted(stdlib, key=len, reverse=True)),
            in_app_include=tuple(in_app_include),
            in_app_exclude=tuple(in_app_exclude),
        )


def _as_dir(path: str) -> str:
    path = os.path.normpath(os.path.realpath(path)) if os.path.isabs(path) else path
    return path if path.endswith(os.sep) else path + os.sep


def _module_and_filename(path: str, layout: CodeLayout) -> tuple[str | None, str]:
    """``/app/src/shop/views.py`` -> ``("shop.views", "shop/views.py")`` under root /app/src."""
    if path.startswith("<"):  # <string>, <frozen importlib._bootstrap>, <stdin>
        return None, path
    for root in layout.import_roots:
        if path.startswith(root):
            relative = path[len(root) :]
            stem, ext = os.path.splitext(relative)
            if ext not in (".py", ".pyw") or not stem:
                return None, relative
            parts = stem.split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if not parts or not all(part.isidentifier() for part in parts):
                return None, relative
            return ".".join(parts), relative
    return None, path


def _matches(prefixes: tuple[str, ...], module: str | None, path: str) -> bool:
    for prefix in prefixes:
        if module and (module == prefix or module.startswith(prefix + ".")):
            return True
        if os.path.isabs(prefix) and path.startswith(prefix):
            return True
    return False


def _in_app(module: str | None, path: str, layout: CodeLayout) -> bool:
    if _matches(layout.in_app_exclude, module, path):
        return False
    if _matches(layout.in_app_include, module, path):
        return True
    if path.startswith("<"):
        return False
    if any(marker in path for marker in _THIRD_PARTY_MARKERS):
        return False
    return not any(path.startswith(root) for root in layout.stdlib_roots)


def sentry_frame(
    frame: ParsedFrame, layout: CodeLayout, read_source: SourceReader, context_lines: int
) -> dict[str, Any]:
    """One Sentry frame. Its source context comes from the file when readable (the line and
    ``context_lines`` lines either side), else from the line Python printed in the traceback.
    A file the reader reports as changed since the process started gives no source at all:
    neither its lines nor the printed line are known to be the code that ran. With
    ``context_lines`` 0 the file is consulted only for that verdict, when a line was printed."""
    module, filename, in_app = layout.placement(frame.path)
    result: dict[str, Any] = {
        "filename": filename,
        "abs_path": frame.path,
        "lineno": frame.lineno,
        "function": frame.function or "<module>",
        "in_app": in_app,
    }
    if module:
        result["module"] = module
    lines = _file_source(frame, read_source, context_lines)
    if lines is SOURCE_CHANGED:
        return result
    if context_lines and lines and 0 < frame.lineno <= len(lines):
        index = frame.lineno - 1
        result["context_line"] = lines[index]
        result["pre_context"] = list(lines[max(0, index - context_lines) : index])
        result["post_context"] = list(lines[index + 1 : index + 1 + context_lines])
    elif frame.source_line is not None:
        result["context_line"] = frame.source_line
    return result


def _file_source(
    frame: ParsedFrame, read_source: SourceReader, context_lines: int
) -> Sequence[str] | SourceChanged | None:
    """The reader's answer for the frame's file, when the frame has a file (not ``<string>``)
    and there is something to take from it or to check: context lines or a printed line."""
    if frame.path.startswith("<") or not (context_lines or frame.source_line is not None):
        return None
    return read_source(frame.path)


def sentry_frames(
    frames: Sequence[ParsedFrame], layout: CodeLayout, read_source: SourceReader, context: int
) -> list[dict[str, Any]]:
    """Frames in Sentry's order (outermost call first, as Python prints them)."""
    return [sentry_frame(frame, layout, read_source, context) for frame in frames]

"""Parsed frames -> Sentry stack frames: module names, ``in_app``, source context.

Pure given its inputs: the interpreter's layout (:class:`CodeLayout`) and a source reader are
passed in, so tests can use any layout and the worker can cache file reads.

A frame's module is, as sentry-sdk reports it (the frame's ``__name__``), the name of the
loaded module whose ``__file__`` is the frame's file (:class:`LoadedModules`, the layout of
the running interpreter has one); a file no module was loaded from under one name gets a name
derived from its path and the import roots. The frames OTel's ``use_span`` and
``start_as_current_span`` context managers add in front of an exception they record are not
frames of the application's stack and are left out.
"""

from __future__ import annotations

import enum
import os
import sys
import sysconfig
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from types import ModuleType
from typing import Any, Final

from .stacktrace import ParsedFrame

__all__ = [
    "SOURCE_CHANGED",
    "CodeLayout",
    "FrameMaker",
    "LoadedModules",
    "SourceChanged",
    "SourceReader",
    "file_source",
    "frame_at",
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
# How a parsed frame becomes a Sentry frame: sentry_frame, or a cache in front of it.
FrameMaker = Callable[[ParsedFrame, "CodeLayout", SourceReader, int], "dict[str, Any]"]

_MAX_PLACEMENTS = 4096
_MAX_MODULES = 20_000  # modules looked at per rebuild of the loaded-modules map
_THIRD_PARTY_MARKERS = (
    f"{os.sep}site-packages{os.sep}",
    f"{os.sep}dist-packages{os.sep}",
)
# Generator frames of OTel's context managers: an exception recorded when it leaves a
# ``with tracer.start_as_current_span(...)`` block was thrown into them, so they head its
# traceback, outside the application's own outermost frame.
_OTEL_PACKAGE = f"{os.sep}opentelemetry{os.sep}"
_OTEL_CONTEXT_FUNCTIONS = frozenset({"use_span", "start_as_current_span"})


class LoadedModules:
    """Source file -> name of the module loaded from it, read from ``sys.modules`` (or the
    mapping given). Built when first asked and again whenever the number of loaded modules
    changed since; a file loaded as two different modules has no name here. Not locked: the
    worker thread is its only user, and a rebuild swaps the whole map at once."""

    __slots__ = ("_by_file", "_modules", "_size")

    def __init__(self, modules: Mapping[str, Any] | None = None) -> None:
        self._modules: Mapping[str, Any] = sys.modules if modules is None else modules
        self._size = -1
        self._by_file: dict[str, str | None] = {}

    def refresh(self) -> bool:
        """Rebuild the map if modules were loaded or removed since; True when it was."""
        size = len(self._modules)
        if size == self._size:
            return False
        self._by_file = _files_to_modules(self._modules)
        self._size = size
        return True

    def name_of(self, path: str) -> str | None:
        """The name the module at ``path`` was loaded under, as of the last refresh."""
        return self._by_file.get(path)


def _files_to_modules(modules: Mapping[str, Any]) -> dict[str, str | None]:
    """``__file__`` -> ``__name__`` of each loaded module, ``None`` for a file loaded under
    two names. Attributes are read from the module's ``__dict__``: a lazily loaded module
    (``importlib.util.LazyLoader``) must not be made to run its code on this thread."""
    by_file: dict[str, str | None] = {}
    try:
        # dict(sys.modules) is one C call: no other thread's import changes it meanwhile
        snapshot = list(islice(dict(modules).values(), _MAX_MODULES))
    except Exception:
        return by_file
    for module in snapshot:
        if not issubclass(type(module), ModuleType):
            continue  # objects some libraries put in sys.modules
        try:
            namespace = object.__getattribute__(module, "__dict__")
            path, name = namespace.get("__file__"), namespace.get("__name__")
        except Exception:
            continue
        if not isinstance(path, str) or not isinstance(name, str) or not path.endswith(".py"):
            continue
        known = by_file.get(path, name)
        by_file[path] = name if known == name else None
    return by_file


@dataclass(frozen=True)
class CodeLayout:
    """Where code lives in this interpreter: import roots and the standard library."""

    import_roots: tuple[str, ...]  # longest first, each ending with os.sep
    stdlib_roots: tuple[str, ...]
    in_app_include: tuple[str, ...] = ()
    in_app_exclude: tuple[str, ...] = ()
    # The names modules were loaded under, preferred to names derived from import roots;
    # None: derived names only (a layout built by hand, in tests).
    loaded: LoadedModules | None = field(default=None, compare=False, hash=False, repr=False)
    # path -> (module, filename, in_app): a memo, so not part of the layout's identity. The
    # same few files raise again and again; matching them against every root is not free.
    _placements: dict[str, tuple[str | None, str, bool]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def placement(self, path: str) -> tuple[str | None, str, bool]:
        """``(module, filename relative to its import root, in_app)`` of a source path."""
        loaded = self.loaded
        if loaded is not None and loaded.refresh():
            self._placements.clear()  # names may have changed with the modules loaded
        known = self._placements.get(path)
        if known is None:
            name = loaded.name_of(path) if loaded is not None else None
            module: str | None
            if name is not None:
                module, filename = name, _filename_for(name, path)
            else:
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
            loaded=LoadedModules(),
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


def _filename_for(module: str, path: str) -> str:
    """The path's last components, as many as the module name has parts (plus the
    ``__init__.py`` of a package): ``shop.views`` at ``/srv/src/shop/views.py`` ->
    ``shop/views.py``; ``__main__`` -> the script's file name."""
    parts = path.split(os.sep)
    count = module.count(".") + 1
    if parts[-1] in ("__init__.py", "__init__.pyw"):
        count += 1
    return os.sep.join(parts[-count:])


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
    return frame_at(
        frame,
        layout.placement(frame.path),
        file_source(frame, read_source, context_lines),
        context_lines,
    )


def frame_at(
    frame: ParsedFrame,
    placement: tuple[str | None, str, bool],
    lines: Sequence[str] | SourceChanged | None,
    context_lines: int,
) -> dict[str, Any]:
    """The Sentry frame of ``frame`` given its placement (module, filename, in_app) and what
    the source reader answered for its file (:func:`file_source`)."""
    module, filename, in_app = placement
    result: dict[str, Any] = {
        "filename": filename,
        "abs_path": frame.path,
        "lineno": frame.lineno,
        "function": frame.function or "<module>",
        "in_app": in_app,
    }
    if module:
        result["module"] = module
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


def file_source(
    frame: ParsedFrame, read_source: SourceReader, context_lines: int
) -> Sequence[str] | SourceChanged | None:
    """The reader's answer for the frame's file, when the frame has a file (not ``<string>``)
    and there is something to take from it or to check: context lines or a printed line."""
    if frame.path.startswith("<") or not (context_lines or frame.source_line is not None):
        return None
    return read_source(frame.path)


def _is_otel_context_frame(frame: ParsedFrame) -> bool:
    return frame.function in _OTEL_CONTEXT_FUNCTIONS and _OTEL_PACKAGE in frame.path


def sentry_frames(
    frames: Sequence[ParsedFrame],
    layout: CodeLayout,
    read_source: SourceReader,
    context: int,
    make: FrameMaker | None = None,
) -> list[dict[str, Any]]:
    """Frames in Sentry's order (outermost call first, as Python prints them), without the
    OTel context manager frames that head an exception recorded by ``use_span`` (the
    innermost frame is always kept)."""
    start = 0
    while start < len(frames) - 1 and _is_otel_context_frame(frames[start]):
        start += 1
    make = sentry_frame if make is None else make
    return [make(frame, layout, read_source, context) for frame in frames[start:]]

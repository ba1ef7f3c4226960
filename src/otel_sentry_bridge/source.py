"""Reads source files for context lines, on the worker thread, with a small bounded cache."""

from __future__ import annotations

import codecs
import io
import threading
import tokenize
from collections import OrderedDict
from collections.abc import Sequence

__all__ = ["SourceCache"]

_MAX_FILE_BYTES = 2 * 1024 * 1024


class SourceCache:
    """Callable ``path -> lines | None``. Unreadable, binary or huge files give None."""

    def __init__(self, max_files: int = 256) -> None:
        self._max_files = max_files
        self._files: OrderedDict[str, tuple[str, ...] | None] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, path: str) -> Sequence[str] | None:
        with self._lock:
            if path in self._files:
                self._files.move_to_end(path)
                return self._files[path]
        lines = self._read(path)
        with self._lock:
            self._files[path] = lines
            while len(self._files) > self._max_files:
                self._files.popitem(last=False)
        return lines

    @staticmethod
    def _read(path: str) -> tuple[str, ...] | None:
        try:
            with open(path, "rb") as handle:
                data = handle.read(_MAX_FILE_BYTES + 1)
        except (OSError, ValueError):
            return None
        if len(data) > _MAX_FILE_BYTES or b"\0" in data:
            return None
        return tuple(data.decode(_source_encoding(data), "replace").splitlines())


def _source_encoding(data: bytes) -> str:
    """The encoding Python itself reads the file with: a BOM or a PEP 263 ``coding:`` line
    in the first two lines (``# -*- coding: latin-1 -*-``), else UTF-8."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        codecs.lookup(encoding)
    except (SyntaxError, LookupError):  # an unknown or contradictory declaration
        return "utf-8"
    return encoding  # "utf-8-sig" after a BOM: decoding drops it

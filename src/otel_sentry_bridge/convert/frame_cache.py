"""Sentry frames made once per code location: an error that happens again (the common case:
an error storm is the same few lines failing) costs a dictionary lookup per frame instead of
building, bounding and measuring each frame again.

A cached frame is a :class:`.sealed.SealedFrame`: bounded to Sentry's limits when made, with
its size bound, so scrubbing and the size limits skip it. It is used again only while the
source reader gives the same answer object for its file (the reader re-checks files, so an
edited file makes a new frame) and the code layout places the file as before (modules loaded
since may name it differently).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from ..lru import Lru
from .bound import Bound
from .bound_sections import frame as bound_frame
from .frames import CodeLayout, SourceReader, file_source, frame_at, sentry_frames
from .sealed import SealedFrame
from .stacktrace import ParsedFrame

__all__ = ["FrameCache", "seal"]

_MAX_FRAMES = 1024
_MAX_STACKS = 256
# Far above any one frame: sealing must measure, never cut to a placeholder.
_SEAL_BUDGET = 1 << 30
_SEAL_CAP = 1 << 40

# Longer texts in a frame's key are not kept (a key holds them whole): real paths, function
# names and source lines are far shorter.
_MAX_KEY_CHARS = 1024

_Key = tuple[str, int, "str | None", "str | None", int]
# A stack trace block's frames as made, with what they were made from: the parsed frames
# (held, so that their id, the key, stays theirs), the context lines, the layout, and per
# file (one of its frames) the source reader's answer and the placement.
_Stack = tuple[
    Sequence[ParsedFrame],
    int,
    CodeLayout,
    tuple[tuple[ParsedFrame, object, object], ...],
    tuple[dict[str, Any], ...],
]


def _too_long(frame: ParsedFrame) -> bool:
    return (
        len(frame.path) > _MAX_KEY_CHARS
        or len(frame.function or "") > _MAX_KEY_CHARS
        or len(frame.source_line or "") > _MAX_KEY_CHARS
    )


def seal(frame: dict[str, Any]) -> SealedFrame:
    """``frame`` bounded as the size limits bound a frame, with its size bound."""
    bound = Bound(budget=_SEAL_BUDGET, cap=_SEAL_CAP)
    sealed = SealedFrame(bound_frame(bound, frame))
    sealed.units = bound.size
    sealed.walked = _SEAL_BUDGET - bound.budget
    sealed.encoded = None
    return sealed


class FrameCache:
    """A ``FrameMaker`` (see :func:`.frames.sentry_frames`) that keeps the last
    ``max_frames`` frames it made. Used by one worker thread; locked all the same, for the
    conversion a shutdown may run on another thread."""

    def __init__(self, max_frames: int = _MAX_FRAMES) -> None:
        self._frames: Lru[_Key, tuple[object, object, SealedFrame]] = Lru(max(1, max_frames))
        self._stacks: Lru[int, _Stack] = Lru(_MAX_STACKS)
        self._lock = threading.Lock()

    def stack(
        self,
        frames: Sequence[ParsedFrame],
        layout: CodeLayout,
        read_source: SourceReader,
        context: int,
    ) -> list[dict[str, Any]]:
        """``sentry_frames(frames, ...)`` with this cache, kept per parsed block: the parse
        cache gives the same object for the same traceback lines, so an error that happens
        again costs one check per file its frames show (the reader's answer and the
        placement unchanged, as for each frame) instead of a lookup per frame. A new list
        each time: an event may put frames with its variables in it."""
        if context <= 0:  # the reader is asked only for frames with a printed line
            return sentry_frames(frames, layout, read_source, context, self)
        with self._lock:
            known = self._stacks.use(id(frames))
        if (
            known is not None
            and known[0] is frames
            and known[1] == context
            and known[2] is layout
            and all(
                file_source(frame, read_source, context) is answer
                and layout.placement(frame.path) == placement
                for frame, answer, placement in known[3]
            )
        ):
            return list(known[4])
        files = tuple(
            (frame, file_source(frame, read_source, context), layout.placement(frame.path))
            for frame in {frame.path: frame for frame in frames}.values()
        )
        made = sentry_frames(frames, layout, read_source, context, self)
        if all(type(frame) is SealedFrame for frame in made):
            with self._lock:
                self._stacks.put(id(frames), (frames, context, layout, files, tuple(made)))
        return made

    def __len__(self) -> int:
        return len(self._frames)

    def __call__(
        self, frame: ParsedFrame, layout: CodeLayout, read_source: SourceReader, context: int
    ) -> dict[str, Any]:
        placement = layout.placement(frame.path)
        lines = file_source(frame, read_source, context)
        if _too_long(frame):  # odd text (another instrumentation's): made, never kept
            return seal(frame_at(frame, placement, lines, context))
        key = (frame.path, frame.lineno, frame.function, frame.source_line, context)
        with self._lock:
            known = self._frames.use(key)
        if known is not None and known[0] is lines and known[1] == placement:
            return known[2]
        sealed = seal(frame_at(frame, placement, lines, context))
        with self._lock:
            self._frames.put(key, (lines, placement, sealed))
        return sealed

"""An event's JSON made section by section, each finished section remembered by its content.

Scrubbing (:func:`..convert.scrub.scrub_event`), the size limits
(:func:`..convert.limits.enforce_limits`) and the encoder (:func:`.event_json.event_json`)
treat the top-level sections of an event one by one: what one of them becomes does not depend
on the others, as long as the event stays far below the size limit and the item budget of the
limits' walk. The same code path failing again gives sections equal to those of an event sent
before: the SDK, the process's contexts, the tags, the request of a route, often the exception
itself. :class:`SectionMemo` keeps the finished JSON of recent sections (scrubbed, bounded,
encoded) under a key made from their content, and puts an event together from them.

The result is byte for byte what the whole-event path gives (tests compare them on every kind
of event they have). Where that cannot be known cheaply, it says so (``None``) and the caller
takes the whole-event path:

- the event's keys are not short plain strings;
- the sections together come near the size limit or the limits' item budget (then the whole
  event is measured and trimmed as one, which only the whole-event path does).

Keys: the ``marshal`` bytes of the section (exact types only: equal bytes are equal data).
Sealed frames (:mod:`..convert.sealed`, one object per code location, never changed) count by
identity and are held by the entry, so that their ids stay theirs. The trace context's ids
differ on every event: they are replaced by per-memo random tokens of the same length before
the key is made, and put back into the finished JSON. Sections that cannot be keyed (objects
a ``before_send`` put in, frames with local variables) are finished as they are, every time.
"""

from __future__ import annotations

import json
import marshal
import re
import secrets
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..convert.limits import ITEM_BUDGET, MAX_EVENT_BYTES, UNIT, bound_section
from ..convert.scrub import Scrubber, scrub_event
from ..convert.sealed import SealedFrame, with_frames
from ..lru import Lru
from .event_json import event_json

__all__ = ["HEAD_FIELDS", "SectionMemo"]

# What the envelope's header and sampling context read of an event (pipeline.envelope_for).
HEAD_FIELDS = ("event_id", "type", "environment", "release", "transaction")

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_ENTRIES = 256
_MAX_KEY_BYTES = 4096  # larger sections are finished every time, never kept
_MAX_SECTION_NAME = 200
_IDS = ("trace_id", "span_id", "parent_span_id")
_HEX_ID = re.compile(r"[0-9a-f]{16}|[0-9a-f]{32}")
_REMOVED = b""


class _Finished(NamedTuple):
    fragment: bytes  # '"name":value' (empty when the section is not sent)
    units: int  # the limits' size bound of the fragment, without the enclosing braces
    walked: int  # the limits' item budget it took
    value: Any  # the section as sent, or what the envelope's header reads of it
    held: tuple[Any, ...]  # the sealed frames its key names by id


class SectionMemo:
    """Finishes events for one scrubber; owned by one pipeline (one thread at a time)."""

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._max_units = MAX_EVENT_BYTES // UNIT // 2  # far below the limit: half of it
        self._memo: Lru[tuple[str, bytes], _Finished] = Lru(_ENTRIES)
        # Same length as the ids they stand for, so the size bound is the same.
        self._tokens = {
            "trace_id": secrets.token_hex(16),
            "span_id": secrets.token_hex(8),
            "parent_span_id": secrets.token_hex(8),
        }

    def encode(self, event: Mapping[str, Any]) -> tuple[bytes, dict[str, Any]] | None:
        """The event's JSON as the whole-event path makes it, and its fields the envelope's
        header reads (:data:`HEAD_FIELDS`, ``contexts.trace.trace_id``); None when only the
        whole-event path can tell."""
        fragments: list[bytes] = []
        head: dict[str, Any] = {}
        units = 2
        walked = 0
        for name, value in event.items():
            if type(name) is not str or len(name) > _MAX_SECTION_NAME:
                return None
            finished = self._section(name, value)
            if finished is None:
                return None
            if finished.fragment:
                fragments.append(finished.fragment)
                units += finished.units
                walked += finished.walked
                if name in HEAD_FIELDS:
                    head[name] = finished.value
                elif name == "contexts":
                    trace = _trace({"contexts": finished.value})
                    if trace is not None and "trace_id" in trace:
                        head["contexts"] = {"trace": {"trace_id": trace["trace_id"]}}
        if units > self._max_units or walked >= ITEM_BUDGET:
            return None
        return b"{" + b",".join(fragments) + b"}", head

    def _section(self, name: str, value: Any) -> _Finished | None:
        if name == "event_id" or name == "timestamp":  # new on every event: never kept
            return _identity(name, value) or self._finish(name, value, ())
        ids: dict[str, str] = {}
        held: list[Any] = []
        key = self._key(name, value, ids, held)
        if key is None:
            return self._finish(name, value, ())
        finished = self._memo.use(key)
        if finished is None:
            keyed = value if not ids else _with_ids(value, {k: self._tokens[k] for k in ids})
            finished = self._finish(name, keyed, tuple(held))
            if finished is None:
                return None
            self._memo.put(key, finished)
        if ids:
            return self._with_trace_ids(finished, ids)
        return finished

    def _key(
        self, name: str, value: Any, ids: dict[str, str], held: list[Any]
    ) -> tuple[str, bytes] | None:
        if name == "contexts":
            trace = _trace({"contexts": value})
            if trace is not None:
                for id_name in _IDS:
                    id_value = trace.get(id_name)
                    if id_value is None:
                        continue
                    if type(id_value) is not str or not _HEX_ID.fullmatch(id_value):
                        return None
                    if len(id_value) != len(self._tokens[id_name]):
                        return None
                    ids[id_name] = id_value
                if ids:
                    value = _with_ids(value, {k: "" for k in ids})
        elif name == "exception" or name == "threads":

            def named(frames: list[Any]) -> Any:
                if all(type(f) is SealedFrame and "vars" not in f for f in frames):
                    held.extend(frames)
                    return ("\0sealed", tuple(map(id, frames)))
                return frames

            value = with_frames({name: value}, named)[name]
        try:
            data = marshal.dumps(value)
        except (ValueError, TypeError):  # objects, subclasses: not keyed
            return None
        return (name, data) if len(data) <= _MAX_KEY_BYTES else None

    def _finish(self, name: str, value: Any, held: tuple[Any, ...]) -> _Finished | None:
        """One section scrubbed, bounded and encoded alone; None if that fails (the
        whole-event path then has its own ways with the section)."""
        try:
            scrubbed = scrub_event({name: value}, self._scrubber)
            if name not in scrubbed:
                return _Finished(_REMOVED, 0, 0, None, held)
            bounded, units, walked = bound_section(name, scrubbed[name])
            data = event_json({name: bounded})
        except Exception:
            return None
        return _Finished(data[1:-1], units, walked, bounded, held)

    def _with_trace_ids(self, finished: _Finished, ids: dict[str, str]) -> _Finished | None:
        fragment = finished.fragment
        for id_name, id_value in ids.items():
            token = self._tokens[id_name].encode("ascii")
            if fragment.count(token) != 1:  # the section holds a token itself
                return None
            fragment = fragment.replace(token, id_value.encode("ascii"))
        # What the envelope's header reads of it: the trace id (kept as it is).
        value = {"trace": {"trace_id": ids["trace_id"]}} if "trace_id" in ids else None
        return finished._replace(fragment=fragment, value=value)


def _identity(name: str, value: Any) -> _Finished | None:
    """The event's id or timestamp as the builder makes them (a plain str of hex digits, a
    finite float): never changed by scrubbing or the limits (which measure them as
    ``Bound.opaque`` does), encoded at once. None for anything else."""
    if type(value) is str:
        if not _HEX_ID.fullmatch(value):
            return None
        units = len(value) + 2
    elif type(value) is float:
        units = 4
    else:
        return None
    try:
        text = _ENCODER.encode(value)  # NaN and infinities raise
    except ValueError:
        return None
    fragment = f'"{name}":{text}'.encode("ascii")
    return _Finished(fragment, len(name) + 4 + units, 0, value, ())


def _trace(event: Mapping[str, Any]) -> dict[str, Any] | None:
    contexts = event.get("contexts")
    trace = contexts.get("trace") if type(contexts) is dict else None
    return trace if type(trace) is dict else None


def _with_ids(contexts: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    """``contexts`` with the trace context's ids replaced by ``ids``."""
    return {**contexts, "trace": {**contexts["trace"], **ids}}

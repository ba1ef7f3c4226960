"""An event's JSON made section by section, finished sections and events remembered by content.

Scrubbing (:func:`..convert.scrub.scrub_event`), the size limits
(:func:`..convert.limits.enforce_limits`) and the encoder (:func:`.event_json.event_json`)
treat the top-level sections of an event one by one: what one of them becomes does not depend
on the others, as long as the event stays far below the size limit and the item budget of the
limits' walk. The same code path failing again gives sections equal to those of an event sent
before (the SDK, the process's contexts, the tags, the request of a route), often a whole
event equal but for its ids and time. :class:`SectionMemo` keeps the finished JSON (scrubbed,
bounded, encoded) of recent events and of recent sections under keys made from their content,
and puts each event together from them.

The result is byte for byte what the whole-event path gives (``tests/conftest.py`` compares
the two on every event of every test). Where that cannot be known cheaply, :meth:`encode`
says so (``None``) and the caller takes the whole-event path:

- the event's keys are not short plain strings;
- the sections together come near the size limit or the limits' item budget (the whole event
  is then measured and trimmed as one, which only the whole-event path does);
- the data holds one of the memo's tokens (below) itself.

Keys are the ``marshal`` bytes of the content (exact types only: equal bytes are equal data).
Sealed frames (:mod:`..convert.sealed`: one object per code location, never changed) count by
identity, and the entry holds them so that their ids stay theirs. What differs on every event
(its id, its timestamp, the trace context's ids) is replaced by random tokens of the memo
before the key is made, and put back into the finished JSON: scrubbing and the limits keep
such values as they are, and a token is as long as the id it stands for (the timestamp's is
longer than any float, so the size bound only grows). Sections that cannot be keyed (objects a
``before_send`` put in, frames with local variables) are finished as they are, every time.
"""

from __future__ import annotations

import json
import marshal
import math
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

# What the envelope's header and sampling context read of an event (.envelope_heads),
# besides contexts.trace.trace_id.
HEAD_FIELDS = ("event_id", "type", "environment", "release", "transaction")

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_SECTIONS_KEPT = 256
_EVENTS_KEPT = 64
_MAX_SECTION_KEY = 4096  # larger sections are finished every time, never kept
_MAX_EVENT_KEY = 16384
_MAX_EVENT_BODY = 64 * 1024  # larger events (deep stacks, big sections) are not kept whole
_MAX_SECTION_NAME = 200
_TRACE_IDS = ("trace_id", "span_id", "parent_span_id")
_HEX_ID = re.compile(r"[0-9a-f]{16}|[0-9a-f]{32}")


class _Finished(NamedTuple):
    fragment: bytes  # '"name":value' (empty when the section is not sent)
    units: int  # the limits' size bound of the fragment (not the event's braces)
    walked: int  # the limits' item budget it took
    value: Any  # the section as sent (what the envelope's header may read)
    held: tuple[Any, ...]  # the sealed frames its key names by identity


class _Event(NamedTuple):
    body: bytes  # with the tokens of the event it was made for
    head: dict[str, Any]  # likewise
    held: tuple[Any, ...]


class SectionMemo:
    """Finishes events for one scrubber; owned by one pipeline (one thread at a time)."""

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._max_units = MAX_EVENT_BYTES // UNIT // 2  # far below the limit: half of it
        self._sections: Lru[tuple[str, bytes], _Finished] = Lru(_SECTIONS_KEPT)
        self._events: Lru[bytes, _Event] = Lru(_EVENTS_KEPT)
        # Each as long as what it stands for (the timestamp's: more than a float's JSON).
        self._tokens = {
            "event_id": secrets.token_hex(16),
            "timestamp": "t" + secrets.token_hex(16),
            "trace_id": secrets.token_hex(16),
            "span_id": secrets.token_hex(8),
            "parent_span_id": secrets.token_hex(8),
        }

    def encode(self, event: Mapping[str, Any]) -> tuple[bytes, dict[str, Any]] | None:
        """The event's JSON as the whole-event path makes it, and its fields the envelope's
        header reads (:data:`HEAD_FIELDS`, ``contexts.trace.trace_id``); None when only the
        whole-event path can tell."""
        for name in event:
            if type(name) is not str or len(name) > _MAX_SECTION_NAME:
                return None
        swaps: dict[str, Any] = {}  # token name -> the event's own value
        tokened = self._tokened(event, swaps)
        keyed, held = _frames_named(tokened)
        key = _marshalled(keyed, _MAX_EVENT_KEY)
        made = self._events.use(key) if key is not None else None
        if made is None:
            made = self._made(tokened, keyed, held)
            if made is None:
                return None
            if key is not None and len(made.body) <= _MAX_EVENT_BODY:
                self._events.put(key, made)
        return self._untokened(made, swaps)

    # -- tokens --------------------------------------------------------------------------

    def _tokened(self, event: Mapping[str, Any], swaps: dict[str, Any]) -> dict[str, Any]:
        """``event`` with its per-event values (those of the plain kinds we make) replaced
        by tokens; ``swaps`` gets the values."""
        out = dict(event)
        tokens = self._tokens
        value = out.get("event_id")
        if type(value) is str and len(value) == 32 and _HEX_ID.fullmatch(value):
            swaps["event_id"] = value
            out["event_id"] = tokens["event_id"]
        value = out.get("timestamp")
        if type(value) is float and math.isfinite(value):
            swaps["timestamp"] = value
            out["timestamp"] = tokens["timestamp"]
        contexts = out.get("contexts")
        trace = contexts.get("trace") if type(contexts) is dict else None
        if type(contexts) is dict and type(trace) is dict:
            ids = {}
            for name in _TRACE_IDS:
                value = trace.get(name)
                token = tokens[name]
                if type(value) is str and len(value) == len(token) and _HEX_ID.fullmatch(value):
                    swaps[name] = value
                    ids[name] = token
            if ids:
                out["contexts"] = {**contexts, "trace": {**trace, **ids}}
        return out

    def _untokened(self, made: _Event, swaps: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        body = made.body
        tokens = self._tokens
        for name, value in swaps.items():
            token = tokens[name]
            if name == "timestamp":
                body = body.replace(b'"%s"' % token.encode(), _ENCODER.encode(value).encode())
            else:
                body = body.replace(token.encode(), value.encode())
        head = dict(made.head)
        if "event_id" in swaps:
            head["event_id"] = swaps["event_id"]
        if "trace_id" in swaps and "contexts" in head:
            head["contexts"] = {"trace": {"trace_id": swaps["trace_id"]}}
        return body, head

    # -- one event, section by section -----------------------------------------------------

    def _made(
        self, tokened: dict[str, Any], keyed: dict[str, Any], held: dict[str, tuple[Any, ...]]
    ) -> _Event | None:
        fragments: list[bytes] = []
        head: dict[str, Any] = {}
        units = 2
        walked = 0
        for name, value in tokened.items():
            finished = self._section(name, value, keyed[name], held.get(name, ()))
            if finished is None:
                return None
            if not finished.fragment:  # removed by scrubbing
                continue
            fragments.append(finished.fragment)
            units += finished.units
            walked += finished.walked
            if name in HEAD_FIELDS:
                head[name] = finished.value
            elif name == "contexts":
                contexts = finished.value
                trace = contexts.get("trace") if type(contexts) is dict else None
                if type(trace) is dict and "trace_id" in trace:
                    head["contexts"] = {"trace": {"trace_id": trace["trace_id"]}}
        if units > self._max_units or walked >= ITEM_BUDGET:
            return None
        body = b"{" + b",".join(fragments) + b"}"
        for token in self._tokens.values():
            if body.count(token.encode()) > 1:  # the data holds a token itself
                return None
        return _Event(body, head, tuple(frame for frames in held.values() for frame in frames))

    def _section(
        self, name: str, value: Any, keyed: Any, held: tuple[Any, ...]
    ) -> _Finished | None:
        key = _marshalled(keyed, _MAX_SECTION_KEY)
        if key is None:
            return self._finish(name, value, ())
        finished = self._sections.use((name, key))
        if finished is None:
            finished = self._finish(name, value, held)
            if finished is None:
                return None
            self._sections.put((name, key), finished)
        return finished

    def _finish(self, name: str, value: Any, held: tuple[Any, ...]) -> _Finished | None:
        """One section scrubbed, bounded and encoded alone; None if that fails (the
        whole-event path then has its own ways with the section)."""
        try:
            scrubbed = scrub_event({name: value}, self._scrubber)
            if name not in scrubbed:
                return _Finished(b"", 0, 0, None, held)
            bounded, units, walked = bound_section(name, scrubbed[name])
            data = event_json({name: bounded})
        except Exception:
            return None
        return _Finished(data[1:-1], units, walked, bounded, held)


def _frames_named(
    event: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, tuple[Any, ...]]]:
    """``event`` with each stack trace made only of sealed frames without local variables
    replaced by the frames' identities (a key for it), and the frames so named, by section."""
    keyed = event
    held: dict[str, tuple[Any, ...]] = {}
    for name in ("exception", "threads"):
        if name not in event:
            continue
        named: list[Any] = []

        def by_identity(frames: list[Any], named: list[Any] = named) -> Any:
            if all(type(f) is SealedFrame and "vars" not in f for f in frames):
                named.extend(frames)
                return ("\0sealed", tuple(map(id, frames)))
            return frames

        keyed = {**keyed, name: with_frames({name: event[name]}, by_identity)[name]}
        held[name] = tuple(named)
    return keyed, held


def _marshalled(value: Any, limit: int) -> bytes | None:
    try:
        data = marshal.dumps(value)
    except (ValueError, TypeError):  # objects, subclasses: not keyed
        return None
    return data if len(data) <= limit else None

"""Stack frames finished once per code location and shared by the events that show them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["SealedFrame", "unsealed", "with_frames"]


class SealedFrame(dict[str, Any]):
    """A Sentry frame already within Sentry's limits (made by :func:`.frame_cache.seal`).

    ``units`` is its size bound and ``walked`` the item budget its walk took (both as
    :class:`.bound.Bound` counts them), so that the size limits account for it without
    walking it again. Shared by every event of its code location: never mutated. Local
    variables differ per event: :meth:`with_vars` gives a copy whose ``vars`` the event's walks
    (scrubbing, limits) still handle as any other data.
    """

    __slots__ = ("encoded", "units", "walked")

    units: int
    walked: int
    # Its JSON without ``vars``, made when first sent (deliver/event_json.py).
    encoded: str | None

    def with_vars(self, variables: Mapping[str, Any]) -> SealedFrame:
        frame = SealedFrame(self)
        frame["vars"] = dict(variables)
        frame.units = self.units
        frame.walked = self.walked
        frame.encoded = self.encoded
        return frame


def with_frames(event: Mapping[str, Any], change: Callable[[list[Any]], Any]) -> dict[str, Any]:
    """A copy of ``event`` in which the frames list of each stack trace (of ``exception`` and
    ``threads`` values, plain dicts and lists as the builder makes them) is what ``change``
    makes of it. Only the containers on the way to a changed list are copied."""
    out = dict(event)
    for section in ("exception", "threads"):
        container = out.get(section)
        if type(container) is not dict or type(container.get("values")) is not list:
            continue
        values = []
        for value in container["values"]:
            stacktrace: Any = value.get("stacktrace") if type(value) is dict else None
            frames = stacktrace.get("frames") if type(stacktrace) is dict else None
            if type(frames) is list:
                new = change(frames)
                if new is not frames:
                    value = {**value, "stacktrace": {**stacktrace, "frames": new}}
            values.append(value)
        out[section] = {**container, "values": values}
    return out


def unsealed(event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``event`` that shares no frame with other events: what user code
    (``before_send``) gets, as it may change the event in place. Sealed frames become plain
    dicts with their own lists, walked in full by scrubbing and the limits afterwards."""
    return with_frames(event, lambda frames: [_plain(frame) for frame in frames])


def _plain(frame: Any) -> Any:
    if not isinstance(frame, SealedFrame):
        return frame
    return {k: list(v) if isinstance(v, list) else v for k, v in frame.items()}

"""Sealed frames are shared by events: an event's local variables go on a copy, and user code
(before_send) gets frames of its own, so nothing it does reaches the shared frame."""

from __future__ import annotations

from typing import Any

from otel_sentry_bridge.convert.event import with_vars
from otel_sentry_bridge.convert.frame_cache import seal
from otel_sentry_bridge.convert.sealed import SealedFrame, unsealed


def _event(frames: list[Any]) -> dict[str, Any]:
    return {"event_id": "a" * 32, "exception": {"values": [{"stacktrace": {"frames": frames}}]}}


def test_local_variables_go_on_a_copy_and_before_send_gets_frames_of_its_own() -> None:
    frame = seal({"filename": "a.py", "lineno": 1, "pre_context": ["a"], "in_app": True})
    event = _event([with_vars(frame, {"x": "1"})])
    assert "vars" not in frame
    private = unsealed(event)
    mine = private["exception"]["values"][0]["stacktrace"]["frames"][0]
    mine["pre_context"].append("planted")
    mine["vars"]["x"] = "planted"
    assert frame["pre_context"] == ["a"]
    assert type(mine) is dict


def test_a_copy_with_vars_keeps_the_size_bound_and_stays_sealed() -> None:
    frame = seal({"filename": "a.py", "lineno": 1, "context_line": "x = 1"})
    copy = frame.with_vars({"x": "1"})
    assert isinstance(copy, SealedFrame)
    assert (copy.units, copy.walked) == (frame.units, frame.walked)
    assert copy["vars"] == {"x": "1"} and "vars" not in frame


def test_unsealed_leaves_odd_sections_alone() -> None:
    event = {"exception": "not a mapping", "threads": {"values": [None, {"stacktrace": 3}]}}
    assert unsealed(event) == event

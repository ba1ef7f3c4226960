"""An event's JSON with sealed frames spliced in is the same bytes as the careful encoder's,
whatever the event holds; strings that look like the placeholder stay strings."""

from __future__ import annotations

import json
from typing import Any

from otel_sentry_bridge.convert.event import with_vars
from otel_sentry_bridge.convert.frame_cache import seal
from otel_sentry_bridge.deliver import event_json as module
from otel_sentry_bridge.deliver.envelope import json_dumps
from otel_sentry_bridge.deliver.event_json import event_json


def _frame(n: int) -> Any:
    return seal(
        {
            "filename": f"shop/m{n}.py",
            "abs_path": f"/srv/shop/m{n}.py",
            "lineno": n,
            "function": "f✓",
            "in_app": True,
            "context_line": 'x = "quoted \\\\ back"',
            "pre_context": ["a", "b"],
        }
    )


def _event(*values: Any, **extra: Any) -> dict[str, Any]:
    return {"event_id": "e" * 32, "exception": {"values": list(values)}, **extra}


def test_sealed_frames_give_the_same_bytes_as_the_careful_encoder() -> None:
    frames = [_frame(n) for n in range(4)]
    frames[-1] = with_vars(frames[-1], {"order": {"id": 7, "items": [1, 2]}, "s": "é"})
    event = _event(
        {"type": "KeyError", "value": "k", "stacktrace": {"frames": frames[:2]}},
        {"type": "E", "value": "v", "stacktrace": {"frames": frames}, "mechanism": {}},
        {"type": "NoFrames", "value": "x"},
        threads={"values": [{"id": 1, "stacktrace": {"frames": frames[1:3]}}]},
        message="plain",
    )
    for _ in range(2):  # the second time from the frames' kept JSON
        assert event_json(event) == json_dumps(event)
    assert (
        json.loads(event_json(event))["exception"]["values"][1]["stacktrace"]["frames"][3]["vars"][
            "s"
        ]
        == "é"
    )


def test_a_string_that_looks_like_a_placeholder_stays_a_string() -> None:
    fake = f"{module._TOKEN}0"
    event = _event(
        {"type": "E", "value": fake, "stacktrace": {"frames": [_frame(1)]}},
        request={"headers": {"X": fake}},
    )
    assert event_json(event) == json_dumps(event)


def test_odd_data_takes_the_careful_way() -> None:
    event = _event(
        {"type": "E", "value": "lone \ud800 surrogate", "stacktrace": {"frames": [_frame(1)]}},
        extra={"nan": float("nan"), "obj": object()},
    )
    assert event_json(event) == json_dumps(event)
    frame = _frame(2)
    frame["context_line"] = "lone \udfff"  # in a frame itself
    assert event_json(_event({"stacktrace": {"frames": [frame]}})) == json_dumps(
        _event({"stacktrace": {"frames": [frame]}})
    )

"""Frames made once per code location: the same frame object for the same location and file
version, bounded when made, never changed by an event (local variables, before_send), and
accounted by the size limits exactly as a frame walked in full."""

from __future__ import annotations

import copy
from typing import Any

from otel_sentry_bridge.convert.bound import MAX_STRING_CHARS
from otel_sentry_bridge.convert.event import with_vars
from otel_sentry_bridge.convert.frame_cache import FrameCache
from otel_sentry_bridge.convert.frames import SOURCE_CHANGED, CodeLayout, sentry_frame
from otel_sentry_bridge.convert.limits import enforce_limits
from otel_sentry_bridge.convert.sealed import SealedFrame
from otel_sentry_bridge.convert.stacktrace import ParsedFrame

LAYOUT = CodeLayout(import_roots=("/srv/app/",), stdlib_roots=("/usr/lib/python3.11/",))
LINES = tuple(f"line {n}" for n in range(1, 40))
FRAME = ParsedFrame("/srv/app/shop/views.py", 12, "checkout", "line 12")


def test_the_same_location_and_file_version_give_the_same_frame() -> None:
    cache = FrameCache()
    first = cache(FRAME, LAYOUT, lambda path: LINES, 5)
    again = cache(FRAME, LAYOUT, lambda path: LINES, 5)
    assert again is first
    assert isinstance(first, SealedFrame)
    assert dict(first) == sentry_frame(FRAME, LAYOUT, lambda path: LINES, 5)


def test_a_new_file_version_or_another_placement_gives_a_new_frame() -> None:
    cache = FrameCache()
    first = cache(FRAME, LAYOUT, lambda path: LINES, 5)
    edited = tuple(line.replace("line", "edited") for line in LINES)
    second = cache(FRAME, LAYOUT, lambda path: edited, 5)
    assert second is not first and second["context_line"] == "edited 12"
    changed = cache(FRAME, LAYOUT, lambda path: SOURCE_CHANGED, 5)
    assert "context_line" not in changed and "pre_context" not in changed
    elsewhere = CodeLayout(import_roots=("/srv/",), stdlib_roots=())
    assert cache(FRAME, elsewhere, lambda path: SOURCE_CHANGED, 5)["module"] == "app.shop.views"


def test_the_cache_stays_bounded() -> None:
    cache = FrameCache(max_frames=8)
    for line in range(1, 30):
        cache(ParsedFrame("/srv/app/m.py", line, "f", None), LAYOUT, lambda path: LINES, 2)
    assert len(cache) == 8


def test_a_sealed_frame_is_bounded_when_made() -> None:
    long_line = "x" * (MAX_STRING_CHARS * 3)
    frame = FrameCache()(FRAME, LAYOUT, lambda path: (long_line,) * 20, 5)
    assert len(frame["context_line"]) <= MAX_STRING_CHARS
    assert all(len(line) <= MAX_STRING_CHARS for line in frame["pre_context"])


def _event(frames: list[Any]) -> dict[str, Any]:
    return {
        "event_id": "a" * 32,
        "timestamp": 1.0,
        "platform": "python",
        "level": "error",
        "exception": {"values": [{"type": "E", "value": "v", "stacktrace": {"frames": frames}}]},
    }


def _plain(frames: list[Any]) -> list[dict[str, Any]]:
    return [copy.deepcopy(dict(frame)) for frame in frames]


def test_limits_treat_sealed_frames_as_the_frames_they_are() -> None:
    cache = FrameCache()
    lines = tuple("y" * 900 for _ in range(60))
    frames = [
        cache(ParsedFrame(f"/srv/app/m{i}.py", 30, "f", None), LAYOUT, lambda path: lines, 5)
        for i in range(40)
    ]
    frames[-1] = with_vars(frames[-1], {"token_count": "3", "big": "z" * 5000})
    for max_bytes in (1024 * 1024, 200_000, 20_000):
        sealed = enforce_limits(_event(frames), max_bytes=max_bytes)
        plain = enforce_limits(_event(_plain(frames)), max_bytes=max_bytes)
        assert _plain(sealed["exception"]["values"][0]["stacktrace"]["frames"]) == _plain(
            plain["exception"]["values"][0]["stacktrace"]["frames"]
        ), max_bytes


def test_frames_with_huge_texts_are_made_but_not_kept() -> None:
    cache = FrameCache()
    huge = ParsedFrame("/srv/app/" + "d/" * 100_000 + "m.py", 1, "f" * 50_000, "x" * 50_000)
    frame = cache(huge, LAYOUT, lambda path: None, 5)
    assert len(cache) == 0
    assert len(frame["abs_path"]) <= MAX_STRING_CHARS
    assert len(frame["context_line"]) <= MAX_STRING_CHARS


# -- whole stack trace blocks (FrameCache.stack) ------------------------------------------------

BLOCK = (
    ParsedFrame("/srv/app/shop/views.py", 12, "checkout", "line 12"),
    ParsedFrame("/srv/app/shop/pay.py", 3, "charge", "line 3"),
    ParsedFrame("/srv/app/shop/views.py", 20, "total", "line 20"),
)


def test_a_block_seen_again_gives_its_frames_again_in_a_new_list() -> None:
    cache = FrameCache()
    first = cache.stack(BLOCK, LAYOUT, lambda path: LINES, 5)
    assert [dict(f) for f in first] == [sentry_frame(f, LAYOUT, lambda p: LINES, 5) for f in BLOCK]
    first[0] = {"replaced": True}  # an event puts a frame with its variables in its list
    again = cache.stack(BLOCK, LAYOUT, lambda path: LINES, 5)
    assert again is not first and again[0] is not first[0]
    assert all(type(frame) is SealedFrame for frame in again)
    assert again[1] is first[1]  # the same sealed frames, not made again


def test_a_block_is_made_again_when_a_file_or_a_placement_changed() -> None:
    cache = FrameCache()
    answers: dict[str, Any] = {"/srv/app/shop/views.py": LINES, "/srv/app/shop/pay.py": LINES}
    first = cache.stack(BLOCK, LAYOUT, answers.__getitem__, 5)
    answers["/srv/app/shop/pay.py"] = tuple(line.replace("line", "edited") for line in LINES)
    edited = cache.stack(BLOCK, LAYOUT, answers.__getitem__, 5)
    assert edited[1]["context_line"] == "edited 3" and edited[0] is first[0]
    modules: dict[str, Any] = {}
    from types import ModuleType

    from otel_sentry_bridge.convert.frames import LoadedModules

    layout = CodeLayout(import_roots=("/srv/app/",), stdlib_roots=(), loaded=LoadedModules(modules))
    before = cache.stack(BLOCK, layout, answers.__getitem__, 5)
    assert before[1]["module"] == "shop.pay"
    loaded = ModuleType("payments")
    loaded.__file__ = "/srv/app/shop/pay.py"
    modules["payments"] = loaded  # the file was imported under another name since
    after = cache.stack(BLOCK, layout, answers.__getitem__, 5)
    assert after[1]["module"] == "payments"


def test_a_file_reported_changed_since_the_start_shows_no_source_on_the_next_error() -> None:
    cache = FrameCache()
    answers: dict[str, Any] = {"/srv/app/shop/views.py": LINES, "/srv/app/shop/pay.py": LINES}
    assert "context_line" in cache.stack(BLOCK, LAYOUT, answers.__getitem__, 5)[0]
    answers["/srv/app/shop/views.py"] = SOURCE_CHANGED
    frames = cache.stack(BLOCK, LAYOUT, answers.__getitem__, 5)
    assert "context_line" not in frames[0] and "context_line" not in frames[2]
    assert frames[1]["context_line"] == "line 3"

"""An event finished section by section, from the memo or not, is the same bytes as the
whole-event path (scrub, limits, JSON) makes; what the memo cannot vouch for goes that path.

(Every event any test sends is compared the same way by ``tests/conftest.py``; these cases
are the ones the memo has to get right on purpose.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from otel_sentry_bridge.convert.event import with_vars
from otel_sentry_bridge.convert.frame_cache import seal
from otel_sentry_bridge.convert.limits import enforce_limits
from otel_sentry_bridge.convert.scrub import scrub_event, scrubber_for
from otel_sentry_bridge.deliver.event_json import event_json
from otel_sentry_bridge.deliver.section_memo import SectionMemo

SCRUBBER = scrubber_for(("password", "token"), send_default_pii=False)


def _whole(event: dict[str, Any]) -> bytes:
    return event_json(enforce_limits(scrub_event(event, SCRUBBER)))


def _frame(n: int) -> Any:
    return seal(
        {
            "filename": f"shop/m{n}.py",
            "abs_path": f"/srv/shop/m{n}.py",
            "lineno": n,
            "function": "checkout",
            "in_app": True,
            "context_line": "raise KeyError(order_id)",
        }
    )


FRAMES = [_frame(n) for n in range(3)]


def _event(n: int, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"{n:032x}",
        "timestamp": 1_700_000_000.5 + n,
        "platform": "python",
        "level": "error",
        "transaction": "/orders/{order_id}/",
        "environment": "production",
        "sdk": {"name": "otel-sentry-bridge", "version": "1"},
        "contexts": {
            "trace": {"trace_id": f"{n + 1:032x}", "span_id": f"{n + 2:016x}", "op": "http"},
            "runtime": {"name": "CPython"},
        },
        "tags": {"service.name": "shop"},
        "request": {"url": "https://shop/orders/7/?password=hunter2", "method": "GET"},
        "exception": {
            "values": [{"type": "KeyError", "value": "7", "stacktrace": {"frames": FRAMES}}]
        },
        "extra": {"token": "s3cret", "cart": [1, 2]},
    }
    event.update(changes)
    return event


def test_events_of_one_code_path_come_from_the_memo_with_their_own_ids() -> None:
    memo = SectionMemo(SCRUBBER)
    for n in range(5):
        event = _event(n)
        body, head = memo.encode(event) or (b"", {})
        assert body == _whole(event)
        sent = json.loads(body)
        assert sent["event_id"] == f"{n:032x}"
        assert sent["contexts"]["trace"] == {
            "trace_id": f"{n + 1:032x}",
            "span_id": f"{n + 2:016x}",
            "op": "http",
        }
        assert sent["extra"]["token"] == "[Filtered]"
        assert "hunter2" not in body.decode()
        assert head == {
            "event_id": f"{n:032x}",
            "transaction": "/orders/{order_id}/",
            "environment": "production",
            "contexts": {"trace": {"trace_id": f"{n + 1:032x}"}},
        }
    # One entry per section and one for the event, whatever the ids and the timestamp.
    assert len(memo._sections) == len(_event(0))
    assert len(memo._events) == 1


def test_a_changed_section_is_finished_again() -> None:
    memo = SectionMemo(SCRUBBER)
    memo.encode(_event(0))
    event = _event(1, extra={"token": "other", "password": "pw"})
    body, _ = memo.encode(event) or (b"", {})
    assert body == _whole(event)
    assert json.loads(body)["extra"] == {"token": "[Filtered]", "password": "[Filtered]"}


@pytest.mark.parametrize(
    "changes",
    [
        # frames with local variables: new objects on every event, never kept
        {
            "exception": {
                "values": [
                    {
                        "type": "E",
                        "value": "v",
                        "stacktrace": {"frames": [with_vars(FRAMES[0], {"password": "x", "n": 1})]},
                    }
                ]
            }
        },
        # what a before_send may leave: objects, odd trace ids, odd types
        {"extra": {"obj": object(), "s": {1, 2}}},
        {"contexts": {"trace": {"trace_id": "not hex", "span_id": 7}}},
        {"contexts": {"trace": {"trace_id": "A" * 32, "span_id": "b" * 16}}},
        {"contexts": {"trace": {"trace_id": "a" * 5000}}},
        {"event_id": "x" * 40, "timestamp": float("nan")},
        {"timestamp": "2024-01-01T00:00:00Z"},
        {"extra": {"deep": [[[[[[[["x"]]]]]]]], "nan": float("inf")}},
        {"request": {"data": "\ud800 lone surrogate", "headers": {"Authorization": "Bearer x"}}},
        {"tags": {"bad key!": "v", "k": "line\nbreak", "n": 3}},
        {"user": {"id": "1", "ip_address": "1.2.3.4", "password": "x"}},
    ],
)
def test_odd_events_are_the_same_bytes_as_the_whole_event_path(changes: dict[str, Any]) -> None:
    memo = SectionMemo(SCRUBBER)
    for n in range(2):  # the second time from the memo where it keeps anything
        event = _event(n, **changes)
        got = memo.encode(event)
        assert got is not None
        assert got[0] == _whole(event)


@pytest.mark.parametrize("token", ["event_id", "timestamp", "trace_id", "span_id"])
def test_a_token_inside_the_data_sends_the_event_the_whole_way(token: str) -> None:
    memo = SectionMemo(SCRUBBER)
    memo.encode(_event(0))
    contexts = _event(1)["contexts"]
    contexts["runtime"] = {"name": f"x{memo._tokens[token]}"}
    assert memo.encode(_event(1, contexts=contexts)) is None
    assert memo.encode(_event(2, tags={"t": memo._tokens[token]})) is None
    event = _event(3)
    assert (memo.encode(event) or (b"",))[0] == _whole(event)


def test_events_near_the_size_limit_are_measured_and_trimmed_as_a_whole() -> None:
    memo = SectionMemo(SCRUBBER)
    big = {f"k{i}": "x" * 1000 for i in range(50)}
    event = _event(0, extra=big, request={"data": big}, contexts={"a": big, "b": big})
    assert memo.encode(event) is None
    assert memo.encode(_event(0, extra={"n": 1})) is not None


def test_odd_section_names_send_the_event_the_whole_way() -> None:
    memo = SectionMemo(SCRUBBER)
    assert memo.encode({**_event(0), 7: "x"}) is None  # type: ignore[dict-item]
    assert memo.encode({**_event(0), "k" * 300: "x"}) is None


def test_the_memo_holds_the_frames_it_names_by_identity() -> None:
    memo = SectionMemo(SCRUBBER)
    frames = [_frame(9)]
    event = _event(0, exception={"values": [{"type": "E", "stacktrace": {"frames": frames}}]})
    memo.encode(event)
    (entry,) = [f for key, f in memo._sections._items.items() if key[0] == "exception"]
    assert entry.held == tuple(frames)
    # Equal frames that are other objects are another entry, still the same bytes.
    twin = _event(1, exception={"values": [{"type": "E", "stacktrace": {"frames": [_frame(9)]}}]})
    assert (memo.encode(twin) or (b"",))[0] == _whole(twin)
    assert len([key for key in memo._sections if key[0] == "exception"]) == 2


def test_the_memo_is_bounded() -> None:
    memo = SectionMemo(SCRUBBER)
    for n in range(600):
        memo.encode(_event(n, request={"url": f"https://shop/orders/{n}/"}))
    assert len(memo._sections) <= 256 and len(memo._events) <= 64
    # A section past the key size is finished every time, never kept.
    event = _event(0, request={"data": {"k": "x" * 10_000}})
    assert (memo.encode(event) or (b"",))[0] == _whole(event)
    assert not any(b"x" * 1000 in kept.fragment for kept in memo._sections._items.values())


def test_large_events_are_not_kept_whole() -> None:
    memo = SectionMemo(SCRUBBER)
    # Sealed frames with long source lines, named by identity: a small key, a big event.
    frames = [seal({**_frame(n), "pre_context": ["x" * 900] * 2}) for n in range(40)]
    event = _event(0, exception={"values": [{"type": "E", "stacktrace": {"frames": frames}}]})
    assert (memo.encode(event) or (b"",))[0] == _whole(event)
    assert len(memo._events) == 0

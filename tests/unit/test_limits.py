"""enforce_limits: each of Sentry's limits, the order parts are given up in, and odd data.

Every output of a well-formed event is checked by sentry-relay after a trip through
``json_dumps`` (the bytes that would go on the wire).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_sentry_bridge.convert.limits import MAX_EVENT_BYTES, enforce_limits
from otel_sentry_bridge.convert.scrub import DEFAULT_DENYLIST, Scrubber, scrub_event
from otel_sentry_bridge.deliver.envelope import json_dumps
from tests.support.relay import assert_valid_event

TRACE = {"trace_id": "b" * 32, "span_id": "c" * 16, "op": "http.server", "status": "ok"}
KB = 1024


def base_event(**parts: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "a" * 32,
        "timestamp": 1_700_000_000.5,
        "platform": "python",
        "level": "error",
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": "bad input",
                    "stacktrace": {"frames": [frame(0)]},
                }
            ]
        },
        "contexts": {"trace": dict(TRACE)},
    }
    event.update(parts)
    return event


def frame(index: int, **parts: Any) -> dict[str, Any]:
    return {
        "function": f"f{index}",
        "filename": f"app/m{index}.py",
        "lineno": index + 1,
        "in_app": True,
        **parts,
    }


def frames_of(event: dict[str, Any], value: int = -1) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = event["exception"]["values"][value]["stacktrace"]["frames"]
    return frames


def limited(event: dict[str, Any], *, relay: bool = True, **kwargs: Any) -> dict[str, Any]:
    """enforce_limits, checking that the input is untouched, the output fits and (for
    well-formed input) that Sentry accepts it."""
    before = json_dumps(copy.deepcopy(event))
    out = enforce_limits(event, **kwargs)
    assert json_dumps(event) == before, "enforce_limits mutated its input"
    wire = json_dumps(out)
    assert len(wire) <= kwargs.get("max_bytes", MAX_EVENT_BYTES)
    if relay:
        assert_valid_event(json.loads(wire))
    return out


def identity_intact(out: dict[str, Any], event: dict[str, Any]) -> None:
    for key in ("event_id", "timestamp", "level", "platform"):
        assert out[key] == event[key]
    assert out["contexts"]["trace"] == event["contexts"]["trace"]
    types = [(v["type"], v["value"]) for v in out["exception"]["values"]]
    assert types == [(v["type"], v["value"]) for v in event["exception"]["values"]]


# -- single limits -------------------------------------------------------------------------


def test_an_event_within_limits_is_returned_as_is() -> None:
    event = base_event(extra={"a": [1, 2, {"b": "c"}]}, tags={"k": "v"}, message="m")
    assert limited(event) is event


def test_message_and_logentry_are_cut_at_8192_chars() -> None:
    long = "m" * 10_000
    event = base_event(message=long, logentry={"message": long, "formatted": long})
    out = limited(event)
    for text in (out["message"], out["logentry"]["message"], out["logentry"]["formatted"]):
        assert len(text) == 8192 and text.endswith("...") and text.startswith("mmm")


def test_exception_value_is_cut_but_its_type_kept_whole() -> None:
    event = base_event()
    event["exception"]["values"][0].update(type="E" * 5000, value="v" * 9000)
    out = limited(event)
    value = out["exception"]["values"][0]
    assert value["type"] == "E" * 5000
    assert len(value["value"]) == 8192 and value["value"].endswith("...")


def test_tags_with_long_keys_are_dropped_and_long_values_cut() -> None:
    tags = {"k" * 201: "dropped", "k" * 200: "kept", "long": "v" * 300, "short": "ok"}
    out = limited(base_event(tags=tags))
    assert out["tags"] == {"k" * 200: "kept", "long": "v" * 197 + "...", "short": "ok"}


def test_tags_in_list_form_are_bounded_too() -> None:
    out = limited(base_event(tags=[["k" * 201, "x"], ["long", "v" * 300], ["a", "b"]]))
    assert out["tags"] == [["long", "v" * 197 + "..."], ["a", "b"]]


def test_tags_sentry_would_reject_are_dropped_or_mended() -> None:
    tags = {"": "x", "a\tb": "x", "multi": "one\ntwo", "blank": "  ", "obj": {"a": 1}, "n": 5}
    out = limited(base_event(tags=tags))
    assert out["tags"] == {"multi": "one two", "n": "5"}


def test_line_breaks_in_the_logger_name_are_mended() -> None:
    out = limited(base_event(logger="app\r\nviews"))  # relay rejects them
    assert out["logger"] == "app  views"


def test_at_most_100_breadcrumbs_are_kept_the_newest() -> None:
    crumbs = [{"message": str(i), "timestamp": 1_700_000_000 + i} for i in range(150)]
    out = limited(base_event(breadcrumbs={"values": crumbs}))
    assert [c["message"] for c in out["breadcrumbs"]["values"]] == [str(i) for i in range(50, 150)]


def test_frames_keep_the_first_and_last_fifty_of_a_huge_recursion() -> None:
    event = base_event()
    event["exception"]["values"][0]["stacktrace"]["frames"] = [frame(i) for i in range(250)]
    out = limited(event)
    kept = [f["function"] for f in frames_of(out)]
    assert kept == [f"f{i}" for i in range(50)] + [f"f{i}" for i in range(200, 250)]


def place(where: str, data: Any) -> dict[str, Any]:
    """A well-formed event with ``data`` as one databag."""
    if where == "extra":
        return base_event(extra={"data": data})
    if where == "contexts":
        return base_event(contexts={"trace": dict(TRACE), "app": {"data": data}})
    if where == "vars":
        event = base_event()
        frames_of(event)[0]["vars"] = {"data": data}
        return event
    if where == "breadcrumb data":
        return base_event(breadcrumbs={"values": [{"message": "m", "data": {"data": data}}]})
    if where == "request":
        return base_event(request={"data": {"data": data}})
    assert where == "user"
    return base_event(user={"id": "1", "data": {"data": data}})


def taken(where: str, event: dict[str, Any]) -> Any:
    if where == "extra":
        return event["extra"]["data"]
    if where == "contexts":
        return event["contexts"]["app"]["data"]
    if where == "vars":
        return frames_of(event)[0]["vars"]["data"]
    if where == "breadcrumb data":
        return event["breadcrumbs"]["values"][0]["data"]["data"]
    if where == "request":
        return event["request"]["data"]["data"]
    return event["user"]["data"]["data"]


PLACES = pytest.mark.parametrize(
    "where", ["extra", "contexts", "vars", "breadcrumb data", "request", "user"]
)


@PLACES
def test_strings_in_databags_are_cut_at_1024_chars(where: str) -> None:
    out = limited(place(where, ["s" * 5000, {"k": "t" * 1024}]))
    first, second = taken(where, out)
    assert first == "s" * 1021 + "..."
    assert second == {"k": "t" * 1024}


@PLACES
def test_containers_in_databags_keep_fifty_items(where: str) -> None:
    out = limited(place(where, {"list": list(range(80)), "dict": {str(i): i for i in range(80)}}))
    data = taken(where, out)
    assert data["list"] == list(range(50))
    assert data["dict"] == {str(i): i for i in range(50)}


@PLACES
def test_databags_are_cut_at_five_levels(where: str) -> None:
    out = limited(place(where, {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}))
    text = json.dumps(out)
    assert '"d"' in text and '"e"' not in text  # the 5th level is a repr string
    assert "{'e': {'f': 1}}" in text or "{'e': {...}}" in text


def test_source_context_lines_are_bounded() -> None:
    event = base_event()
    frames_of(event)[0].update(
        pre_context=["x" * 3000] * 80, context_line="y" * 3000, post_context=["z"] * 3
    )
    out = limited(event)
    f = frames_of(out)[0]
    assert len(f["pre_context"]) == 50 and all(len(line) == 1024 for line in f["pre_context"])
    assert len(f["context_line"]) == 1024 and f["post_context"] == ["z"] * 3


# -- the byte budget and the order of trimming -----------------------------------------------


def big(n: int, tag: str = "x") -> str:
    return tag * n


def heavy_frames(count: int, vars_each: int, context: int = 80) -> list[dict[str, Any]]:
    return [
        frame(
            i,
            vars={f"v{j}": big(1000, "v") for j in range(vars_each)},
            pre_context=[big(context, "p")] * 5,
            context_line=big(context, "c"),
            post_context=[big(context, "q")] * 5,
        )
        for i in range(count)
    ]


def crumbs(count: int, data_bytes: int) -> dict[str, Any]:
    values = [
        {
            "message": f"crumb {i}",
            "timestamp": 1_700_000_000 + i,
            "data": {f"d{j}": big(1000, "d") for j in range(data_bytes // 1000)},
        }
        for i in range(count)
    ]
    return {"values": values}


def test_vars_of_outer_frames_go_first_and_breadcrumbs_stay() -> None:
    event = base_event(breadcrumbs=crumbs(100, 1000))
    frames_of(event)[:] = heavy_frames(30, 40)  # 30 * 40 KB of vars: 1.2 MB
    assert len(json_dumps(event)) > MAX_EVENT_BYTES
    out = limited(event)
    with_vars = ["vars" in f for f in frames_of(out)]
    assert with_vars[0] is False and with_vars[-1] is True  # innermost keep theirs longest
    assert with_vars == sorted(with_vars)  # a prefix of outer frames lost them
    assert len(out["breadcrumbs"]["values"]) == 100
    assert all("context_line" in f for f in frames_of(out))
    identity_intact(out, event)


def test_oldest_breadcrumbs_go_after_all_vars() -> None:
    event = base_event(breadcrumbs=crumbs(100, 12_000), extra={"keep": "me"})
    frames_of(event)[:] = heavy_frames(10, 20)  # 200 KB vars + 1.2 MB breadcrumbs
    out = limited(event)
    assert not any("vars" in f for f in frames_of(out))
    kept = [c["message"] for c in out["breadcrumbs"]["values"]]
    assert 0 < len(kept) < 100
    assert kept == [f"crumb {i}" for i in range(100 - len(kept), 100)]  # the newest
    assert all("pre_context" in f for f in frames_of(out))
    assert out["extra"] == {"keep": "me"}


def test_everything_is_given_up_in_order_but_the_identity_and_trace() -> None:
    contexts: dict[str, Any] = {"trace": {**TRACE, "data": {"url": "https://jaeger/t"}}}
    for n in range(30):  # 30 contexts of 50 KB: only some can stay
        contexts[f"ctx{n}"] = {f"k{j}": big(1000, "k") for j in range(50)}
    event = base_event(
        breadcrumbs=crumbs(100, 10_000),
        extra={f"e{j}": big(1000, "e") for j in range(50)},
        request={"method": "POST", "url": "https://shop/x", "data": big(8000, "b")},
        contexts=contexts,
    )
    frames_of(event)[:] = heavy_frames(100, 10, context=1000)
    event["exception"]["values"].insert(0, {"type": "KeyError", "value": big(9000, "r")})
    assert len(json_dumps(event)) > 4 * MAX_EVENT_BYTES

    out = limited(event)
    assert not any({"vars", "pre_context", "context_line"} & set(f) for f in frames_of(out))
    assert "breadcrumbs" not in out and "extra" not in out
    assert out["request"] == {"method": "POST", "url": "https://shop/x"}
    assert 1 < len(out["contexts"]) < len(contexts)
    assert out["contexts"]["trace"] == contexts["trace"]
    assert len(frames_of(out)) == 100  # frames themselves stay
    assert out["exception"]["values"][0]["value"] == big(8189, "r") + "..."
    out["exception"]["values"][0]["value"] = event["exception"]["values"][0]["value"]
    identity_intact(out, event)


def test_a_smaller_budget_is_honoured_down_to_the_essentials() -> None:
    event = base_event(
        tags={f"t{i}": big(150) for i in range(500)},
        modules={f"pkg{i}": "1.0" for i in range(2000)},
        user={"id": "1", "email": "bob@example.com"},
        message=big(8000, "m"),
    )
    out = limited(event, max_bytes=4 * KB)
    identity_intact(out, event)


def test_odd_top_level_data_is_dropped_before_the_exception() -> None:
    event = base_event(sdk={"name": big(100_000)}, fingerprint=[big(8000)] * 1000)
    out = limited(event, relay=False, max_bytes=64 * KB)
    identity_intact(out, event)


# -- odd values ------------------------------------------------------------------------------


class Boom:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")


class Hostile(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("no")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("no")

    def __len__(self) -> int:
        return 3


def cyclic() -> dict[str, Any]:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    items: list[Any] = [1]
    items.append(items)
    loop["items"] = items
    return loop


@pytest.mark.parametrize(
    "extra",
    [
        {1: "int key", None: "none key", (1, 2): "tuple key", b"k": "bytes key", Boom(): "x"},
        {"cycle": cyclic()},
        {"bytes": b"\xff\xfe" * 5000, "bytearray": bytearray(b"abc"), "memory": memoryview(b"x")},
        {"boom": Boom(), "set": {1, 2, 3}, "frozen": frozenset({"a"}), "tuple": (1, (2, 3))},
        {"nan": math.nan, "inf": -math.inf, "huge": 10**5000, "neg": -(2**70)},
        {"surrogate": "\ud800" * 3000, "pair": "\ud83d\ude00", "control": "\x00\x1f\x7f" * 500},
        {"hostile": Hostile()},
        {"str subclass": type("S", (str,), {"__len__": lambda self: -1})("abc" * 1000)},
    ],
)
def test_odd_values_never_raise_and_fit(extra: dict[Any, Any]) -> None:
    out = enforce_limits(base_event(extra=extra))
    wire = json_dumps(out)
    assert len(wire) <= MAX_EVENT_BYTES
    assert_valid_event(json.loads(wire))


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"exception": None, "breadcrumbs": None, "tags": None, "contexts": None},
        {"exception": "x", "breadcrumbs": "x", "tags": "x", "contexts": "x", "request": "x"},
        {"exception": [{"type": "T", "value": None}], "breadcrumbs": [1, None, "x"]},
        {"exception": {"values": [None, 3, {"stacktrace": {"frames": "x"}}]}},
        {"exception": {"values": [{"stacktrace": {"frames": [None, 1, {"vars": "x"}]}}]}},
        {"tags": [["a"], None, ["a", "b", "c"], [1, 2]], "logentry": "x", "message": {"x": 1}},
        {"extra": Hostile(), "contexts": Hostile(), "request": Hostile(), "user": Hostile()},
        {1: "non-str top-level key", "event_id": Boom()},
    ],
)
def test_odd_shapes_never_raise(event: dict[Any, Any]) -> None:
    out = enforce_limits(event, max_bytes=64 * KB)
    assert len(json_dumps(out)) <= 64 * KB


def test_non_dict_input_is_returned_unchanged() -> None:
    assert enforce_limits(None) is None  # type: ignore[arg-type]
    assert enforce_limits([1]) == [1]  # type: ignore[arg-type]


def test_shared_subtrees_cannot_make_the_walk_explode() -> None:
    shared: Any = ["x" * 10]
    for _ in range(8):
        shared = [shared] * 50  # 50**8 paths, a few hundred objects
    # Not through limited(): encoding the input itself would expand all 50**8 paths.
    out = enforce_limits(base_event(extra={"dag": shared}))
    assert len(json_dumps(out)) <= MAX_EVENT_BYTES


def test_the_trace_context_survives_when_a_huge_event_spends_the_walk_budget() -> None:
    shared: Any = ["x"]
    for _ in range(6):
        shared = [shared] * 50
    event = base_event()
    frames_of(event)[0]["vars"] = {"dag": shared}
    event["contexts"] = {"trace": dict(TRACE)}  # walked after the exception
    out = enforce_limits(event)
    assert out["contexts"]["trace"] == TRACE
    assert len(json_dumps(out)) <= MAX_EVENT_BYTES


# -- properties ------------------------------------------------------------------------------

# Every code point, lone surrogates and control characters included.
chars = st.characters(exclude_categories=())
odd_chars = st.characters(categories=["Cs", "Cc", "Zl", "Zp", "Co"])
small_text = st.text(chars, max_size=12) | st.text(odd_chars, max_size=6)
# Huge strings by repetition: generating them char by char would be slow.
huge_text = st.builds(
    lambda s, n: s * n, st.text(chars, min_size=1, max_size=3), st.integers(1, 300_000)
)
texts = st.one_of(small_text, small_text, small_text, huge_text)
keys = st.one_of(
    small_text, st.sampled_from(DEFAULT_DENYLIST), st.sampled_from(["trace", "values"])
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
    st.binary(max_size=16),
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(keys, inner, max_size=6),
        st.builds(lambda v, n: [v] * n, inner, st.integers(0, 120)),  # wide, shared
        st.tuples(inner, inner),
    )


values = st.recursive(scalars, _containers, max_leaves=20)


def frames_strategy(data: st.SearchStrategy[Any]) -> st.SearchStrategy[list[dict[str, Any]]]:
    one = st.fixed_dictionaries(
        {"function": small_text, "filename": small_text, "lineno": st.integers(1, 10**6)},
        optional={
            "vars": st.dictionaries(keys, data, max_size=8),
            "pre_context": st.lists(texts, max_size=6),
            "context_line": texts,
            "post_context": st.lists(texts, max_size=6),
        },
    )
    return st.one_of(
        st.lists(one, min_size=1, max_size=6),
        st.builds(lambda f, n: [f] * n, one, st.integers(1, 300)),
    )


def exceptions(data: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    value = st.fixed_dictionaries(
        {"type": st.text(st.characters(codec="ascii"), min_size=1, max_size=40), "value": texts},
        optional={
            "stacktrace": st.fixed_dictionaries({"frames": frames_strategy(data)}),
            "mechanism": st.fixed_dictionaries(
                {"type": st.just("generic"), "data": st.dictionaries(keys, data, max_size=4)}
            ),
        },
    )
    return st.fixed_dictionaries({"values": st.lists(value, min_size=1, max_size=3)})


def crumbs_strategy(data: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    crumb = st.fixed_dictionaries(
        {"message": texts, "timestamp": st.floats(1e9, 2e9)},
        optional={"data": st.dictionaries(keys, data, max_size=6), "category": small_text},
    )
    many = st.builds(lambda c, n: [c] * n, crumb, st.integers(0, 300))
    return st.fixed_dictionaries({"values": st.lists(crumb, max_size=10) | many})


tag_keys = st.text(st.sampled_from("abcXYZ019_.:- "), min_size=0, max_size=220)
tags = st.dictionaries(
    tag_keys | small_text, st.one_of(texts, st.integers(), st.none()), max_size=8
)
request = st.fixed_dictionaries(
    {},
    optional={
        "url": st.just("https://shop.example/cart"),
        "method": st.sampled_from(["GET", "POST"]),
        "headers": st.dictionaries(
            st.text(st.sampled_from("abcXYZ-"), min_size=1), texts, max_size=6
        ),
        "cookies": st.dictionaries(st.text(st.sampled_from("abc_"), min_size=1), texts, max_size=4),
        "query_string": texts,
        "data": values,
    },
)


def events(
    data: st.SearchStrategy[Any], *, odd_top_level: bool
) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, st.SearchStrategy[Any]] = {
        "message": texts,
        "logentry": st.fixed_dictionaries({"message": texts}, optional={"formatted": texts}),
        "tags": tags,
        "extra": st.dictionaries(keys, data, max_size=8),
        "breadcrumbs": crumbs_strategy(data),
        "request": request,
        "user": st.fixed_dictionaries(
            {"id": small_text}, optional={"data": st.dictionaries(keys, data)}
        ),
        "server_name": small_text,
    }
    if odd_top_level:
        optional["modules"] = data
        optional["sdk"] = data
    return st.builds(
        _with_contexts,
        st.fixed_dictionaries(
            {
                "event_id": st.just("a" * 32),
                "timestamp": st.floats(1e9, 2e9),
                "platform": st.just("python"),
                "level": st.sampled_from(["error", "fatal", "warning", "info"]),
                "exception": exceptions(data),
            },
            optional=optional,
        ),
        st.dictionaries(
            small_text.filter(lambda k: k != "trace"), st.dictionaries(keys, data), max_size=4
        ),
    )


def _with_contexts(event: dict[str, Any], contexts: dict[str, Any]) -> dict[str, Any]:
    event["contexts"] = {**contexts, "trace": dict(TRACE)}
    return event


PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(
    event=events(values, odd_top_level=True), max_bytes=st.sampled_from([256 * KB, MAX_EVENT_BYTES])
)
def test_random_events_never_raise_and_always_fit(event: dict[str, Any], max_bytes: int) -> None:
    out = enforce_limits(scrub_event(event, Scrubber()), max_bytes=max_bytes)
    wire = json_dumps(out)
    assert len(wire) <= max_bytes
    decoded = json.loads(wire)
    assert decoded["contexts"]["trace"] == TRACE
    assert [v["type"] for v in decoded["exception"]["values"]] == [
        v["type"] for v in event["exception"]["values"]
    ]


# Relay-shaped content: any JSON in the databags, strings where Sentry wants strings.
json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.floats(allow_nan=False), texts
    ),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(small_text, inner, max_size=6),
    max_leaves=20,
)


@PROPERTY
@given(event=events(json_values, odd_top_level=False))
def test_well_formed_events_with_random_content_pass_relay(event: dict[str, Any]) -> None:
    out = enforce_limits(scrub_event(event, Scrubber()))
    wire = json_dumps(out)
    assert len(wire) <= MAX_EVENT_BYTES
    assert_valid_event(json.loads(wire))


def test_a_message_event_that_cannot_be_bounded_keeps_its_message() -> None:
    event = base_event(extra={"hostile": Hostile()})
    del event["exception"]
    event["logentry"] = {"message": "payment failed for %s", "formatted": "payment failed for 7"}
    event["message"] = "payment failed for 7"
    out = enforce_limits(event)
    assert "extra" not in out
    assert out["logentry"] == event["logentry"]
    assert out["message"] == "payment failed for 7"


def test_a_transaction_over_the_byte_budget_keeps_as_many_spans_as_fit() -> None:
    """probe 2026-12-05: 500 database spans of ~1 KB statements lost every span at once."""
    spans = [
        {
            "span_id": f"{index:016x}",
            "parent_span_id": "0" * 15 + "1",
            "trace_id": "b" * 32,
            "op": "db",
            "description": f"SELECT {index} " + "x" * 1000,
            "start_timestamp": 1_700_000_000.0 + index / 1000,
            "timestamp": 1_700_000_000.0005 + index / 1000,
        }
        for index in range(600)
    ]
    event = {
        "event_id": "a" * 32,
        "type": "transaction",
        "transaction": "/report/",
        "start_timestamp": 1_700_000_000.0,
        "timestamp": 1_700_000_001.0,
        "contexts": {"trace": {"trace_id": "b" * 32, "span_id": "0" * 15 + "1", "op": "http"}},
        "spans": spans,
    }
    out = enforce_limits(event, max_bytes=300_000)
    assert len(json_dumps(out)) <= 300_000
    kept = out["spans"]
    assert 200 < len(kept) < 600
    assert [span["span_id"] for span in kept] == [span["span_id"] for span in spans[: len(kept)]]

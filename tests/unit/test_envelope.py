from __future__ import annotations

import enum
import gzip
import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sentry_relay.processing import StoreNormalizer

from otel_sentry_bridge.deliver.envelope import (
    MalformedEnvelope,
    client_report_item,
    decode_envelope,
    decode_events,
    encode_envelope,
    event_envelope,
    json_dumps,
)
from otel_sentry_bridge.setup.dsn import Dsn

EVENT_ID = "0123456789abcdef0123456789abcdef"
SENT_AT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
SDK = {"name": "otel-sentry-bridge", "version": "0.1.0"}


def loads(data: bytes) -> Any:
    """Parse strictly: valid UTF-8, and no NaN/Infinity literals that relay would reject."""

    def reject(literal: str) -> None:
        raise AssertionError(f"non-JSON literal {literal}")

    return json.loads(data.decode("utf-8"), parse_constant=reject)


# --- framing -------------------------------------------------------------------------------


def test_encode_decode_round_trip() -> None:
    items = [
        ({"type": "event", "content_type": "application/json"}, b'{"a":1}'),
        ({"type": "attachment", "filename": "x.bin"}, b"\x00\xff\n\nbinary\n"),
        ({"type": "client_report"}, b""),
    ]

    headers, decoded = decode_envelope(encode_envelope({"event_id": EVENT_ID}, items))

    assert headers == {"event_id": EVENT_ID}
    assert decoded == [({**h, "length": len(p)}, p) for h, p in items]


def test_length_counts_bytes_not_characters() -> None:
    payload = json_dumps({"message": "é€😀\n"})
    data = encode_envelope({}, [({"type": "event"}, payload), ({"type": "event"}, b"{}")])

    lines = data.split(b"\n")
    assert json.loads(lines[1]) == {"type": "event", "length": len(payload)}
    assert len(payload) > len(payload.decode())  # multibyte, so the test means something
    assert [p for _, p in decode_envelope(data)[1]] == [payload, b"{}"]


def test_encoding_overrides_a_stale_length() -> None:
    data = encode_envelope({}, [({"type": "event", "length": 999}, b"{}")])

    assert decode_envelope(data)[1] == [({"type": "event", "length": 2}, b"{}")]


def test_decodes_items_without_length_up_to_the_newline() -> None:
    data = b'{"event_id":"x"}\n{"type":"event"}\n{"a":1}\n{"type":"attachment","length":3}\nabc'

    headers, items = decode_envelope(data)

    assert headers == {"event_id": "x"}
    assert items == [
        ({"type": "event"}, b'{"a":1}'),
        ({"type": "attachment", "length": 3}, b"abc"),
    ]


def test_decodes_an_envelope_without_items() -> None:
    assert decode_envelope(b'{"event_id":"x"}\n') == ({"event_id": "x"}, [])
    assert decode_envelope(b'{"event_id":"x"}') == ({"event_id": "x"}, [])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json\n",
        b"[1]\n",
        b'{}\n{"type":"event","length":10}\nshort',
        b'{}\n{"type":"event","length":2}\nabc\n',
        b'{}\n{"type":"event","length":-1}\n',
        b'{}\n{"type":"event","length":"2"}\nab',
        b"{}\n\xff\n",
    ],
)
def test_decode_rejects_malformed_envelopes(data: bytes) -> None:
    with pytest.raises(MalformedEnvelope):
        decode_envelope(data)


# --- event envelopes -------------------------------------------------------------------------


def test_event_envelope_headers_and_single_item() -> None:
    dsn = Dsn.parse("https://pub:secret@sentry.example/9")
    event = {"event_id": EVENT_ID, "message": "boom ✓"}
    trace = {"trace_id": "a" * 32, "public_key": "pub"}

    headers, items = decode_envelope(
        event_envelope(event, dsn=dsn, sent_at=SENT_AT, sdk=SDK, trace=trace)
    )

    assert headers == {
        "event_id": EVENT_ID,
        "sent_at": "2024-05-06T07:08:09.123456Z",
        "dsn": "https://pub@sentry.example/9",
        "sdk": SDK,
        "trace": trace,
    }
    [(item_headers, payload)] = items
    assert item_headers == {
        "type": "event",
        "content_type": "application/json",
        "length": len(payload),
    }
    assert loads(payload) == event


def test_event_envelope_omits_missing_dsn_and_trace() -> None:
    data = event_envelope({"event_id": EVENT_ID}, dsn=None, sent_at=SENT_AT, sdk=SDK, trace=None)

    assert decode_envelope(data)[0] == {
        "event_id": EVENT_ID,
        "sent_at": "2024-05-06T07:08:09.123456Z",
        "sdk": SDK,
    }


@pytest.mark.parametrize(
    "sent_at",
    [
        datetime(2024, 5, 6, 9, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2))),
        datetime(2024, 5, 6, 7, 8, 9, 123456),  # naive: taken as UTC
    ],
)
def test_sent_at_is_utc_with_z(sent_at: datetime) -> None:
    data = event_envelope({"event_id": EVENT_ID}, dsn=None, sent_at=sent_at, sdk=SDK, trace=None)

    assert decode_envelope(data)[0]["sent_at"] == "2024-05-06T07:08:09.123456Z"


def test_decode_events_reads_plain_and_gzipped_envelopes() -> None:
    event = {"event_id": EVENT_ID, "level": "error"}
    data = encode_envelope(
        {"event_id": EVENT_ID},
        [({"type": "client_report"}, b"{}"), ({"type": "event"}, json_dumps(event))],
    )

    assert decode_events(data) == [event]
    assert decode_events(gzip.compress(data)) == [event]


def test_client_report_item_lists_nonzero_losses() -> None:
    at = datetime(2024, 1, 1, tzinfo=timezone.utc)

    item_headers, payload = client_report_item(
        {("queue_overflow", "error"): 3, ("ratelimit_backoff", "error"): 0}, at
    )

    assert item_headers == {"type": "client_report"}
    assert loads(payload) == {
        "timestamp": at.timestamp(),
        "discarded_events": [{"reason": "queue_overflow", "category": "error", "quantity": 3}],
    }


# --- json_dumps ------------------------------------------------------------------------------


def test_json_dumps_is_compact_utf8_for_plain_data() -> None:
    value = {"a": [1, 2.5, None, True], "é": "ü€😀", "n": {"x": ""}, 3: "int key"}

    assert json_dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def test_json_dumps_replaces_cycles_and_keeps_shared_references() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    node: dict[str, Any] = {"name": "n"}
    node["self"] = node
    shared = [1, 2]

    assert loads(json_dumps(loop)) == [1, "<cycle>"]
    assert loads(json_dumps(node)) == {"name": "n", "self": "<cycle>"}
    assert loads(json_dumps({"a": shared, "b": shared, "c": loop})) == {
        "a": [1, 2],
        "b": [1, 2],
        "c": [1, "<cycle>"],
    }


def test_json_dumps_turns_unknown_values_into_repr() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<Thing>"

    result = loads(json_dumps({"bytes": b"\xff\x00", "thing": Thing(), "set": {3}, "t": (1,)}))

    assert result == {"bytes": "b'\\xff\\x00'", "thing": "<Thing>", "set": [3], "t": [1]}


def test_json_dumps_survives_a_raising_repr() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr for you")

    assert loads(json_dumps({"x": Broken()})) == {"x": "<unrepresentable Broken>"}


def test_json_dumps_replaces_lone_surrogates_and_joins_pairs() -> None:
    text = "a\ud800b" + "\ud83d\ude00" + b"\xff".decode("utf-8", "surrogateescape")

    result = loads(json_dumps({text: [text]}))

    assert result == {"a\ufffdb😀\ufffd": ["a\ufffdb😀\ufffd"]}


def test_json_dumps_writes_nan_and_infinity_as_strings() -> None:
    assert loads(json_dumps([math.nan, math.inf, -math.inf, 1.5])) == ["nan", "inf", "-inf", 1.5]


def test_json_dumps_stringifies_non_str_keys() -> None:
    class Color(enum.Enum):
        RED = 1

    value = {(1, 2): "tuple", None: "none", True: "bool", 2: "int", 1.5: "float", Color.RED: "e"}

    assert loads(json_dumps(value)) == {
        "(1, 2)": "tuple",
        "null": "none",
        "true": "bool",
        "2": "int",
        "1.5": "float",
        "<Color.RED: 1>": "e",
    }


def test_json_dumps_handles_subclasses_huge_ints_and_deep_nesting() -> None:
    class Level(enum.IntEnum):
        ERROR = 40

    class Name(str):
        pass

    deep: list[Any] = []
    cursor = deep
    for _ in range(5000):
        cursor.append([])
        cursor = cursor[0]

    result = loads(json_dumps({"level": Level.ERROR, "name": Name("x"), "big": 10**5000}))
    nested = loads(json_dumps(deep))

    assert result == {"level": 40, "name": "x", "big": "<int with 16610 bits>"}
    depth = 0
    while isinstance(nested, list) and nested:
        nested, depth = nested[0], depth + 1
    assert nested == "<max depth>"
    assert depth == 100


# Text that stresses the encoder: surrogates, controls, separators, astral characters.
# Hypothesis leaves surrogates out by default, and its "C" category seldom yields them.
any_char = st.characters(categories=["L", "M", "N", "P", "S", "Z", "C"])
weird_text = st.text(any_char | st.characters(categories=["Cs"]), max_size=20) | st.sampled_from(
    ["\ud800", "\udfff", "\ud83d\ude00", "\u2028", "\x00", "\n", '"', "\\", "\ufeff"]
)
json_ish = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | weird_text | st.binary(max_size=10),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(
            weird_text | st.integers() | st.none() | st.floats(), children, max_size=4
        )
        | st.frozensets(st.integers() | weird_text, max_size=3)
    ),
    max_leaves=25,
)


@given(json_ish)
def test_json_dumps_always_yields_valid_utf8_json(value: object) -> None:
    data = json_dumps(value)

    assert isinstance(data, bytes)
    loads(data)  # strict UTF-8, standard JSON only


@given(json_ish)
def test_json_dumps_output_frames_and_decodes_as_an_event_payload(value: object) -> None:
    payload = json_dumps({"event_id": EVENT_ID, "extra": {"v": value}})

    [(_, decoded)] = decode_envelope(encode_envelope({}, [({"type": "event"}, payload)]))[1]

    assert decoded == payload


plain_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),  # the default alphabet has no surrogates
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=25,
)


@given(plain_json)
def test_json_dumps_round_trips_plain_json(value: object) -> None:
    assert loads(json_dumps(value)) == value


@settings(max_examples=50)
@given(json_ish)
def test_relay_accepts_events_carrying_any_value(value: object) -> None:
    payload = json_dumps({"event_id": EVENT_ID, "message": "m", "extra": {"v": value}})

    normalized = StoreNormalizer().normalize_event(raw_event=payload)

    assert not normalized.get("errors")

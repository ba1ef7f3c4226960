"""The benchmark's own pure helpers (the benchmark itself runs as ``make bench-smoke``)."""

from __future__ import annotations

import gzip
import json

from benchmarks.common import percentile, sample_envelope_gzip, summarise_ns
from benchmarks.receiver import count_items, decode_body


def _envelope(*items: tuple[dict[str, object], bytes]) -> bytes:
    lines = [json.dumps({"event_id": "0" * 32}).encode()]
    for header, payload in items:
        lines += [json.dumps(header).encode(), payload]
    return b"\n".join(lines) + b"\n"


def test_counts_items_with_and_without_length() -> None:
    payload = b'{"message":"a\\nb"}'
    envelope = _envelope(
        ({"type": "event", "length": len(payload)}, payload),
        ({"type": "client_report"}, b'{"discarded_events":[]}'),
        ({"type": "event"}, b"{}"),
    )
    assert count_items(envelope) == {"event": 2, "client_report": 1}


def test_payload_holding_newlines_is_skipped_by_length() -> None:
    payload = b'{"a":1}\n{"type":"event"}'
    envelope = _envelope(({"type": "attachment", "length": len(payload)}, payload))
    assert count_items(envelope) == {"attachment": 1}


def test_decodes_gzip_and_identity() -> None:
    body = _envelope(({"type": "event"}, b"{}"))
    assert decode_body(gzip.compress(body), "gzip") == body
    assert decode_body(body, "") == body


def test_percentiles_and_summary() -> None:
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    summary = summarise_ns([1000, 2000, 3000])
    assert summary["mean_us"] == 2.0 and summary["p50_us"] == 2.0 and summary["n"] == 3


def test_b_posts_stand_in_envelope_is_one_gzipped_event_of_the_failing_views_size() -> None:
    body = sample_envelope_gzip()
    envelope = decode_body(body, "gzip")
    assert count_items(envelope) == {"event": 1}
    assert 3000 < len(envelope) < 12000

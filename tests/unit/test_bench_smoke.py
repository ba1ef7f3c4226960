"""The benchmark's own pure helpers (the benchmark itself runs as ``make bench-smoke``)."""

from __future__ import annotations

import gzip
import json

import pytest

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


def test_sustained_figures_take_each_configuration_against_its_baseline() -> None:
    from benchmarks.report import sustained_figures

    def run(cpu_s: float, cycle_us: float, ok: float, threads: dict[str, float]) -> dict:
        endpoints = {e: {"mean_us": ok * f} for e, f in (("ok", 1), ("boom", 2), ("logerr", 3))}
        return {
            "cpu_s": cpu_s,
            "cycle_us": cycle_us,
            "errors_made": 1000,
            "events_received": 1000,
            "endpoints": endpoints,
            "threads_cpu_s": threads,
        }

    runs = {
        "A": [run(0.2, 500, 100, {"MainThread": 0.2})],
        "B": [run(0.9, 1700, 400, {"MainThread": 0.9})],
        "C": [run(1.2, 2000, 440, {"MainThread": 1.0, "otel-sentry-bridge": 0.2})],
        "D-http": [run(4.2, 8500, 600, {"MainThread": 4.2})],
        "B-floor": [run(1.1, 1800, 420, {"MainThread": 1.0, "floor-sender": 0.1})],
        "B-floor-helper": [run(1.05, 1800, 420, {"MainThread": 0.95})],
        "B-paced": [run(1.0, 2300, 400, {"MainThread": 1.0})],
        "C-paced": [run(1.25, 2500, 430, {"MainThread": 1.05, "otel-sentry-bridge": 0.2})],
        "C-helper": [run(1.15, 1900, 420, {"MainThread": 0.95})],
        "C-auto": [run(1.1, 1860, 412, {"MainThread": 0.95})],
    }
    figures = sustained_figures(runs)
    assert round(figures["floor_total_cpu_per_error_us"]) == 200  # B-floor against B
    assert round(figures["floor_helper_total_cpu_per_error_us"]) == 150  # its helper counted
    assert round(figures["paced_total_cpu_per_error_us"]) == 250  # C-paced against B-paced
    assert round(figures["helper_total_cpu_per_error_us"]) == 250  # the helper's CPU counted
    assert round(figures["helper_request_thread_cpu_per_error_us"]) == 50
    assert round(figures["helper_ok_ratio_vs_otel"], 2) == 1.05
    assert round(figures["auto_total_cpu_per_error_us"]) == 200  # the default, against B
    assert round(figures["auto_ok_ratio_vs_otel"], 2) == 1.03
    assert round(figures["auto_cycle_ratio_vs_sentry_sdk"], 4) == 0.02  # 160 / 8000
    assert round(figures["total_cpu_per_error_us"]) == 300  # (1.2 - 0.9) s / 1000 errors
    assert round(figures["sentry_sdk_total_cpu_per_error_us"]) == 4000  # against A, not B
    assert round(figures["sustained_cycle_ratio_vs_sentry_sdk"], 4) == 0.0375  # 300 / 8000
    assert round(figures["sustained_ok_ratio_vs_otel"], 2) == 1.10
    by_thread = {k: round(v) for k, v in figures["total_cpu_per_error_by_thread_us"].items()}
    assert by_thread == {"MainThread": 100, "otel-sentry-bridge": 200}


def test_a_sustained_ratio_comes_with_its_spread_over_rounds() -> None:
    """The median of the rounds, and their range beside it in the report: on a shared machine
    one round's 200 views can move by several percent."""
    from benchmarks.report import _spread, sustained_figures

    def run(ok: float, cycle_us: float = 1000, cpu_s: float = 1.0) -> dict:
        endpoints = {e: {"mean_us": ok * f} for e, f in (("ok", 1), ("boom", 2), ("logerr", 3))}
        threads = {"MainThread": 1.0}
        return {"cpu_s": cpu_s, "cycle_us": cycle_us, "errors_made": 1000, "events_received": 1000,
                "endpoints": endpoints, "threads_cpu_s": threads}  # fmt: skip

    names = ("A", "B", "C", "B-floor", "B-floor-helper", "B-paced", "C-paced")
    runs = {name: [run(100), run(100), run(100)] for name in names}
    runs["D-http"] = [run(300, 2000, 3.0)] * 3
    runs["C-helper"] = [run(101), run(102), run(103)]
    runs["C-auto"] = [run(101), run(108), run(102)]
    figures = sustained_figures(runs)
    assert round(figures["auto_ok_ratio_vs_otel"], 2) == 1.02  # the median round
    assert [round(v, 2) for v in figures["auto_ok_ratio_range"]] == [1.01, 1.08]
    assert _spread(figures, "auto_ok") == " (rounds 1.010-1.080)"
    assert _spread(figures, "sustained_ok") == ""  # every round alike: nothing to show
    assert _spread({}, "auto_ok") == ""  # results written before the range was kept


def test_a_baseline_that_drifts_within_a_round_is_the_mean_of_its_two_runs() -> None:
    """B run before and again after the configurations compared with it: the round's
    baseline is the mean of the two, so a machine slowing down within the round does not
    count against (or for) what ran between them."""
    from benchmarks.report import bracketed, sustained_figures

    def run(ok: float, cpu_s: float, cycle_us: float = 1000) -> dict:
        endpoints = {e: {"mean_us": ok * f} for e, f in (("ok", 1), ("boom", 2), ("logerr", 3))}
        threads = {"MainThread": cpu_s}
        return {"cpu_s": cpu_s, "cycle_us": cycle_us, "errors_made": 1000, "events_received": 1000,
                "endpoints": endpoints, "threads_cpu_s": threads}  # fmt: skip

    names = ("A", "C", "B-floor", "B-floor-helper", "B-paced", "C-paced", "C-helper")
    runs = {name: [run(100, 1.0)] for name in names}
    runs["D-http"] = [run(300, 3.0, 2000)]
    runs["B"] = [run(200, 1.0)]  # the machine slows down during the round:
    runs["C-auto"] = [run(250, 1.25)]
    runs["B-again"] = [run(300, 1.5)]
    (baseline,) = bracketed(runs, "B")
    assert (baseline["cpu_s"], baseline["endpoints"]["ok"]["mean_us"]) == (1.25, 250)
    figures = sustained_figures(runs)
    assert round(figures["auto_ok_ratio_vs_otel"], 3) == 1.0  # not 1.25 against B alone
    assert round(figures["auto_total_cpu_per_error_us"]) == 0
    assert bracketed({"A": [run(1, 1.0)]}, "A") == [run(1, 1.0)]  # results without a rerun


def test_gc_pauses_are_counted_for_the_endpoint_being_served() -> None:
    import gc

    from benchmarks.sustained import GcShare

    share = GcShare()
    gc.callbacks.append(share)
    try:
        share.endpoint = "ok"
        gc.collect(0)
        share.endpoint = "boom"
        gc.collect(2)
        gc.collect(2)
    finally:
        gc.callbacks.remove(share)
    assert share.by_endpoint["ok"][0][0] == 1
    assert share.by_endpoint["boom"][2][0] == 2
    assert 2 not in share.by_endpoint["ok"] and share.by_endpoint["boom"][2][1] > 0.0


def test_onoff_compares_the_bridge_on_and_off_in_one_process() -> None:
    """``benchmarks.onoff`` end to end, in small: real subprocesses, a real receiver."""
    from benchmarks.__main__ import Receiver
    from benchmarks.common import receiver_counts, run

    with Receiver() as receiver:
        result = run(
            "onoff",
            "--port",
            receiver.port,
            "--config",
            "C",
            "--endpoint",
            "logerr",
            *("--block", 5, "--blocks", 2, "--warmup", 20),
            timeout=120,
        )
        events = receiver_counts(receiver.port)["events"]
    assert result["flushed"] is True
    assert events == 20 + 2 * 5  # the warm-up and the blocks with the bridge on: off is off
    assert result["on_us"] > 0 and result["off_us"] > 0
    # Each figure is rounded on its own (µs to 0.1, the ratio to 0.001).
    assert abs(result["ratio"] - result["on_us"] / result["off_us"]) < 0.002
    # The log handler and the span processor ran while it was on, and only then.
    assert result["inside_entry_points_us"] > 0


@pytest.mark.parametrize("config", ["B-floor", "B-floor-helper"])
def test_the_floor_reporters_deliver_every_error_they_are_measured_on(config: str) -> None:
    """The yardsticks' CPU per error counts only if each error reached the receiver: in
    process, and through the helper process (whose count the flush waits for)."""
    from benchmarks.__main__ import Receiver
    from benchmarks.common import run

    with Receiver() as receiver:
        result = run(
            "sustained", config, "--port", receiver.port, "--block", 5, "--blocks", 2, timeout=120
        )
    assert result["flushed"] is True
    assert result["errors_made"] == 2 * 5 * 2  # two error endpoints of three, two blocks
    assert result["events_received"] == result["errors_made"]

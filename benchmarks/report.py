"""Aggregation over rounds, targets, and the printed table."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

ENDPOINT_NAMES = {"ok": "200 view", "boom": "failing view", "logerr": "logged error"}


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def aggregate_latency(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """config -> endpoint -> median over rounds of each round's mean/p50/p99."""
    table: dict[str, Any] = {}
    for config, rounds in runs.items():
        table[config] = {}
        for endpoint in rounds[0]["endpoints"]:
            per_round = [r["endpoints"][endpoint] for r in rounds]
            table[config][endpoint] = {
                stat: median([s[stat] for s in per_round])
                for stat in ("mean_us", "p50_us", "p99_us")
            }
            table[config][endpoint]["rounds"] = len(per_round)
    return table


def paired_values(
    runs: dict[str, list[dict[str, Any]]],
    top: str,
    base: str,
    endpoint: str,
    combine: Callable[[float, float], float],
    stat: str = "mean_us",
) -> list[float]:
    """combine(top, base) for each round, pairing the runs of the same round."""
    pairs = zip(runs[top], runs[base], strict=True)
    cell = "endpoints"
    return [combine(t[cell][endpoint][stat], b[cell][endpoint][stat]) for t, b in pairs]


def paired(
    runs: dict[str, list[dict[str, Any]]],
    top: str,
    base: str,
    endpoint: str,
    combine: Callable[[float, float], float],
    stat: str = "mean_us",
) -> float:
    """Median over rounds of combine(top, base)."""
    return median(paired_values(runs, top, base, endpoint, combine, stat))


def ratio(a: float, b: float) -> float:
    return a / b


def diff(a: float, b: float) -> float:
    return a - b


@dataclass
class Target:
    label: str
    key: str
    fmt: str
    limit: float
    at_most: bool  # True: value <= limit; False: value >= limit

    def met(self, value: float) -> bool:
        return value <= self.limit if self.at_most else value >= self.limit

    def describe(self) -> str:
        return ("<= " if self.at_most else ">= ") + format(self.limit, self.fmt)


def bracketed(runs: dict[str, list[dict[str, Any]]], label: str) -> list[dict[str, Any]]:
    """The baseline ``label`` of each round: the mean of its run and of its run again after
    the configurations compared with it (``{label}-again``), when there is one; else its run.
    Means of the figures compared: CPU, cycle, each endpoint's mean, each thread's CPU."""
    again = runs.get(f"{label}-again")
    if not again:
        return runs[label]
    out = []
    for first, second in zip(runs[label], again, strict=True):
        threads = {
            name: (first["threads_cpu_s"].get(name, 0.0) + second["threads_cpu_s"].get(name, 0.0))
            / 2
            for name in {*first["threads_cpu_s"], *second["threads_cpu_s"]}
        }
        endpoints = {
            name: {"mean_us": (value["mean_us"] + second["endpoints"][name]["mean_us"]) / 2}
            for name, value in first["endpoints"].items()
        }
        out.append(
            {
                **first,
                "cpu_s": (first["cpu_s"] + second["cpu_s"]) / 2,
                "cycle_us": (first["cycle_us"] + second["cycle_us"]) / 2,
                "endpoints": endpoints,
                "threads_cpu_s": threads,
            }
        )
    return out


def sustained_figures(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Figures of the sustained-traffic runs (``benchmarks/sustained.py``): total CPU per
    error above the baseline (every thread and child process), C/B per endpoint, and the
    extra time per request cycle (one request to each endpoint), medians over rounds."""

    runs = {**runs, "A": bracketed(runs, "A"), "B": bracketed(runs, "B")}

    def per_error(top: dict[str, Any], base: dict[str, Any]) -> float:
        return float((top["cpu_s"] - base["cpu_s"]) / top["errors_made"] * 1e6)

    def rounds(top: str, base: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return list(zip(runs[top], runs[base], strict=True))

    bridge = median([per_error(c, b) for c, b in rounds("C", "B")])
    sdk = median([per_error(d, a) for d, a in rounds("D-http", "A")])
    cycle = median([c["cycle_us"] - b["cycle_us"] for c, b in rounds("C", "B")])
    sdk_cycle = median([d["cycle_us"] - a["cycle_us"] for d, a in rounds("D-http", "A")])
    auto_cycle = median([c["cycle_us"] - b["cycle_us"] for c, b in rounds("C-auto", "B")])
    out: dict[str, Any] = {
        "total_cpu_per_error_us": bridge,
        "sentry_sdk_total_cpu_per_error_us": sdk,
        "total_cpu_ratio_vs_sentry_sdk": bridge / sdk,
        "sustained_cycle_added_us": cycle,
        "sentry_sdk_sustained_cycle_added_us": sdk_cycle,
        "sustained_cycle_ratio_vs_sentry_sdk": cycle / sdk_cycle,
        "sustained_delivered": [f"{r['events_received']}/{r['errors_made']}" for r in runs["C"]],
        # The least any in-process reporter costs (benchmarks/floor_reporter.py), and the
        # bridge on a process with idle time between requests.
        "floor_total_cpu_per_error_us": median(
            [per_error(f, b) for f, b in rounds("B-floor", "B")]
        ),
        # The same with its work in a helper process (whose CPU counts).
        "floor_helper_total_cpu_per_error_us": median(
            [per_error(f, b) for f, b in rounds("B-floor-helper", "B")]
        ),
        "paced_total_cpu_per_error_us": median(
            [per_error(c, b) for c, b in rounds("C-paced", "B-paced")]
        ),
        # helper_process=True: the helper's CPU counted, and what is left of the bridge's
        # cost on the request thread.
        "helper_total_cpu_per_error_us": median(
            [per_error(h, b) for h, b in rounds("C-helper", "B")]
        ),
        # The default settings (helper_process "auto"): a helper from the storm on.
        "auto_total_cpu_per_error_us": median([per_error(h, b) for h, b in rounds("C-auto", "B")]),
        "auto_cycle_added_us": auto_cycle,
        "auto_cycle_ratio_vs_sentry_sdk": auto_cycle / sdk_cycle,
        "helper_request_thread_cpu_per_error_us": median(
            [
                (h["threads_cpu_s"]["MainThread"] - b["threads_cpu_s"]["MainThread"])
                / h["errors_made"]
                * 1e6
                for h, b in rounds("C-helper", "B")
            ]
        ),
    }
    for endpoint in ENDPOINT_NAMES:
        for prefix, top in (("sustained", "C"), ("helper", "C-helper"), ("auto", "C-auto")):
            per_round = [
                c["endpoints"][endpoint]["mean_us"] / b["endpoints"][endpoint]["mean_us"]
                for c, b in rounds(top, "B")
            ]
            out[f"{prefix}_{endpoint}_ratio_vs_otel"] = median(per_round)
            # The spread over rounds: on this shared machine a round's 200 views move by
            # several percent from one process to the next (their median too).
            out[f"{prefix}_{endpoint}_ratio_range"] = [min(per_round), max(per_round)]
    # Where the bridge's CPU goes, per error: each thread's, the request thread's above B's.
    threads: dict[str, float] = {}
    for name in {n for r in runs["C"] for n in r["threads_cpu_s"]}:
        values = []
        for c, b in rounds("C", "B"):
            value = c["threads_cpu_s"].get(name, 0.0) - b["threads_cpu_s"].get(name, 0.0)
            values.append(value / c["errors_made"] * 1e6)
        threads[name] = median(values)
    out["total_cpu_per_error_by_thread_us"] = threads
    return out


TARGETS = [
    Target("200 view, C/B (mean)", "ok_ratio_vs_otel", ".3f", 1.03, True),
    Target("failing view, C/B (mean)", "boom_ratio_vs_otel", ".3f", 1.10, True),
    Target("logged error, C/B (mean)", "logerr_ratio_vs_otel", ".3f", 1.30, True),
    Target(
        "request-thread cost per error, bridge/sentry-sdk",
        "added_cost_ratio_vs_sentry_sdk",
        ".3f",
        0.10,
        True,
    ),
    Target("worker cost per event (µs)", "worker_us_per_event", ".0f", 500, True),
    # C: helper_process=False, in process (the default's behaviour at a few errors a second).
    Target(
        "total CPU per error above OTel, all threads (µs), in process",
        "total_cpu_per_error_us",
        ".0f",
        250,
        True,
    ),
    Target(
        "sustained: 200 view, C/B (mean), in process",
        "sustained_ok_ratio_vs_otel",
        ".3f",
        1.03,
        True,
    ),
    Target(
        "sustained: failing view, C/B, in process",
        "sustained_boom_ratio_vs_otel",
        ".3f",
        1.25,
        True,
    ),
    Target(
        "sustained: logged error, C/B, in process",
        "sustained_logerr_ratio_vs_otel",
        ".3f",
        1.35,
        True,
    ),
    Target(
        "sustained: extra time per cycle / sentry-sdk's, in process",
        "sustained_cycle_ratio_vs_sentry_sdk",
        ".3f",
        0.10,
        True,
    ),
    # C-auto: the default settings, which move to a helper process in such a storm.
    Target(
        "total CPU per error above OTel (µs), default (auto)",
        "auto_total_cpu_per_error_us",
        ".0f",
        250,
        True,
    ),
    Target("sustained: 200 view, C/B, default (auto)", "auto_ok_ratio_vs_otel", ".3f", 1.03, True),
    Target(
        "sustained: failing view, C/B, default (auto)", "auto_boom_ratio_vs_otel", ".3f", 1.25, True
    ),
    Target(
        "sustained: logged error, C/B, default (auto)",
        "auto_logerr_ratio_vs_otel",
        ".3f",
        1.35,
        True,
    ),
    Target(
        "sustained: extra time per cycle / sentry-sdk's, default (auto)",
        "auto_cycle_ratio_vs_sentry_sdk",
        ".3f",
        0.10,
        True,
    ),
    Target("delivery to loopback (events/s)", "events_per_s", ".0f", 1000, False),
    Target("burst delivered, bridge", "burst_delivered_fraction", ".3f", 1.0, False),
    Target("flood RSS growth (MB)", "flood_rss_growth_mb", ".1f", 50, True),
    Target(
        "free_text on hostile text, worst of 8 KB-1 MB (µs)",
        "scrub_max_capped_us",
        ".0f",
        5000,
        True,
    ),
]


def _spread(x: dict[str, Any], key: str) -> str:
    """`` (rounds 0.99-1.05)``: the per-round range of a sustained ratio, when recorded."""
    spread = x.get(f"{key}_ratio_range")
    if not spread or spread[0] == spread[1]:
        return ""
    return f" (rounds {spread[0]:.3f}-{spread[1]:.3f})"


def _fmt_cell(cell: dict[str, float]) -> str:
    return f"{cell['mean_us']:7.0f} {cell['p50_us']:7.0f} {cell['p99_us']:7.0f}"


def render(results: dict[str, Any]) -> str:
    lines: list[str] = []
    add = lines.append
    latency = results["latency"]
    endpoints = list(next(iter(latency.values())))
    add("")
    add(
        f"Per request, µs: median over {results['rounds']} rounds of each round's "
        f"mean / p50 / p99 ({results['requests_per_endpoint']} requests per endpoint per round)"
    )
    head = "config    " + "".join(f"| {ENDPOINT_NAMES[e]:^23} " for e in endpoints)
    add(head)
    add("          " + "| " + "   mean     p50     p99 | " * len(endpoints))
    add("-" * len(head))
    for config, cells in latency.items():
        add(f"{config:<10}" + "".join(f"| {_fmt_cell(cells[e])} " for e in endpoints))
    add("")
    add("Ratios (median over rounds of the same round's means):")
    add(
        f"  {'endpoint':<14} {'C/B':>7} {'C/B min-max':>12} {'D/A':>7} {'D-http/A':>9} "
        f"{'C-B µs':>8} {'D-A µs':>8}"
    )
    r = results["ratios"]
    for e in endpoints:
        spread = r[e]["C/B_per_round"]
        add(
            f"  {ENDPOINT_NAMES[e]:<14} {r[e]['C/B']:7.3f} "
            f"{min(spread):6.3f}-{max(spread):5.3f} {r[e]['D/A']:7.3f} "
            f"{r[e]['D-http/A']:9.3f} {r[e]['C-B_us']:8.0f} {r[e]['D-A_us']:8.0f}"
        )
    add("")
    add("Extra figures:")
    x = results
    add(
        f"  request-thread cost per captured error: bridge {x['boom_added_us_vs_otel']:.0f} µs "
        f"(C-B), sentry-sdk {x['sentry_sdk_boom_added_us_vs_bare']:.0f} µs (D-A; "
        f"{x['sentry_sdk_http_boom_added_us_vs_bare']:.0f} µs with its HTTP transport)"
    )
    add(
        f"  of which capture work on the request thread (C-capture - B): failing view "
        f"{x['boom_capture_us_vs_otel']:.0f} µs, logged error {x['logerr_capture_us_vs_otel']:.0f}"
        " µs; the rest is the after-effect of the worker's and sender's run between requests"
    )
    add(
        f"  delivery floor (B-post - B: a thread hand-off and one loopback POST per error, run "
        f"between requests): failing view {x['boom_delivery_floor_us']:.0f} µs, logged error "
        f"{x['logerr_delivery_floor_us']:.0f} µs; the bridge above it (C - B-post): "
        f"{x['boom_added_us_vs_delivery_floor']:.0f} µs "
        f"(C/B-post {x['boom_ratio_vs_delivery_floor']:.3f}) and "
        f"{x['logerr_added_us_vs_delivery_floor']:.0f} µs "
        f"(C/B-post {x['logerr_ratio_vs_delivery_floor']:.3f})"
    )
    w = x["worker"]
    add(
        f"  worker cost per event: {w['worker_us_per_event']:.0f} µs until flushed (pipeline "
        f"calls {w['pipeline_call_us']:.0f} µs, of which gzip {w['compress_us']:.0f} µs; "
        f"envelope {w['envelope_bytes']:.0f} B, gzipped {w['gzip_bytes']:.0f} B)"
    )
    d = x["delivery"]
    add(
        f"  sustained delivery: {d['received']}/{d['events']} events in {d['seconds']:.2f} s "
        f"= {d['events_per_s']:.0f} events/s (recording took {d['record_us_per_error']:.0f} "
        "µs/error while the worker ran)"
    )
    for name, b in (("bridge (C)", x["burst"]), ("sentry-sdk (D-http)", x["sentry_sdk_burst"])):
        add(
            f"  burst {name}: {b['received']}/{b['burst']} delivered "
            f"({b['delivered_fraction']:.1%}); requests {b['requests_seconds']:.2f} s, "
            f"flushed after {b['until_flushed_seconds']:.2f} s"
            + (f", lost {b['bridge_lost']}" if b.get("bridge_lost") else "")
        )
    f = x["flood"]
    add(
        f"  flood, server down: {f['errors']} errors, RSS {f['rss_before_mb']:.1f} -> "
        f"{f['rss_after_mb']:.1f} MB (+{f['flood_rss_growth_mb']:.1f} MB), helper process "
        f"{f['helper_rss_before_mb']:.1f} -> {f['helper_rss_after_mb']:.1f} MB, both "
        f"+{f['total_rss_growth_mb']:.1f} MB; {f['capture_us_per_error']:.0f} µs/error, "
        f"lost here {f['lost']}"
    )
    h = x["helper_start"]
    add(
        f"  helper process start (once per storm with the default settings): ready after "
        f"{h['ready_s']:.2f} s, {h['helper_cpu_s']:.2f} s of its CPU and "
        f"{h['parent_cpu_s'] * 1000:.1f} ms of this process's, {h['rss_mb']:.0f} MB"
    )
    lr = x["log_records"]
    add(
        f"  exceptions as OTel log records: {lr['log_record_capture_us']:.0f} µs on the emitting "
        f"thread ({lr['log_record_emit_us']:.0f} µs while the worker runs), worker "
        f"{lr['log_record_worker_us_per_event']:.0f} µs per event"
    )
    threads = ", ".join(
        f"{name} {value:.0f}" for name, value in x["total_cpu_per_error_by_thread_us"].items()
    )
    add(
        f"  sustained traffic (no drain between requests): total CPU per error above OTel "
        f"{x['total_cpu_per_error_us']:.0f} µs (by thread: {threads}); sentry-sdk above bare "
        f"Django {x['sentry_sdk_total_cpu_per_error_us']:.0f} µs "
        f"(ratio {x['total_cpu_ratio_vs_sentry_sdk']:.3f}); extra time per request cycle "
        f"{x['sustained_cycle_added_us']:.0f} µs vs sentry-sdk "
        f"{x['sentry_sdk_sustained_cycle_added_us']:.0f} µs; delivered {x['sustained_delivered']}"
    )
    add(
        f"  the same traffic, least any in-process reporter costs (B-floor - B: hooks that queue "
        f"the exception, one thread that encodes its frames and trace context and POSTs them; "
        f"no scrubbing, limits, source lines, request data, retry or spool): "
        f"{x['floor_total_cpu_per_error_us']:.0f} µs per error, with its work in a helper "
        f"process (B-floor-helper - B) {x['floor_helper_total_cpu_per_error_us']:.0f} µs; "
        f"the bridge with 500 µs of idle "
        f"time after each request (C - B, paced): {x['paced_total_cpu_per_error_us']:.0f} µs"
    )
    add(
        f"  the same traffic, helper_process=True (C-helper - B, the helper's CPU "
        f"counted): {x['helper_total_cpu_per_error_us']:.0f} µs per error, of which "
        f"{x['helper_request_thread_cpu_per_error_us']:.0f} µs on the request thread; C/B "
        f"200 view {x['helper_ok_ratio_vs_otel']:.3f}, failing view "
        f"{x['helper_boom_ratio_vs_otel']:.3f}, logged error {x['helper_logerr_ratio_vs_otel']:.3f}"
    )
    add(
        f"  the same traffic, default settings (helper_process auto, C-auto - B): "
        f"{x['auto_total_cpu_per_error_us']:.0f} µs per error; C/B 200 view "
        f"{x['auto_ok_ratio_vs_otel']:.3f}{_spread(x, 'auto_ok')}, failing view "
        f"{x['auto_boom_ratio_vs_otel']:.3f}{_spread(x, 'auto_boom')}, logged error "
        f"{x['auto_logerr_ratio_vs_otel']:.3f}{_spread(x, 'auto_logerr')}; extra time per cycle "
        f"{x['auto_cycle_added_us']:.0f} µs ("
        f"{x['auto_cycle_added_us'] / x['sentry_sdk_sustained_cycle_added_us']:.3f} of "
        "sentry-sdk's)"
    )
    s = x["scrub"]
    add("  scrubbing hostile text, best of runs, µs (capped at 8,192 chars / whole input):")
    for shape in ("long_word", "url_without_host", "unclosed_quotes", "key_value_pairs"):
        cells = "  ".join(
            f"{size} {s[f'free_text_{shape}_{size}_us']:6.0f} / "
            f"{s[f'free_text_uncapped_{shape}_{size}_us']:7.0f}"
            for size in ("8k", "64k", "1m")
        )
        add(f"    {shape:<18} {cells}")
    add(
        "    scrub_event with all of them in one event: "
        + ", ".join(f"{size} {s[f'scrub_event_{size}_us']:.0f}" for size in ("8k", "64k", "1m"))
    )
    add("")
    add("Targets (measured, not asserted):")
    for t in TARGETS:
        value = x[t.key]
        verdict = "met" if t.met(value) else "MISSED"
        add(f"  {t.label:<62} {format(value, t.fmt):>9}  target {t.describe():<9} {verdict}")
    sdk = x["sentry_sdk_burst_delivered_fraction"]
    add(f"  {'burst delivered, sentry-sdk (for comparison)':<62} {sdk:>9.3f}")
    add("")
    for note in x["notes"]:
        add(f"Note: {note}")
    return "\n".join(lines)

"""``python -m benchmarks``: runs every measurement in its own subprocess, alternating the
configurations round by round, prints the table and writes ``benchmarks/results.json``."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from .chart import write_chart
from .common import QUICK, ROOT, child_env, run
from .configs import IDLE_CONFIGS
from .report import (
    TARGETS,
    aggregate_latency,
    diff,
    paired,
    paired_values,
    ratio,
    render,
    sustained_figures,
)
from .server_load import render as render_server_load

RESULTS = Path(__file__).resolve().parent / "results.json"
CHART = RESULTS.with_name("results.png")

if QUICK:
    SIZES = dict(rounds=2, requests=120, warmup=30, batch=100, batches=3)
    SIZES.update(delivery=1_000, burst=300, flood=3_000)
    SIZES.update(sustained_rounds=1, block=30, blocks=2)
else:
    SIZES = dict(rounds=7, requests=1_000, warmup=100, batch=500, batches=7)
    SIZES.update(delivery=10_000, burst=5_000, flood=100_000)
    SIZES.update(sustained_rounds=5, block=100, blocks=10)
# Sustained traffic: A and B are the baselines of D-http (sentry-sdk) and C (the bridge);
# B-floor is the least any in-process reporter costs, B-floor-helper the least one with a
# helper process; C-helper, the bridge with
# helper_process=True (conversion and delivery in its helper process); C-auto, with the
# default settings (in process until errors come in a storm, as here, then in a helper). Run
# back to back with no idle time, and (B, C) again with PAUSE_US of idle time after each
# request, as a server waiting on its sockets has: the bridge's threads then run in it.
# B and A run again after the configurations measured against them ("-again"): on this
# shared machine a baseline can drift by a fifth within a round, and each round's baseline
# is the mean of the run before and the run after (report.sustained_figures).
SUSTAINED_RUNS = {
    "A": ("A", 0),
    "B": ("B", 0),
    "C-auto": ("C-auto", 0),
    "C-helper": ("C-helper", 0),
    "C": ("C", 0),
    "B-floor": ("B-floor", 0),
    "B-floor-helper": ("B-floor-helper", 0),
    "B-again": ("B", 0),
    "D-http": ("D-http", 0),
    "A-again": ("A", 0),
    "B-paced": ("B", 500),
    "C-paced": ("C", 500),
}


class Receiver:
    """The loopback receiver subprocess; it also stops by itself when our stdin pipe closes."""

    def __enter__(self) -> Receiver:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.receiver"],
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(json.loads(self.proc.stdout.readline())["port"])
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _versions() -> dict[str, str]:
    names = ["Django", "opentelemetry-sdk", "opentelemetry-instrumentation-django", "sentry-sdk"]
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "?"
    return found


def latency_rounds(port: int) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {config: [] for config in IDLE_CONFIGS}
    for index in range(SIZES["rounds"]):
        print(f"round {index + 1}/{SIZES['rounds']}:", end="", flush=True)
        for config in IDLE_CONFIGS:  # A B B-post C C-capture D D-http, A B ...
            print(f" {config}", end="", flush=True)
            runs[config].append(
                run(
                    "wsgi_bench",
                    config,
                    "--port",
                    port,
                    "--requests",
                    SIZES["requests"],
                    "--warmup",
                    SIZES["warmup"],
                )
            )
        print(flush=True)
    return runs


def sustained_rounds(port: int) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in SUSTAINED_RUNS}
    for index in range(SIZES["sustained_rounds"]):
        print(f"sustained round {index + 1}/{SIZES['sustained_rounds']}:", end="", flush=True)
        for label, (config, pause_us) in SUSTAINED_RUNS.items():
            print(f" {label}", end="", flush=True)
            runs[label].append(
                run(
                    "sustained",
                    config,
                    "--port",
                    port,
                    "--block",
                    SIZES["block"],
                    "--blocks",
                    SIZES["blocks"],
                    "--pause-us",
                    pause_us,
                )
            )
        print(flush=True)
    return runs


def main() -> None:
    started = time.perf_counter()
    mode = "QUICK" if QUICK else "full"
    print(f"benchmarks ({mode}): {', '.join(f'{k}={v}' for k, v in SIZES.items())}", flush=True)
    with Receiver() as receiver:
        port = receiver.port
        runs = latency_rounds(port)
        sustained = sustained_rounds(port)
        print("a real server under load (gunicorn + hey) ...", flush=True)
        server_load = run("server_load", "--port", port, timeout=900)
        print("worker cost, delivery rate, bursts, flood ...", flush=True)
        worker = run("worker_cost", "--batch", SIZES["batch"], "--batches", SIZES["batches"])
        delivery = run("delivery_rate", "--port", port, "--events", SIZES["delivery"])
        burst = run("wsgi_bench", "C", "--port", port, "--burst", SIZES["burst"])
        sdk_burst = run("wsgi_bench", "D-http", "--port", port, "--burst", SIZES["burst"])
        flood = run("flood", "--errors", SIZES["flood"])
        helper_start = run("helper_start", "--port", port, "--starts", 2 if QUICK else 5)
        scrub = run("scrub_cost", "--repeat", 2 if QUICK else 7)
        log_records = run("log_record_cost", "--records", 200 if QUICK else 500)

    ratios = {
        e: {
            "C/B": paired(runs, "C", "B", e, ratio),
            "D/A": paired(runs, "D", "A", e, ratio),
            "D-http/A": paired(runs, "D-http", "A", e, ratio),
            "C/B_p50": paired(runs, "C", "B", e, ratio, "p50_us"),
            "C/B_per_round": paired_values(runs, "C", "B", e, ratio),
            "C-B_us": paired(runs, "C", "B", e, diff),
            "C-capture-B_us": paired(runs, "C-capture", "B", e, diff),
            "B-post-B_us": paired(runs, "B-post", "B", e, diff),
            "C/B-post": paired(runs, "C", "B-post", e, ratio),
            "C-B-post_us": paired(runs, "C", "B-post", e, diff),
            "D-A_us": paired(runs, "D", "A", e, diff),
            "D-http-A_us": paired(runs, "D-http", "A", e, diff),
        }
        for e in ("ok", "boom", "logerr")
    }
    checks = {
        config: [f"{r['events_received']}/{r['errors_made']}" for r in runs[config]]
        for config in ("C", "D-http")
    }
    results: dict[str, Any] = {
        "ok_ratio_vs_otel": ratios["ok"]["C/B"],
        "boom_ratio_vs_otel": ratios["boom"]["C/B"],
        "logerr_ratio_vs_otel": ratios["logerr"]["C/B"],
        "boom_added_us_vs_otel": ratios["boom"]["C-B_us"],
        "sentry_sdk_boom_added_us_vs_bare": ratios["boom"]["D-A_us"],
        # The same, split: capture work on the request thread alone (C-capture - B).
        "boom_capture_us_vs_otel": ratios["boom"]["C-capture-B_us"],
        "logerr_capture_us_vs_otel": ratios["logerr"]["C-capture-B_us"],
        "sentry_sdk_http_boom_added_us_vs_bare": ratios["boom"]["D-http-A_us"],
        # What delivering any error costs the next request (B-post - B), and the bridge's
        # cost above that floor (C - B-post).
        "boom_delivery_floor_us": ratios["boom"]["B-post-B_us"],
        "logerr_delivery_floor_us": ratios["logerr"]["B-post-B_us"],
        "boom_added_us_vs_delivery_floor": ratios["boom"]["C-B-post_us"],
        "logerr_added_us_vs_delivery_floor": ratios["logerr"]["C-B-post_us"],
        "boom_ratio_vs_delivery_floor": ratios["boom"]["C/B-post"],
        "logerr_ratio_vs_delivery_floor": ratios["logerr"]["C/B-post"],
        "worker_us_per_event": worker["worker_us_per_event"],
        "events_per_s": delivery["events_per_s"],
        "burst_delivered_fraction": burst["delivered_fraction"],
        "sentry_sdk_burst_delivered_fraction": sdk_burst["delivered_fraction"],
        # This process and its helper (started by the flood under the default "auto").
        "flood_rss_growth_mb": flood["total_rss_growth_mb"],
        "scrub_max_capped_us": scrub["scrub_max_capped_us"],
        "scrub": scrub,
        "log_records": log_records,
        "quick": QUICK,
        "rounds": SIZES["rounds"],
        "requests_per_endpoint": SIZES["requests"],
        "sizes": SIZES,
        "latency": aggregate_latency(runs),
        "ratios": ratios,
        "worker": worker,
        "delivery": delivery,
        "burst": burst,
        "sentry_sdk_burst": sdk_burst,
        "flood": flood,
        "helper_start": helper_start,
        "events_received_per_round": checks,
        "versions": _versions(),
        "cpus": os.cpu_count(),
    }
    results.update(sustained_figures(sustained))
    results["sustained"] = sustained
    results["server_load"] = server_load
    results["added_cost_ratio_vs_sentry_sdk"] = (
        results["boom_added_us_vs_otel"] / results["sentry_sdk_boom_added_us_vs_bare"]
    )
    results["targets"] = {
        t.key: {"value": results[t.key], "target": t.describe(), "met": t.met(results[t.key])}
        for t in TARGETS
    }
    results["notes"] = [
        "GC enabled; each configuration in its own process; WSGIHandler called directly.",
        "Endpoints timed in separate blocks; after each request the background queues are "
        "drained outside the timed region (bridge force_flush, sentry_sdk.flush), so a "
        "figure is one request on an otherwise idle process. The worker's own CPU is the "
        "'worker cost per event' figure.",
        "C-capture is C with the worker's share dropped after on_end: C-capture - B is the "
        "capture work on the request thread; C - C-capture is what the background conversion "
        "and delivery, run between the timed requests, leave behind for the next request.",
        "B-post is B plus, after each error request (untimed), one ready envelope handed to a "
        "thread and POSTed to the receiver: the least any in-process sender does per error. "
        "B-post - B is what that alone costs the next request; C - B-post is the bridge's "
        "cost above it.",
        "sentry-sdk's request-thread cost per error is D-A with its discarding transport "
        "(the lower of its two figures).",
        f"events received/errors made per round: {checks}",
    ]
    chart = write_chart(results, CHART)
    results["duration_s"] = time.perf_counter() - started
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))
    print(render_server_load(server_load))
    if chart is not None:
        print(f"\nwrote {chart.relative_to(ROOT)}")
    print(f"\nwrote {RESULTS.relative_to(ROOT)} in {results['duration_s']:.0f} s")


if __name__ == "__main__":
    main()

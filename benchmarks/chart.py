"""A PNG of the benchmarks' latency figures (matplotlib, Agg backend).

``write_chart(results, path)`` draws, from whichever of them ``results`` holds:

- one panel per error rate of the server under load (``server_load``'s results, either
  ``results`` itself or ``results["server_load"]``): the distribution of the 200 responses'
  latency per configuration, as a CDF on a log time axis and a logit probability axis, so that
  the median and the 99th/99.9th percentiles are all readable;
- one panel for the in-process sustained benchmark (``results["sustained"]``:
  ``{config: [run, ...]}``, each run the JSON of ``python -m benchmarks.sustained``): per
  endpoint and configuration, the mean time of a request (bar) and its p99 (marker), the
  median over the runs.

Returns the path written, or None when matplotlib is not installed or there is nothing to draw.
``python -m benchmarks.chart RESULTS.json OUT.png`` draws from a results file.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLOURS = {
    "A": "#7f7f7f",
    "B": "#555555",
    "B-post": "#8c564b",
    "B-floor": "#9467bd",
    "B-floor-helper": "#c5b0d5",
    "B-paced": "#aaaaaa",
    "C": "#1f77b4",
    "C-paced": "#aec7e8",
    "C-capture": "#17becf",
    "C-helper": "#2ca02c",
    "C-auto": "#98df8a",
    "D": "#ff7f0e",
    "D-http": "#d62728",
}
LABELS = {
    "B": "B: OpenTelemetry",
    "B-floor": "B-floor: OpenTelemetry + least possible reporter",
    "B-floor-helper": "B-floor-helper: the same, its work in a helper process",
    "C": "C: OpenTelemetry + bridge, in process (helper_process=False)",
    "C-helper": "C-helper: bridge in a helper process (helper_process=True)",
    "C-auto": "C-auto: bridge, default settings (helper_process auto)",
    "D": "D: sentry-sdk (discarding transport)",
    "D-http": "D-http: sentry-sdk (HTTP)",
}
ENDPOINT_ORDER = ("ok", "boom", "logerr")
PROBABILITY_TICKS = (0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999)


def _minor_ms(value: float, _: object) -> str:
    """Labels for the minor ticks of a log ms axis: 2, 3 and 5 of each decade."""
    mantissa = value / 10 ** math.floor(math.log10(value) + 1e-9)
    return f"{value:g}" if round(mantissa) in (2, 3, 5) else ""


def _server_load(results: dict[str, Any]) -> dict[str, Any] | None:
    if "error_rates" in results:
        return results
    load = results.get("server_load")
    return load if isinstance(load, dict) and "error_rates" in load else None


def _colour(config: str, index: int) -> str:
    return COLOURS.get(config, f"C{index % 10}")


def _load_panel(ax: Any, rate: str, block: dict[str, Any], load: dict[str, Any]) -> None:
    for index, (config, entry) in enumerate(block["configs"].items()):
        cdf = entry["ok_cdf_ms"]
        pairs = zip(cdf["p"], cdf["ms"], strict=True)
        points = [(ms, p) for p, ms in pairs if 0.0 < p < 1.0 and ms > 0 and ms == ms]
        if not points:
            continue
        label = (
            f"{LABELS.get(config, config)}: {entry['rps']:.0f} req/s, "
            f"p50 {entry['ok_p50_ms']:.1f} ms, p99 {entry['ok_p99_ms']:.1f} ms"
        )
        ax.plot(
            [ms for ms, _ in points],
            [p for _, p in points],
            drawstyle="steps-post",
            color=_colour(config, index),
            linewidth=1.6,
            label=label,
        )
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(_minor_ms))
    ax.set_yscale("logit")
    ax.set_ylim(0.01, 0.9999)
    ax.yaxis.set_major_locator(FixedLocator(list(PROBABILITY_TICKS)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:g} %"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    for level in (0.5, 0.99):
        ax.axhline(level, color="#bbbbbb", linewidth=0.8, linestyle=":", zorder=0)
    ax.set_xlabel("response time of a 200 response, ms (log scale)")
    ax.set_ylabel("share of 200 responses at or below (percentile, logit scale)")
    ax.set_title(
        f"gunicorn under load, {rate} of requests fail (HTTP 500)\n"
        f"{load.get('workers', '?')} {load.get('worker_class', '')} workers, "
        f"hey -c {load.get('concurrency', '?')}, "
        f"{load.get('requests', '?')} requests x {load.get('rounds', '?')} round(s) "
        "(req/s: median round; latency: rounds pooled)",
        fontsize=10,
    )
    ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
    ax.legend(fontsize=7.5, loc="lower right")


def _median(values: Sequence[float]) -> float:
    clean = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
    return statistics.median(clean) if clean else float("nan")


def _sustained_panel(ax: Any, sustained: dict[str, list[dict[str, Any]]]) -> None:
    # A baseline's second run of a round ("B-again") is part of its box, not a box of its own.
    configs = [c for c, runs in sustained.items() if runs and not c.endswith("-again")]
    seen = {e for c in configs for run in sustained[c] for e in run.get("endpoints", {})}
    endpoints = [e for e in ENDPOINT_ORDER if e in seen] + sorted(seen - set(ENDPOINT_ORDER))
    width = 0.8 / max(1, len(configs))
    highest = 0.0
    lowest = math.inf
    for index, config in enumerate(configs):
        runs = sustained[config]
        means = [_median([r["endpoints"][e]["mean_us"] for r in runs]) for e in endpoints]
        p99s = [_median([r["endpoints"][e]["p99_us"] for r in runs]) for e in endpoints]
        cycle = _median([r.get("cycle_us", float("nan")) for r in runs])
        cpu_us = _median([r["cpu_s"] * 1e6 / r["requests"] for r in runs if r.get("requests")])
        cpu = f", CPU {cpu_us:.0f} µs/request" if cpu_us == cpu_us else ""
        xs = [i + (index - (len(configs) - 1) / 2) * width for i in range(len(endpoints))]
        colour = _colour(config, index)
        ax.bar(
            xs,
            means,
            width=width * 0.9,
            color=colour,
            label=f"{LABELS.get(config, config)}: ok+boom+logerr {cycle:.0f} µs{cpu}",
        )
        ax.scatter(xs, p99s, marker="_", s=250, linewidths=2.2, color="black", zorder=3)
        highest = max([highest, *[v for v in means + p99s if v == v]])
        lowest = min([lowest, *[v for v in means if v == v and v > 0]])
    ax.scatter([], [], marker="_", s=250, linewidths=2.2, color="black", label="p99 (marker)")
    ax.set_xticks(range(len(endpoints)), [f"/{e}/" for e in endpoints])
    if lowest < math.inf and highest / lowest > 20:
        ax.set_yscale("log")
        ax.set_ylabel("time per request, µs (log scale): mean (bar), p99 (marker)")
    else:
        ax.set_ylim(0, highest * 1.45)  # room for the legend above the markers
        ax.set_ylabel("time per request, µs: mean (bar), p99 (marker)")
    ax.set_xlabel("endpoint (boom: HTTP 500; logerr: logged exception, HTTP 200)")
    runs_per = max((len(sustained[c]) for c in configs), default=0)
    ax.set_title(
        "In process, sustained traffic: WSGIHandler called directly, no drain between "
        f"requests\n(median of {runs_per} run(s) per configuration; CPU: every thread, "
        "flush included)",
        fontsize=10,
    )
    ax.grid(True, axis="y", which="both", linewidth=0.3, alpha=0.5)
    ax.legend(fontsize=7.5, loc="upper left")


def write_chart(results: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    load = _server_load(results)
    rates = list(load["error_rates"].items()) if load else []
    sustained = results.get("sustained")
    has_sustained = isinstance(sustained, dict) and any(sustained.values())
    panels = len(rates) + (1 if has_sustained else 0)
    if panels == 0:
        return None
    # The error rates side by side, the sustained panel across the row below.
    cols = max(1, len(rates))
    layout = [[f"rate{i}" for i in range(len(rates))]] if rates else []
    if has_sustained:
        layout.append(["sustained"] * cols)
    fig, axes = plt.subplot_mosaic(layout, figsize=(max(7.5 * cols, 10), 5.6 * len(layout)))
    try:
        for index, (rate, block) in enumerate(rates):
            assert load is not None
            _load_panel(axes[f"rate{index}"], rate, block, load)
        if has_sustained:
            assert isinstance(sustained, dict)
            _sustained_panel(axes["sustained"], sustained)
        fig.suptitle("otel-sentry-bridge benchmarks: latency per request", fontsize=12)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m benchmarks.chart RESULTS.json OUT.png")
    results = json.loads(Path(sys.argv[1]).read_text())
    written = write_chart(results, Path(sys.argv[2]))
    print(written if written else "no chart: matplotlib missing or nothing to draw")


if __name__ == "__main__":
    main()

"""This checkout against another one, side by side: total CPU per error above OpenTelemetry
alone under sustained traffic, and C/B per endpoint, B and both C's alternated round by round.

    git worktree add /tmp/other <commit>
    cp benchmarks/sustained.py /tmp/other/benchmarks/   # for commits older than it
    python -m benchmarks.compare --port P --other /tmp/other [--rounds 3 --blocks 10
                                                              --pause-us 500 --config C-auto]

``P`` is a running ``python -m benchmarks.receiver``. Each configuration runs in its own
process, from its own checkout (its own ``benchmarks`` and ``src``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import ROOT as HERE
from .common import run


def _sustained(root: Path, config: str, port: int, blocks: int, pause_us: int) -> dict[str, Any]:
    extra = ("--pause-us", pause_us) if pause_us else ()  # older checkouts lack the option
    return run(
        "sustained", config, "--port", port, "--blocks", blocks, *extra, timeout=900, root=root
    )


def _figures(c: dict[str, Any], b: dict[str, Any]) -> str:
    per_error = (c["cpu_s"] - b["cpu_s"]) / c["errors_made"] * 1e6
    ratios = "/".join(
        f"{c['endpoints'][e]['mean_us'] / b['endpoints'][e]['mean_us']:.2f}"
        for e in ("ok", "boom", "logerr")
    )
    delivered = f"{c['events_received']}/{c['errors_made']}"
    return f"C-B {per_error:5.0f} µs/error, C/B ok/boom/logerr {ratios}, delivered {delivered}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--other", type=Path, required=True, help="the other checkout's root")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--pause-us", type=int, default=0, help="idle time after each request")
    parser.add_argument("--config", default="C", help="the bridge's configuration (C, C-auto)")
    args = parser.parse_args()
    other = args.other.resolve()
    for index in range(args.rounds):
        base = _sustained(HERE, "B", args.port, args.blocks, args.pause_us)
        theirs = _sustained(other, args.config, args.port, args.blocks, args.pause_us)
        ours = _sustained(HERE, args.config, args.port, args.blocks, args.pause_us)
        print(f"round {index + 1}: other {_figures(theirs, base)}", flush=True)
        print(f"round {index + 1}: this  {_figures(ours, base)}", flush=True)


if __name__ == "__main__":
    main()

"""What scrubbing hostile text costs: ``Scrubber.free_text`` and a whole ``scrub_event``, in
µs, on 8 KB, 64 KB and 1 MB inputs shaped to make a backtracking pattern blow up.

A pattern that backtracks holds the GIL for the whole match: before the patterns were made
linear, an 8 KB ``User-Agent`` of one long word cost 1.1 s and stalled every thread of the
process. ``free_text`` also cuts its input to 8,192 characters before matching, so the
capped figures must stay flat as the input grows; the uncapped ones (``limit`` = the input's
length) show that the patterns themselves are linear (about 8x per 8x of input).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from .common import emit

SIZES = {"8k": 8 * 1024, "64k": 64 * 1024, "1m": 1024 * 1024}
SHAPES: dict[str, Callable[[int], str]] = {
    "long_word": lambda n: "rv:1 " + "A" * n,  # the old key=value pattern: quadratic
    "url_without_host": lambda n: "x://" + "a" * n,  # the old URL pattern: quadratic
    "unclosed_quotes": lambda n: 'a="' * (n // 3),
    "key_value_pairs": lambda n: "token=abc&page=2 " * (n // 17),
}


def _best_us(call: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from otel_sentry_bridge.convert.scrub import scrub_event, scrubber_for

    scrubber = scrubber_for()
    figures: dict[str, float] = {}
    for size_name, size in SIZES.items():
        for shape, make in SHAPES.items():
            text = make(size)
            figures[f"free_text_{shape}_{size_name}_us"] = _best_us(
                lambda t=text: scrubber.free_text(t), args.repeat
            )
            figures[f"free_text_uncapped_{shape}_{size_name}_us"] = _best_us(
                lambda t=text: scrubber.free_text(t, len(t)), max(1, args.repeat // 2)
            )
        event = {
            "event_id": "a" * 32,
            "request": {"headers": {"User-Agent": SHAPES["long_word"](size)}},
            "breadcrumbs": {"values": [{"message": SHAPES["url_without_host"](size)}]},
            "logentry": {"message": "%s", "formatted": SHAPES["unclosed_quotes"](size)},
        }
        figures[f"scrub_event_{size_name}_us"] = _best_us(
            lambda e=event: scrub_event(e, scrubber), args.repeat
        )
    figures["scrub_max_capped_us"] = max(
        v for k, v in figures.items() if k.startswith("free_text_") and "uncapped" not in k
    )
    emit(figures)


if __name__ == "__main__":
    main()

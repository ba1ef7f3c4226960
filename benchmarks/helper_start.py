"""What starting the bridge's helper process costs, once per storm with the default settings
(``helper_process`` "auto") or once per process with ``helper_process=True``: the time until
it is ready, its CPU by then (spawn, imports, its bridge) and this process's CPU for it, and
its memory. Median of ``--starts`` starts, each by a new bridge."""

from __future__ import annotations

import argparse
import statistics
import time

from .common import emit, process_rss_mb
from .sustained import _stat


def one_start(port: int) -> dict[str, float]:
    from otel_sentry_bridge import SentrySpanProcessor

    from .common import dsn

    processor = SentrySpanProcessor(dsn=dsn(port), helper_process=True)
    link = processor.bridge.link
    assert link is not None
    cpu = time.process_time()
    started = time.perf_counter()
    if not link.start(30):
        raise SystemExit("the helper did not start")
    ready_s = time.perf_counter() - started
    here_s = time.process_time() - cpu
    pid = link.helper_pid
    assert pid is not None
    stat = _stat(f"/proc/{pid}/stat")
    helper_s = stat[1] if stat is not None else float("nan")
    rss = process_rss_mb(pid)
    assert rss is not None, "the helper is gone"
    processor.shutdown()
    return {"ready_s": ready_s, "helper_cpu_s": helper_s, "parent_cpu_s": here_s, "rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    starts = [one_start(args.port) for _ in range(args.starts)]
    emit({key: statistics.median(s[key] for s in starts) for key in starts[0]})


if __name__ == "__main__":
    main()

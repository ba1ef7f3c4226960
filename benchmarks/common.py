"""Helpers shared by the parent and the measuring subprocesses (stdlib only)."""

from __future__ import annotations

import compileall
import gzip
import http.client
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
DSN_KEY = "benchkey"


def dsn(port: int) -> str:
    return f"http://{DSN_KEY}@127.0.0.1:{port}/1"


def sample_envelope_gzip() -> bytes:
    """A gzipped error envelope of the failing view's size (a chained exception, six frames
    each with source context and locals: ~7 KB of JSON), for B-post's stand-in sender."""
    frames = [
        {
            "filename": f"shop/orders_{i}.py",
            "abs_path": f"/srv/shop/orders_{i}.py",
            "function": f"step_{i}",
            "module": f"shop.orders_{i}",
            "lineno": 40 + i,
            "in_app": True,
            "context_line": f"    return step_{i + 1}(order_id)",
            "pre_context": ["", f"def step_{i}(order_id):", '    """One step."""'],
            "post_context": ["", ""],
            "vars": {"order_id": "17", "request": "<WSGIRequest: GET '/boom/'>"},
        }
        for i in range(6)
    ]
    event = {
        "event_id": "0" * 32,
        "timestamp": "2026-01-01T00:00:00.000000Z",
        "platform": "python",
        "level": "error",
        "exception": {
            "values": [
                {"type": t, "value": "order 17 not found", "stacktrace": {"frames": frames}}
                for t in ("KeyError", "OrderLookupError")
            ]
        },
        "contexts": {"trace": {"trace_id": "a" * 32, "span_id": "b" * 16}},
        "request": {"method": "GET", "url": "http://bench.local/boom/"},
    }
    payload = json.dumps(event, separators=(",", ":")).encode()
    item = json.dumps({"type": "event", "length": len(payload)}).encode()
    envelope = b"\n".join((json.dumps({"event_id": "0" * 32}).encode(), item, payload))
    return gzip.compress(envelope + b"\n", compresslevel=1)


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return float(sorted_values[index])


def summarise_ns(samples_ns: Sequence[int]) -> dict[str, float]:
    """mean/p50/p99 in µs of per-request durations given in ns."""
    values = sorted(samples_ns)
    return {
        "n": len(values),
        "mean_us": statistics.fmean(values) / 1000.0,
        "p50_us": percentile(values, 0.50) / 1000.0,
        "p99_us": percentile(values, 0.99) / 1000.0,
    }


def _status_mb(pid: int | str, field: str) -> float | None:
    """A memory figure (``VmRSS:``, ``VmHWM:``) of a process from /proc, in MB; None where
    it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """Resident set size of this process, from /proc (psutil elsewhere)."""
    found = _status_mb("self", "VmRSS:")
    if found is not None:
        return found
    import psutil

    return float(psutil.Process().memory_info().rss) / (1024.0 * 1024.0)


def process_rss_mb(pid: int) -> float | None:
    """Resident set size of process ``pid`` (a helper), from /proc; None if unreadable."""
    return _status_mb(pid, "VmRSS:")


def peak_rss_mb() -> float | None:
    return _status_mb("self", "VmHWM:")


def receiver_counts(port: int) -> dict[str, int]:
    """What the loopback receiver has counted so far (GET /count)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/count")
        data: dict[str, int] = json.loads(conn.getresponse().read())
        return data
    finally:
        conn.close()


def emit(result: dict[str, Any]) -> None:
    """A subprocess's result: one JSON line, the last one on stdout."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def child_env(pythonpath: Path | None = None) -> dict[str, str]:
    """Our environment without SENTRY_*/OTEL_* settings, which would change what is measured;
    ``pythonpath``: the package source to import (another checkout's ``src``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "OTEL_"))}
    env["PYTHONUNBUFFERED"] = "1"
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


def compile_package(root: Path) -> None:
    """Write the bytecode of the package at ``root`` as ``pip install`` does. Measured from an
    editable checkout under ``PYTHONDONTWRITEBYTECODE`` (set on some machines), every process
    would compile the package's source again, which an installed package never does: a
    helper process would pay ~0.09 s of CPU for it at each start."""
    compileall.compile_dir(root / "src", quiet=1)


def run(module: str, *args: object, timeout: float = 600, root: Path = ROOT) -> dict[str, Any]:
    """Run ``python -m benchmarks.<module> args`` in the checkout at ``root`` (its own
    ``benchmarks`` and ``src``) and return the JSON of its last line."""
    cmd = [sys.executable, "-m", f"benchmarks.{module}", *map(str, args)]
    pythonpath = None if root == ROOT else root / "src"
    compile_package(root)
    proc = subprocess.run(
        cmd,
        cwd=root,
        env=child_env(pythonpath),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"benchmark step failed ({proc.returncode}): {' '.join(cmd[2:])}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result

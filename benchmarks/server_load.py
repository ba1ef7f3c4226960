"""A real server under load: gunicorn (sync workers) serving the benchmark's Django app, driven
by ``hey`` at a fixed error rate, in these configurations:

- B: OpenTelemetry alone (SDK + Django instrumentation, spans discarded);
- C: B + this bridge, sending every error to the loopback receiver;
- C-helper: C with ``helper_process=True`` (each worker's helper converts and sends);
- D-http: sentry-sdk (no OpenTelemetry) with its real HTTP transport to the same receiver.

Each worker builds its configuration itself (``benchmarks.loadapp``, no ``--preload``). The
endpoint ``/fail/N/`` fails every Nth request a worker serves, so the error rate is exactly
1/N: 1 % and 10 % here. For each error rate the three configurations run alternately, round
after round, each on a fresh server: a warm-up run, then the measured run (``hey -n -c -o
csv``: one line per request with its response time and status). Throughput counts every
answered request; the latency figures are those of the 200 responses only. Then the server is
stopped with SIGTERM (as a deployment does), which is when each worker flushes what it still
holds, and the receiver's count of events tells whether every error made was delivered.

``python -m benchmarks.server_load --port RECEIVER_PORT [--quick]`` prints one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import QUICK, emit, percentile, receiver_counts

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ("B", "C", "C-helper", "D-http")
# BENCH_QUICK leaves C-helper out (make test's smoke run stays under a minute).
QUICK_CONFIGS = ("B", "C", "D-http")
SENDS_EVENTS = frozenset({"C", "C-helper", "D-http"})
ERROR_RATES = {"1%": 100, "10%": 10}  # label -> one failing request in N per worker
WORKERS = 2
CONCURRENCY = 4  # hey's connections: twice the workers, so that no worker waits for a client
GRACEFUL_TIMEOUT = 10.0  # gunicorn's: how long a worker may take to exit after SIGTERM
SIZES = {
    True: {"rounds": 1, "requests": 600, "warmup": 100},
    False: {"rounds": 3, "requests": 8_000, "warmup": 1_000},
}
# Where the CDF of the 200 responses' latency is sampled (kept instead of every latency).
CDF_LEVELS = (
    [i / 100 for i in range(100)] + [0.99 + i / 1000 for i in range(1, 10)] + [0.9995, 0.9999, 1.0]
)


# -- hey ---------------------------------------------------------------------------------


def hey_binary() -> str:
    found = shutil.which("hey")
    if found is None:
        raise SystemExit("server_load needs hey (Debian package 'hey'): run `make hey`")
    return found


def parse_hey_csv(text: str) -> list[tuple[float, int, float]]:
    """hey's ``-o csv``: (response time s, status code, start offset s) per answered request.
    Requests that got no response (connection error, timeout) have no line."""
    rows = []
    for record in csv.DictReader(io.StringIO(text)):
        try:
            rows.append(
                (
                    float(record["response-time"]),
                    int(record["status-code"]),
                    float(record["offset"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue  # not a result line
    return rows


def summarise_run(rows: Sequence[tuple[float, int, float]], sent: int) -> dict[str, Any]:
    """One hey run: throughput of every answered request, latency of the 200s in ms."""
    ok_ms = sorted(latency * 1000.0 for latency, status, _ in rows if status == 200)
    statuses: dict[str, int] = {}
    for _, status, _ in rows:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    wall_s = max((offset + latency for latency, _, offset in rows), default=0.0)
    return {
        "sent": sent,
        "answered": len(rows),
        "no_response": sent - len(rows),
        "statuses": statuses,
        "errors": statuses.get("500", 0),
        "wall_s": wall_s,
        "rps": len(rows) / wall_s if wall_s > 0 else 0.0,
        "ok_ms": ok_ms,
    }


def run_hey(url: str, requests: int, concurrency: int) -> dict[str, Any]:
    cmd = [hey_binary(), "-n", str(requests), "-c", str(concurrency), "-o", "csv", url]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60 + requests / 50, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"hey failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return summarise_run(parse_hey_csv(proc.stdout), requests)


# -- gunicorn ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child_env(config: str, receiver_port: int) -> dict[str, str]:
    """Our environment without SENTRY_*/OTEL_* settings, the repository importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "OTEL_"))}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env["BENCH_LOAD_CONFIG"] = config
    env["BENCH_LOAD_RECEIVER_PORT"] = str(receiver_port)
    return env


class Gunicorn:
    """``gunicorn 'benchmarks.loadapp:create_app()'`` with sync workers on 127.0.0.1, in its
    own session, its output in a temporary file. Stopped by its pid with SIGTERM."""

    def __init__(self, config: str, receiver_port: int, workers: int = WORKERS) -> None:
        if config not in CONFIGS:
            raise ValueError(f"server_load runs {', '.join(CONFIGS)}, not {config!r}")
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "benchmarks.loadapp:create_app()",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--worker-class",
                "sync",
                "--graceful-timeout",
                str(int(GRACEFUL_TIMEOUT)),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=_child_env(config, receiver_port),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll ``/pid/`` until every worker has answered (each builds its app on its own)."""
        deadline = time.monotonic() + timeout
        pids: set[str] = set()
        while len(pids) < self.workers:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"gunicorn exited {self.proc.returncode}:\n{self.output()[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"gunicorn: {len(pids)}/{self.workers} workers ready in {timeout:.0f} s:\n"
                    f"{self.output()[-4000:]}"
                )
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", "/pid/")
                response = conn.getresponse()
                if response.status == 200:
                    pids.add(response.read().decode())
                    continue
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            time.sleep(0.02)  # not listening yet: poll again

    def stop(self) -> float:
        """SIGTERM to the master (which stops its workers, each flushing on its way out),
        wait until it has exited; SIGKILL to its process group if it takes too long. Returns
        how long the stop took, in seconds."""
        started = time.monotonic()
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(GRACEFUL_TIMEOUT + 10)
            except subprocess.TimeoutExpired:
                sys.stderr.write("server_load: gunicorn did not stop in time; killed\n")
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: master, workers
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        return time.monotonic() - started

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log.close()


# -- the measurement -----------------------------------------------------------------------


def measure_once(
    config: str, every: int, receiver_port: int, requests: int, warmup: int
) -> dict[str, Any]:
    """One fresh server: warm-up run, measured run, SIGTERM, then the receiver's count."""
    before = receiver_counts(receiver_port)["events"]
    with Gunicorn(config, receiver_port) as server:
        server.wait_ready()
        url = f"{server.base}/fail/{every}/"
        warm = run_hey(url, warmup, CONCURRENCY)
        run = run_hey(url, requests, CONCURRENCY)
        stop_s = server.stop()
        unexpected = [line for line in server.output().splitlines() if line.strip()]
    run["errors_made"] = warm["errors"] + run["errors"]  # every 500 the server answered
    run["events_received"] = receiver_counts(receiver_port)["events"] - before
    run["stop_s"] = stop_s
    if unexpected:
        run["server_output"] = unexpected[-20:]
    return run


def _cdf(sorted_ms: Sequence[float]) -> dict[str, list[float]]:
    return {
        "p": list(CDF_LEVELS),
        "ms": [round(percentile(sorted_ms, level), 4) for level in CDF_LEVELS],
    }


def aggregate(config: str, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one configuration at one error rate: medians of the per-round throughput,
    percentiles of all rounds' 200 responses pooled, and the delivery check."""
    pooled = sorted(ms for run in runs for ms in run["ok_ms"])
    made = sum(run["errors_made"] for run in runs)
    received = sum(run["events_received"] for run in runs)
    expected = made if config in SENDS_EVENTS else 0
    return {
        "requests": sum(run["answered"] for run in runs),
        "no_response": sum(run["no_response"] for run in runs),
        "rps": statistics.median(run["rps"] for run in runs),
        "rps_rounds": [round(run["rps"], 1) for run in runs],
        "ok": len(pooled),
        "ok_mean_ms": statistics.fmean(pooled) if pooled else float("nan"),
        "ok_p50_ms": percentile(pooled, 0.50),
        "ok_p99_ms": percentile(pooled, 0.99),
        "ok_p50_ms_rounds": [round(percentile(run["ok_ms"], 0.50), 4) for run in runs],
        "ok_p99_ms_rounds": [round(percentile(run["ok_ms"], 0.99), 4) for run in runs],
        "errors": sum(run["errors"] for run in runs),
        "other_statuses": {
            status: n
            for run in runs
            for status, n in run["statuses"].items()
            if status not in ("200", "500")
        },
        "errors_made": made,
        "events_received": received,
        "events_expected": expected,
        "delivered_all": received == expected,
        "events_rounds": [f"{run['events_received']}/{run['errors_made']}" for run in runs],
        "stop_s_rounds": [round(run["stop_s"], 2) for run in runs],
        "ok_cdf_ms": _cdf(pooled),
        **({"server_output": runs[-1]["server_output"]} if "server_output" in runs[-1] else {}),
    }


def server_load(port: int, quick: bool) -> dict[str, Any]:
    """Every error rate x configuration, alternating the configurations round by round;
    ``port`` is the loopback receiver's."""
    hey_binary()
    sizes = SIZES[quick]
    configs = QUICK_CONFIGS if quick else CONFIGS
    started = time.perf_counter()
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        rate: {config: [] for config in configs} for rate in ERROR_RATES
    }
    for index in range(sizes["rounds"]):
        for rate, every in ERROR_RATES.items():
            for config in configs:
                sys.stderr.write(
                    f"server_load round {index + 1}/{sizes['rounds']} {rate} {config}\n"
                )
                runs[rate][config].append(
                    measure_once(config, every, port, sizes["requests"], sizes["warmup"])
                )
    results: dict[str, Any] = {
        "quick": quick,
        "workers": WORKERS,
        "worker_class": "sync",
        "concurrency": CONCURRENCY,
        **sizes,
        "error_rates": {
            rate: {
                "every": every,
                "configs": {config: aggregate(config, runs[rate][config]) for config in configs},
            }
            for rate, every in ERROR_RATES.items()
        },
        "cpus": os.cpu_count(),
        "notes": [
            f"gunicorn, {WORKERS} sync workers, each building its configuration after the fork; "
            f"hey -c {CONCURRENCY} over loopback, a fresh server per run, "
            "a warm-up run before each measured run.",
            "/fail/N/ fails every Nth request per worker with djangoapp.boom's exception.",
            "req/s counts every answered request (median of the rounds); latencies are of "
            "the 200 responses only (all rounds pooled); hey's resolution is 0.1 ms.",
            "events received are counted after SIGTERM: C flushes at worker exit; errors made "
            "include the warm-up run's.",
        ],
    }
    results["duration_s"] = time.perf_counter() - started
    for rate in ERROR_RATES:
        for config, entry in results["error_rates"][rate]["configs"].items():
            if not entry["delivered_all"]:
                sys.stderr.write(
                    f"server_load: {rate} {config}: {entry['events_received']} events received "
                    f"for {entry['events_expected']} expected\n"
                )
    return results


def render(results: dict[str, Any]) -> str:
    """A plain-text table of ``server_load``'s results."""
    head = (
        f"Server under load: gunicorn {results['workers']} {results['worker_class']} workers, "
        f"hey -c {results['concurrency']}, {results['requests']} requests x "
        f"{results['rounds']} round(s) per configuration and error rate"
    )
    lines = [
        head,
        f"{'errors':>6}  {'config':<7} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'mean ms':>7} {'500s':>6}  events received/errors made",
    ]
    for rate, block in results["error_rates"].items():
        for config, entry in block["configs"].items():
            events = f"{entry['events_received']}/{entry['errors_made']}"
            if config not in SENDS_EVENTS:
                events += " (sends none)"
            elif not entry["delivered_all"]:
                events += "  MISSING"
            lines.append(
                f"{rate:>6}  {config:<7} {entry['rps']:>7.0f} {entry['ok_p50_ms']:>7.1f} "
                f"{entry['ok_p99_ms']:>7.1f} {entry['ok_mean_ms']:>7.2f} "
                f"{entry['errors']:>6}  {events}"
            )
    lines.append(f"({results['duration_s']:.0f} s)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True, help="the loopback receiver's port")
    parser.add_argument("--quick", action="store_true", default=QUICK)
    args = parser.parse_args()
    results = server_load(args.port, args.quick)
    sys.stderr.write(render(results) + "\n")
    emit(results)


if __name__ == "__main__":
    main()

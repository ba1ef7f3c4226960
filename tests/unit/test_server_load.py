"""The server-under-load benchmark's pure parts and its chart (the benchmark itself runs with
gunicorn and hey in ``make bench``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import loadapp
from benchmarks.chart import write_chart
from benchmarks.djangoapp import OrderLookupError
from benchmarks.server_load import CONFIGS, aggregate, parse_hey_csv, render, summarise_run

HEY_CSV = """\
response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset
0.0020,0.0003,0.0000,0.0001,0.0016,0.0002,200,0.0001
0.0040,0.0002,0.0000,0.0001,0.0035,0.0002,500,0.0021
0.0030,0.0002,0.0000,0.0000,0.0026,0.0002,200,0.0062
"""


def _run(ok_ms: list[float], errors: int, made: int, received: int) -> dict[str, Any]:
    rows = [(ms / 1000.0, 200, i * 0.01) for i, ms in enumerate(ok_ms)]
    rows += [(0.005, 500, 0.5)] * errors
    run = summarise_run(rows, len(rows) + 1)
    run.update(errors_made=made, events_received=received, stop_s=0.3)
    return run


def _results() -> dict[str, Any]:
    configs = {}
    for index, config in enumerate(CONFIGS):
        latencies = [1.0 + index + i / 50 for i in range(100)]
        sent = 0 if config == "B" else 11
        configs[config] = aggregate(config, [_run(latencies, 10, 11, sent)] * 2)
    return {
        "quick": True,
        "workers": 2,
        "worker_class": "sync",
        "concurrency": 4,
        "rounds": 2,
        "requests": 110,
        "warmup": 10,
        "error_rates": {"10%": {"every": 10, "configs": configs}},
        "duration_s": 1.0,
    }


def test_parses_heys_csv_and_summarises_a_run() -> None:
    rows = parse_hey_csv(HEY_CSV + "not,a,result\n")
    assert rows == [(0.002, 200, 0.0001), (0.004, 500, 0.0021), (0.003, 200, 0.0062)]
    run = summarise_run(rows, sent=4)
    assert run["ok_ms"] == [2.0, 3.0]
    assert run["errors"] == 1 and run["no_response"] == 1
    assert run["statuses"] == {"200": 2, "500": 1}
    assert run["wall_s"] == pytest.approx(0.0092)
    assert run["rps"] == pytest.approx(3 / 0.0092)


def test_aggregates_rounds_and_checks_delivery() -> None:
    results = _results()
    entries = results["error_rates"]["10%"]["configs"]
    c = entries["C"]
    assert c["requests"] == 220 and c["ok"] == 200 and c["errors"] == 20
    assert c["ok_p50_ms"] == pytest.approx(1.0 + 1 + 49 / 50)
    assert c["events_received"] == 22 == c["errors_made"] and c["delivered_all"]
    assert entries["B"]["events_expected"] == 0 and entries["B"]["delivered_all"]
    cdf = c["ok_cdf_ms"]
    assert len(cdf["p"]) == len(cdf["ms"]) and cdf["ms"] == sorted(cdf["ms"])
    table = render(results)
    assert "D-http" in table and "22/22" in table and "(sends none)" in table


def test_fail_view_fails_every_nth_request_of_a_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loadapp, "HttpResponse", lambda body: body)
    monkeypatch.setattr(loadapp, "_counters", {})
    outcomes = []
    for _ in range(6):
        try:
            outcomes.append(loadapp.fail(None, 3))  # type: ignore[arg-type]
        except OrderLookupError as error:
            assert isinstance(error.__cause__, KeyError)
            outcomes.append("500")
    assert outcomes == ["ok", "ok", "500", "ok", "ok", "500"]


def test_chart_is_a_png_of_the_server_and_sustained_panels(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    endpoints = {
        e: {"n": 100, "mean_us": m, "p50_us": m * 0.9, "p99_us": m * 3}
        for e, m in (("ok", 400.0), ("boom", 1500.0), ("logerr", 600.0))
    }
    run = {"endpoints": endpoints, "cycle_us": 2500.0, "cpu_s": 0.5, "requests": 300}
    results = {"server_load": _results(), "sustained": {"B": [run], "C": [run, run]}}
    written = write_chart(results, tmp_path / "chart.png")
    assert written == tmp_path / "chart.png"
    assert written.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_no_chart_without_matplotlib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert write_chart(_results(), tmp_path / "chart.png") is None
    assert not (tmp_path / "chart.png").exists()

"""``make demo``: the example shop under ``opentelemetry-instrument``, its errors in Bugsink.

1. starts an embedded Bugsink (a real Sentry-compatible server) on 127.0.0.1;
2. runs ``examples/shop`` with ``opentelemetry-instrument python manage.py runserver
   --noreload`` and ``SENTRY_DSN`` pointing at Bugsink — no code change in the app;
3. sends requests that raise (in a view, a ``re_path`` route, a template, a JSON POST whose
   body the event shows), log errors and call out with ``requests``, then runs the management
   command ``crash`` under ``opentelemetry-instrument`` too;
4. prints, for each error: the Bugsink issue URL, the event id and the trace id (and the
   Jaeger URL when ``OTEL_SENTRY_TRACE_URL_TEMPLATE`` is set), the request body and the
   template frame when the event has them;
5. stops everything it started (``DEMO_KEEP=1`` keeps the servers up for browsing).

Spans go to ``OTEL_EXPORTER_OTLP_ENDPOINT`` when it is set (e.g. the collector of
``examples/docker-compose.yml``), otherwise to the console exporter, written to
``.demo/app.log``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.bugsink import BugsinkServer  # noqa: E402
from tests.support.processes import (  # noqa: E402
    BIN,
    SHOP,
    ServerProcess,
    base_env,
    start_shop,
)

WORK = REPO / ".demo"


@dataclass(frozen=True)
class Step:
    path: str
    what: str
    expects_event: bool
    body: dict[str, Any] | None = None  # POSTed as JSON; None: a GET


# A card token and a password: the event shows the body with both [Filtered].
ORDER = {
    "customer": "ada",
    "lines": [{"sku": "KB-101", "qty": 1}, {"sku": "XX-999", "qty": 2}],
    "payment": {"card_token": "tok_fake_4242", "password": "not-sent"},
}

STEPS = (
    Step("/", "index", False),
    Step("/orders/999/", "unhandled chained exception in a view", True),
    Step("/checkout/", "logger.exception() of a caught error", True),
    Step("/payment/", "logger.error() without exception, after info/warning", True),
    Step("/inventory/", "requests call to an upstream that fails (client span)", True),
    Step("/missing/", "Http404 (ignored: no Sentry event)", False),
    Step("/reports/2024/13/", "re_path() route whose view raises", True),
    Step("/api/orders/", "JSON order POSTed, an unknown SKU raises (request body)", True, ORDER),
    Step("/receipts/1001/", "template with an unknown filter (template frame)", True),
)
# `manage.py crash` under opentelemetry-instrument: an exception escaping a command.
COMMAND = "crash"


def _request(url: str, body: dict[str, Any] | None = None) -> tuple[int, str | None]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data)  # with data: a POST
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.headers.get("X-Sentry-Event-Id")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("X-Sentry-Event-Id")


def _run_command(env: dict[str, str], log: Path) -> int:
    """``manage.py <COMMAND>`` as a cron job runs it, under ``opentelemetry-instrument``."""
    args = [str(BIN / "opentelemetry-instrument"), str(BIN / "python"), "manage.py", COMMAND]
    with open(log, "wb") as out:
        done = subprocess.run(
            args, env=env, cwd=SHOP, stdout=out, stderr=subprocess.STDOUT, timeout=60, check=False
        )
    return done.returncode


def _app_env(bugsink: BugsinkServer, trace_template: str | None) -> dict[str, str]:
    env = base_env(
        SENTRY_DSN=bugsink.dsn,
        SENTRY_ENVIRONMENT="demo",
        SENTRY_RELEASE="shop@demo",
        OTEL_SERVICE_NAME="shop",
        DJANGO_SETTINGS_MODULE="shop.settings",
        OTEL_SENTRY_RESPONSE_HEADER="true",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    env["PYTHONPATH"] = str(REPO / "examples" / "shop")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = os.environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
    else:
        env["OTEL_TRACES_EXPORTER"] = "console"
    if trace_template:
        env["OTEL_SENTRY_TRACE_URL_TEMPLATE"] = trace_template
    return env


def _print_event(bugsink: BugsinkServer, event: dict[str, Any], template: str | None) -> None:
    data = event["data"]
    trace_id = data["contexts"]["trace"]["trace_id"]
    values = (data.get("exception") or {}).get("values") or []
    title = (
        f"{values[-1]['type']}: {values[-1].get('value', '')}"
        if values
        else (data.get("logentry") or {}).get("formatted", "")
    )
    print(f"  {data.get('transaction', '?'):<14} {title[:70]}")
    print(f"      issue:    {bugsink.issue_url(event['issue'])}")
    print(f"      event id: {data['event_id']}")
    print(f"      trace id: {trace_id}")
    if template:
        print(f"      jaeger:   {template.replace('{trace_id}', trace_id)}")
    body = (data.get("request") or {}).get("data")
    if body is not None:
        print(f"      body:     {json.dumps(body, separators=(',', ':'))[:160]}")
    frames = ((values[-1].get("stacktrace") or {}).get("frames") or []) if values else []
    if frames and frames[-1].get("function") == "<template>":
        frame = frames[-1]
        where = f"{Path(frame['filename']).name} line {frame['lineno']}"
        print(f"      template: {where}: {frame.get('context_line', '').strip()}")


def _spans_where(log: Path) -> tuple[str, int | None]:
    """Where the app's spans went: the collector, or the console log and how many of them the
    console exporter wrote there (None: sent to a collector, not counted)."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        return f"spans sent to {endpoint}", None
    try:
        spans = log.read_text(errors="replace").count('"span_id":')
    except OSError:
        spans = 0
    return f"{spans} spans written to the console log ({log})", spans


def main() -> int:
    WORK.mkdir(exist_ok=True)
    template = os.environ.get("OTEL_SENTRY_TRACE_URL_TEMPLATE")
    keep = os.environ.get("DEMO_KEEP", "").lower() in ("1", "true", "yes")
    print("Starting Bugsink (a Sentry-compatible server) on 127.0.0.1 ...", flush=True)
    bugsink = BugsinkServer(keep_dir=keep).start()
    app: ServerProcess | None = None
    try:
        print(f"Bugsink is up at {bugsink.base_url}; DSN {bugsink.dsn}")
        app, base = start_shop(_app_env(bugsink, template), WORK / "app.log")
        print(f"The shop runs at {base} under opentelemetry-instrument (log: {app.log})\n")

        expected = 0
        for step in STEPS:
            status, event_id = _request(base + step.path, step.body)
            expected += step.expects_event
            shown = f" event {event_id}" if event_id else ""
            method = "GET" if step.body is None else "POST"
            print(f"  {method:<4} {step.path:<18} -> {status}  {step.what}{shown}")
        env = _app_env(bugsink, template)
        status = _run_command(env, WORK / f"{COMMAND}.log")
        expected += 1
        print(
            f"  manage.py {COMMAND:<14} -> exit {status}  management command that raises "
            f"(log: {WORK / f'{COMMAND}.log'})"
        )

        print(f"\nWaiting for {expected} events in Bugsink ...", flush=True)
        events = bugsink.wait_for_events(expected, timeout=60)
        print(f"\n{len(events)} errors in Bugsink, each linked to its trace:\n")
        for event in events:
            _print_event(bugsink, event, template)
        issues = bugsink.issues()
        # Stopped as Ctrl-C would: the app exits normally, so its tracer provider writes the
        # spans it still holds (SIGTERM would end it before that).
        app.stop(signal.SIGINT)
        spans_where, spans = _spans_where(app.log)
        print(
            f"\nSummary: {len(STEPS)} requests and 1 command, {len(events)} Sentry events in "
            f"{len(issues)} issues (Http404 ignored); {spans_where}."
        )
        if spans == 0:
            print("error: the app wrote no spans to its console log", file=sys.stderr)
            return 1
        if not keep:
            print(
                "The Bugsink URLs above work while the demo runs: `DEMO_KEEP=1 make demo` keeps "
                "Bugsink (login admin/admin) and the shop up to browse them."
            )
        if len(events) != expected:
            print(f"error: expected {expected} events, got {len(events)}", file=sys.stderr)
            return 1
        if status == 0:
            print(f"error: manage.py {COMMAND} did not fail", file=sys.stderr)
            return 1
        if keep:
            bugsink.create_superuser("admin", "admin")
            print(
                f"\nDEMO_KEEP=1: Bugsink at {bugsink.base_url} (login admin/admin), shop at "
                f"{base}. Press Ctrl-C to stop."
            )
            while True:
                time.sleep(3600)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if app is not None:
            app.stop()
        bugsink.stop()
        print("Stopped every process the demo started.")


if __name__ == "__main__":
    sys.exit(main())

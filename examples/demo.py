"""``make demo``: the example shop under ``opentelemetry-instrument``, its errors in Bugsink.

1. starts an embedded Bugsink (a real Sentry-compatible server) on 127.0.0.1;
2. runs ``examples/shop`` with ``opentelemetry-instrument python manage.py runserver
   --noreload`` and ``SENTRY_DSN`` pointing at Bugsink — no code change in the app;
3. sends requests that raise, log errors and call out with ``requests``;
4. prints, for each error: the Bugsink issue URL, the event id and the trace id (and the
   Jaeger URL when ``OTEL_SENTRY_TRACE_URL_TEMPLATE`` is set);
5. stops everything it started (``DEMO_KEEP=1`` keeps the servers up for browsing).

Spans go to ``OTEL_EXPORTER_OTLP_ENDPOINT`` when it is set (e.g. the collector of
``examples/docker-compose.yml``), otherwise to the console exporter, written to
``.demo/app.log``.
"""

from __future__ import annotations

import os
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
from tests.support.processes import ServerProcess, base_env, start_shop  # noqa: E402

WORK = REPO / ".demo"


@dataclass(frozen=True)
class Step:
    path: str
    what: str
    expects_event: bool


STEPS = (
    Step("/", "index", False),
    Step("/orders/999/", "unhandled chained exception in a view", True),
    Step("/checkout/", "logger.exception() of a caught error", True),
    Step("/payment/", "logger.error() without exception, after info/warning", True),
    Step("/inventory/", "requests call to an upstream that fails (client span)", True),
    Step("/missing/", "Http404 (ignored: no Sentry event)", False),
)


def _get(url: str) -> tuple[int, str | None]:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return response.status, response.headers.get("X-Sentry-Event-Id")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("X-Sentry-Event-Id")


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
            status, event_id = _get(base + step.path)
            expected += step.expects_event
            shown = f" event {event_id}" if event_id else ""
            print(f"  GET {step.path:<14} -> {status}  {step.what}{shown}")

        print(f"\nWaiting for {expected} events in Bugsink ...", flush=True)
        events = bugsink.wait_for_events(expected, timeout=60)
        print(f"\n{len(events)} errors in Bugsink, each linked to its trace:\n")
        for event in events:
            _print_event(bugsink, event, template)
        issues = bugsink.issues()
        where = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or f"the console ({app.log})"
        print(
            f"\nSummary: {len(STEPS)} requests, {len(events)} Sentry events in "
            f"{len(issues)} issues (Http404 ignored); spans sent to {where}."
        )
        if len(events) != expected:
            print(f"error: expected {expected} events, got {len(events)}", file=sys.stderr)
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

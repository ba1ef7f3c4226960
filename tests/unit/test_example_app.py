"""The example shop (examples/shop) answers each endpoint with the documented status.

Django settings are process-global and the other tests configure ``tests.djangoapp.settings``,
so the shop runs in a subprocess of its own. There Django's test client calls every view; a
real WSGI server on 127.0.0.1 serves the same application so that /inventory/ makes a genuine
outgoing HTTP call to /upstream/stock/, as it does under runserver or gunicorn.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SHOP_DIR = Path(__file__).resolve().parents[2] / "examples" / "shop"

SCRIPT = r"""
import json
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import django

django.setup()

from django.core.wsgi import get_wsgi_application
from django.test import Client


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()

# The Host header makes build_absolute_uri point /inventory/ at the server above.
client = Client(raise_request_exception=False, HTTP_HOST=f"127.0.0.1:{server.server_port}")
results = {}
for path in PATHS:
    response = client.get(path)
    exc = response.exc_info[1] if response.exc_info else None
    results[path] = {
        "status": response.status_code,
        "exception": type(exc).__name__ if exc else None,
        "cause": type(exc.__cause__).__name__ if exc and exc.__cause__ else None,
        "body": response.content.decode("utf-8", "replace")[:4000],
    }
server.shutdown()
print(json.dumps(results))
"""

# path -> (status, name of the exception escaping the view, name of its __cause__)
EXPECTED: dict[str, tuple[int, str | None, str | None]] = {
    "/": (200, None, None),
    "/orders/1001/": (200, None, None),
    "/orders/999/": (500, "OrderNotFound", "KeyError"),
    "/checkout/": (502, None, None),
    "/payment/": (402, None, None),
    "/inventory/": (500, "HTTPError", None),
    "/upstream/stock/": (503, None, None),
    "/missing/": (404, None, None),
    "/healthz/": (200, None, None),
    "/reports/2024/05/": (200, None, None),
    "/reports/2024/13/": (500, "IllegalMonthError", None),
    "/api/orders/": (405, None, None),  # GET: the view takes a POSTed JSON order
    "/receipts/1001/": (500, "TemplateSyntaxError", None),
}


@pytest.fixture(scope="module")
def shop_results() -> dict[str, Any]:
    env = {
        k: v
        for k, v in os.environ.items()
        # Nothing from the caller's telemetry setup: this runs the plain app, no exporters.
        if not k.startswith(("OTEL_", "SENTRY_", "DJANGO_"))
    }
    env["DJANGO_SETTINGS_MODULE"] = "shop.settings"
    # requests would send the loopback call through a proxy set in the environment.
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    script = f"PATHS = {list(EXPECTED)!r}\n{SCRIPT}"
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=SHOP_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    results: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    results["__stderr__"] = proc.stderr
    return results


@pytest.mark.parametrize("path", list(EXPECTED))
def test_endpoint(shop_results: dict[str, Any], path: str) -> None:
    got = shop_results[path]
    status, exception, cause = EXPECTED[path]
    assert (got["status"], got["exception"], got["cause"]) == (status, exception, cause), got


def test_index_lists_the_endpoints(shop_results: dict[str, Any]) -> None:
    body = shop_results["/"]["body"]
    assert body.startswith("ok")
    for path in (
        "/orders/",
        "/checkout/",
        "/payment/",
        "/inventory/",
        "/missing/",
        "/healthz/",
        "/reports/",
        "/api/orders/",
        "/receipts/",
    ):
        assert path in body


def test_logging_goes_through_the_non_propagating_shop_logger(
    shop_results: dict[str, Any],
) -> None:
    # The console handler of the "shop" logger (settings.LOGGING) prints these to stderr.
    stderr = shop_results["__stderr__"]
    assert "ERROR shop.views: checkout failed for cart 42" in stderr
    # logger.exception carries the traceback, down to the helper that divided by zero.
    assert "in _average_cents" in stderr
    assert "\nZeroDivisionError: " in stderr
    assert "WARNING shop.views: payment provider acme-pay answered slowly" in stderr
    assert "ERROR shop.views: payment provider acme-pay declined order 1001" in stderr

"""Self-test of tests/support/bugsink.py: a hand-made Sentry envelope round-trips via Bugsink."""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
import urllib.request
import uuid

import pytest

from tests.support.bugsink import BugsinkServer, bugsink  # noqa: F401

pytestmark = pytest.mark.e2e


def _envelope(dsn: str, event: dict[str, object]) -> bytes:
    """Envelope: header line, item header line, payload (newline-delimited)."""
    payload = json.dumps(event).encode()
    header = {"event_id": event["event_id"], "dsn": dsn}
    item = {"type": "event", "length": len(payload)}
    return b"\n".join([json.dumps(header).encode(), json.dumps(item).encode(), payload, b""])


def test_envelope_round_trip(bugsink: BugsinkServer) -> None:  # noqa: F811
    event_id = uuid.uuid4().hex
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    context_line = "    raise ValueError('bugsink self-test')"
    event = {
        "event_id": event_id,
        "timestamp": time.time(),
        "platform": "python",
        "level": "error",
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": "bugsink self-test",
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": "selftest.py",
                                "function": "boom",
                                "lineno": 7,
                                "context_line": context_line,
                                "in_app": True,
                            }
                        ]
                    },
                }
            ]
        },
        "contexts": {"trace": {"trace_id": trace_id, "span_id": span_id}},
    }
    key = urllib.parse.urlsplit(bugsink.dsn).username
    req = urllib.request.Request(
        f"{bugsink.base_url}/api/{bugsink.project_id}/envelope/",
        data=_envelope(bugsink.dsn, event),
        headers={
            "X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7",
            "Content-Type": "application/x-sentry-envelope",
        },
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200

    # the session-scoped server may hold other tests' events: filter on ours
    [stored] = bugsink.wait_for_events(1, where=lambda e: e["data"]["event_id"] == event_id)
    data = stored["data"]
    assert uuid.UUID(stored["event_id"]).hex == event_id
    assert data["contexts"]["trace"]["trace_id"] == trace_id
    assert data["contexts"]["trace"]["span_id"] == span_id
    frames = data["exception"]["values"][0]["stacktrace"]["frames"]
    assert frames[-1]["context_line"] == context_line

    # the other read-back paths agree
    assert bugsink.event(event_id)["id"] == stored["id"]  # lookup by Sentry event_id
    issue_ids = [issue["id"] for issue in bugsink.issues()]
    assert stored["issue"] in issue_ids
    assert stored["id"] in [ev["id"] for ev in bugsink.events(stored["issue"])]
    assert bugsink.issue_url(stored["issue"]).endswith(
        f"/issues/issue/{stored['issue']}/event/last/"
    )

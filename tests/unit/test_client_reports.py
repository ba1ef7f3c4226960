"""Loss counts and the ``client_report`` envelopes that tell the server: claim, unclaim, timing."""

from __future__ import annotations

import json
from collections import Counter

from otel_sentry_bridge.deliver.client_reports import REPORT_INTERVAL, ClientReports
from otel_sentry_bridge.deliver.envelope import decode_envelope

DSN_HEADER = {"dsn": "https://key@sentry.example/1"}


def test_claim_gives_only_what_is_new_since_the_last_claim() -> None:
    reports = ClientReports(DSN_HEADER, now=0.0)
    reports.add("network_error", "error", 3)
    reports.add("queue_overflow", "error")
    assert reports.claim(1.0) == Counter(
        {("network_error", "error"): 3, ("queue_overflow", "error"): 1}
    )
    assert not reports.unreported
    assert reports.claim(2.0) is None  # nothing new

    reports.add("network_error", "error", 2)
    reports.add("ratelimit_backoff", "transaction")
    assert reports.unreported
    assert reports.claim(3.0) == Counter(
        {("network_error", "error"): 2, ("ratelimit_backoff", "transaction"): 1}
    )
    # ``lost`` keeps the running totals; only the report is a delta.
    assert reports.lost == Counter(
        {
            ("network_error", "error"): 5,
            ("queue_overflow", "error"): 1,
            ("ratelimit_backoff", "transaction"): 1,
        }
    )


def test_nothing_lost_means_nothing_to_report() -> None:
    reports = ClientReports(DSN_HEADER, now=0.0)
    assert not reports.unreported
    assert reports.claim(1.0) is None


def test_unclaim_puts_a_failed_reports_counts_into_the_next_one() -> None:
    reports = ClientReports(DSN_HEADER, now=0.0)
    reports.add("network_error", "error", 4)
    failed = reports.claim(1.0)
    assert failed is not None
    reports.unclaim(failed)  # the report could not be sent
    assert reports.unreported
    reports.add("send_error", "error")
    assert reports.claim(2.0) == Counter(
        {("network_error", "error"): 4, ("send_error", "error"): 1}
    )
    assert reports.claim(3.0) is None


def test_losses_counted_directly_in_lost_are_reported_too() -> None:
    # The sender counts into ``lost`` (a shared Counter) as well as through ``add``.
    reports = ClientReports(DSN_HEADER, now=0.0)
    reports.lost[("network_error", "error")] += 2
    assert reports.claim(1.0) == Counter({("network_error", "error"): 2})


def test_due_once_an_interval_has_passed_since_the_start() -> None:
    reports = ClientReports(DSN_HEADER, now=100.0)
    assert not reports.due(100.0)
    assert not reports.due(100.0 + REPORT_INTERVAL - 0.001)
    assert reports.due(100.0 + REPORT_INTERVAL)
    assert reports.due(100.0 + 10 * REPORT_INTERVAL)


def test_restart_begins_a_fresh_interval() -> None:
    reports = ClientReports(DSN_HEADER, now=0.0)
    reports.restart(50.0)
    assert not reports.due(REPORT_INTERVAL)  # would have been due without the restart
    assert not reports.due(50.0 + REPORT_INTERVAL - 0.001)
    assert reports.due(50.0 + REPORT_INTERVAL)


def test_a_claim_also_begins_a_fresh_interval_even_with_nothing_to_report() -> None:
    reports = ClientReports(DSN_HEADER, now=0.0)
    assert reports.claim(40.0) is None
    assert not reports.due(40.0 + REPORT_INTERVAL - 0.001)
    assert reports.due(40.0 + REPORT_INTERVAL)


def test_restart_keeps_the_counts() -> None:
    reports = ClientReports(DSN_HEADER, now=0.0)
    reports.add("network_error", "error")
    reports.restart(10.0)
    assert reports.claim(11.0) == Counter({("network_error", "error"): 1})


def test_envelope_decodes_to_one_client_report_item_with_the_counts() -> None:
    reports = ClientReports(DSN_HEADER, now=0.0)
    reports.add("network_error", "error", 3)
    reports.add("ratelimit_backoff", "transaction")
    delta = reports.claim(1.0)
    assert delta is not None

    headers, items = decode_envelope(reports.envelope(delta))

    assert headers["dsn"] == DSN_HEADER["dsn"]
    assert "sent_at" in headers
    assert len(items) == 1
    item_headers, payload = items[0]
    assert item_headers["type"] == "client_report"
    report = json.loads(payload)
    assert isinstance(report["timestamp"], float)
    assert sorted(
        (d["reason"], d["category"], d["quantity"]) for d in report["discarded_events"]
    ) == [("network_error", "error", 3), ("ratelimit_backoff", "transaction", 1)]


def test_envelope_reads_only_its_argument() -> None:
    reports = ClientReports({}, now=0.0)
    reports.add("network_error", "error", 7)
    headers, items = decode_envelope(reports.envelope(Counter({("send_error", "error"): 1})))
    assert set(headers) == {"sent_at"}
    [(_, payload)] = items
    assert json.loads(payload)["discarded_events"] == [
        {"reason": "send_error", "category": "error", "quantity": 1}
    ]
    assert reports.unreported  # building an envelope claims nothing

"""An error envelope with its header made once per kind of event is the same bytes as
``event_envelope`` makes, whatever the event's header fields hold."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from otel_sentry_bridge.convert.context import sdk_info
from otel_sentry_bridge.deliver.envelope import event_envelope
from otel_sentry_bridge.deliver.envelope_heads import EnvelopeHeads, dynamic_sampling_context
from otel_sentry_bridge.setup.dsn import Dsn

DSN = Dsn.parse("https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/42")
SENT_AT = datetime(2026, 12, 5, 19, 30, 1, 234567, tzinfo=timezone.utc)
BODY = (
    b'{"event_id":"0123456789abcdef0123456789abcdef","timestamp":1.5,"platform":"python",'
    b'"message":"length: \\"length\\":"}'
)
BIGGER = BODY[:-1] + b',"extra":{"k":"' + b"v" * 300 + b'"}}'


def _expected(event: dict[str, Any], dsn: Dsn | None, body: bytes = BODY) -> bytes:
    return event_envelope(
        event,
        dsn=dsn,
        sent_at=SENT_AT,
        sdk=sdk_info(),
        trace=dynamic_sampling_context(event, dsn),
        encode=lambda _: body,
    )


def _head(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"{n:032x}",
        "transaction": "/orders/{order_id}/",
        "environment": "production",
        "contexts": {"trace": {"trace_id": f"{n + 7:032x}"}},
        **fields,
    }


@pytest.mark.parametrize("dsn", [DSN, None])
@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"release": "shop@1.2", "environment": None},
        {"type": "transaction"},
        {"transaction": 'naïve "quoted" \u2028 \ud800'},
        {"event_id": "not hex"},
        {"contexts": {"trace": {"trace_id": "T" * 32}}},
        {"contexts": {}},
        {"environment": ["not", "hashable"]},
        {"release": {"odd": 1}},
    ],
)
def test_envelopes_are_the_bytes_event_envelope_makes(
    dsn: Dsn | None, fields: dict[str, Any]
) -> None:
    heads = EnvelopeHeads(dsn, now=lambda: SENT_AT)
    for n, body in enumerate((BODY, BIGGER, BODY)):  # the later ones from the kept header
        head = _head(n, **fields)
        assert heads.envelope(head, body) == _expected(head, dsn, body)


def test_one_header_is_kept_per_kind_of_event() -> None:
    heads = EnvelopeHeads(DSN, now=lambda: SENT_AT)
    for n in range(5):
        heads.envelope(_head(n), BODY)
        heads.envelope(_head(n, transaction="/other/"), BODY)
    assert len(heads._kept) == 2


def test_a_token_inside_a_field_is_not_taken_for_the_event_id() -> None:
    heads = EnvelopeHeads(DSN, now=lambda: SENT_AT)
    for name in ("_event_id", "_trace_id", "_sent_at"):
        head = _head(1, transaction=f"/{getattr(heads, name)}/")
        assert heads.envelope(head, BODY) == _expected(head, DSN)


def test_the_send_time_is_written_in_utc_whatever_the_clock_gives() -> None:
    from datetime import timedelta

    local = SENT_AT.astimezone(timezone(timedelta(hours=2)))
    heads = EnvelopeHeads(DSN, now=lambda: local)
    for n in range(2):
        assert heads.envelope(_head(n), BODY) == _expected(_head(n), DSN)

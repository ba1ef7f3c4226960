"""Getting envelopes to Sentry: the wire format and the HTTP sender."""

from .envelope import (
    MalformedEnvelope,
    client_report_item,
    decode_envelope,
    decode_events,
    encode_envelope,
    event_envelope,
    json_dumps,
)
from .http import HttpTransport, SendResult, Transport

__all__ = [
    "HttpTransport",
    "MalformedEnvelope",
    "SendResult",
    "Transport",
    "client_report_item",
    "decode_envelope",
    "decode_events",
    "encode_envelope",
    "event_envelope",
    "json_dumps",
]

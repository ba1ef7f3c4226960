"""Helpers for tests, ours and users': capture the events the bridge would send.

>>> transport = CapturingTransport()
>>> provider.add_span_processor(SentrySpanProcessor(transport=transport))
>>> ...; provider.force_flush(); transport.events
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .deliver.envelope import decode_events
from .deliver.http import SendResult

__all__ = ["CapturingTransport"]


class CapturingTransport:
    """A transport that keeps every envelope instead of sending it.

    ``events`` holds the error events, ``transactions`` the transactions (sent when
    ``traces_sample_rate`` > 0). ``observe`` (optional) is called with each decoded event or
    transaction, e.g. to validate it.
    """

    def __init__(self, observe: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.envelopes: list[bytes] = []
        self.events: list[dict[str, Any]] = []
        self.transactions: list[dict[str, Any]] = []
        self._observe = observe
        self._cond = threading.Condition()

    def send(self, envelope: bytes) -> SendResult:
        events = decode_events(envelope)
        transactions = decode_events(envelope, "transaction")
        with self._cond:
            self.envelopes.append(envelope)
            self.events.extend(events)
            self.transactions.extend(transactions)
            self._cond.notify_all()
        if self._observe is not None:
            for event in (*events, *transactions):
                self._observe(event)
        return SendResult(status=200, error=None, rate_limits=None, retry_after=None, body="")

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The events, once at least ``count`` have arrived; AssertionError on timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.events) >= count, timeout):
                raise AssertionError(f"expected {count} event(s), got {len(self.events)}")
            return list(self.events)

    def close(self) -> None:
        return None

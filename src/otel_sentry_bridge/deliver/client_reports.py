"""What was lost, counted per (reason, category), and the ``client_report`` envelopes that
tell the server (https://develop.sentry.dev/sdk/telemetry/client-reports/).

Not locked: the sender (:class:`.sender.Delivery`) calls every method under its own lock,
except :meth:`ClientReports.envelope`, which reads only its argument.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timezone

from .envelope import client_report_item, encode_envelope

__all__ = ["REPORT_INTERVAL", "ClientReports"]

REPORT_INTERVAL = 30.0  # seconds between client reports while losses accumulate

Losses = Counter[tuple[str, str]]


class ClientReports:
    """``lost``: events dropped so far; a report takes what is new since the last one sent
    (:meth:`claim`), and gives it back when it could not be sent (:meth:`unclaim`)."""

    def __init__(self, dsn_header: Mapping[str, str], now: float) -> None:
        self.lost: Losses = Counter()
        self._reported: Losses = Counter()
        self._dsn_header = dict(dsn_header)
        self._last = now

    def add(self, reason: str, category: str, quantity: int = 1) -> None:
        self.lost[(reason, category)] += quantity

    @property
    def unreported(self) -> bool:
        return bool(self.lost - self._reported)

    def due(self, now: float) -> bool:
        """Whether a report interval has passed since the last report (or the start)."""
        return now - self._last >= REPORT_INTERVAL

    def restart(self, now: float) -> None:
        """A fresh interval (a forked child reports its own losses from now)."""
        self._last = now

    def claim(self, now: float) -> Losses | None:
        """The losses not yet reported, now counted as reported; None when there are none."""
        self._last = now
        delta = self.lost - self._reported
        if not delta:
            return None
        self._reported.update(delta)
        return delta

    def unclaim(self, delta: Losses) -> None:
        """A report that was not sent: its losses go in the next one."""
        self._reported.subtract(delta)

    def envelope(self, delta: Losses) -> bytes:
        now = datetime.now(timezone.utc)
        header, payload = client_report_item(dict(delta), now)
        return encode_envelope(
            {**self._dsn_header, "sent_at": now.isoformat()}, [(header, payload)]
        )

"""Sentry rate limits as an immutable value: parse the response headers, answer "may I send?".

Time is always an argument (``now``, seconds on any monotonic-like clock; ``now_epoch``, Unix
seconds, only to resolve an HTTP date in ``Retry-After``). Nothing here reads a clock, sleeps or
does I/O, so every function is pure, thread-safe and non-blocking; waiting is the caller's job.

Protocol (https://develop.sentry.dev/sdk/expected-features/rate-limiting/):
``X-Sentry-Rate-Limits: retry_after:categories:scope[:reason[:namespaces]], ...`` with
``;``-separated categories, where an empty list means every category. It is honoured on any
status. A 429 without it falls back to ``Retry-After``, and then to 60 seconds for everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime

from .http import SendResult

__all__ = ["ALL_CATEGORIES", "RateLimits", "parse_rate_limits", "parse_retry_after"]

ALL_CATEGORIES = ""  # the key of a limit that applies to every category
_DEFAULT_429_DELAY = 60.0
# A garbage or monthly-quota value must not park the sender for weeks: look again after a day.
_MAX_DELAY = 86400.0
_SECONDS = re.compile(
    r"\s*(\d+(?:\.\d+)?)\s*"
)  # no sign, exponent, "nan" or "1_0" as float() allows
# Relay counts error events under "error" but older quotas name them "default"; either limits us.
_ALIASES: dict[str, tuple[str, ...]] = {
    "error": ("error", "default"),
    "default": ("default", "error"),
}


def _seconds(text: str) -> float | None:
    match = _SECONDS.fullmatch(text)
    if match is None:
        return None
    return min(float(match.group(1)), _MAX_DELAY)  # a 400-digit number is inf: capped too


def parse_rate_limits(header: str, now: float) -> dict[str, float]:
    """Map category -> deadline (``now`` + retry_after) from an ``X-Sentry-Rate-Limits`` value.

    An empty category list gives the key ``""`` (all categories). Scope, reason and namespaces
    are not needed by a client that only sends errors and client reports, and are ignored.
    Malformed entries are skipped; never raises. The longest limit wins for a repeated category.
    """
    limits: dict[str, float] = {}
    try:
        entries = str(header).split(",")
    except Exception:  # a str subclass with a broken split: treat as no header
        return limits
    for entry in entries:
        fields = entry.strip().split(":")
        if len(fields) < 2:
            continue  # Relay always sends at least retry_after:categories:scope
        delay = _seconds(fields[0])
        if delay is None:
            continue
        deadline = now + delay
        names = [c.strip().lower() for c in fields[1].split(";")]
        names = [c for c in names if c] or [ALL_CATEGORIES]
        for name in names:
            if deadline > limits.get(name, float("-inf")):
                limits[name] = deadline
    return limits


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP date.

    A date is taken relative to ``now_epoch`` (Unix seconds); one in the past gives 0. None when
    the value is absent or unreadable. Never raises.
    """
    if value is None:
        return None
    try:
        text = str(value)
        seconds = _seconds(text)
        if seconds is not None:
            return seconds
        moment = parsedate_to_datetime(text.strip())
        if moment.tzinfo is None:  # "-0000" means UTC without a stated zone (RFC 5322)
            epoch = moment.replace(tzinfo=timezone.utc).timestamp()
        else:
            epoch = moment.timestamp()
        return min(max(epoch - now_epoch, 0.0), _MAX_DELAY)
    except Exception:  # ValueError, TypeError, OverflowError ... from odd dates
        return None


@dataclass(frozen=True)
class RateLimits:
    """Active rate limits: (category, deadline) pairs, deadlines on the caller's clock.

    Immutable: :meth:`after` returns a new value, so one can be read by any thread while the
    sender thread replaces it. A limit is active while ``now < deadline``.
    """

    limits: tuple[tuple[str, float], ...] = ()

    def after(self, result: SendResult, now: float, now_epoch: float) -> RateLimits:
        """The limits after ``result`` arrived at ``now`` (``now_epoch`` for HTTP dates).

        ``X-Sentry-Rate-Limits`` applies on any status. A 429 whose header is absent (or has no
        readable entry) limits all categories for ``Retry-After``, else 60 seconds. A new
        deadline only ever extends an existing one. Expired limits are dropped.
        """
        new = parse_rate_limits(result.rate_limits, now) if result.rate_limits else {}
        if not new and result.status == 429:
            delay = parse_retry_after(result.retry_after, now_epoch)
            new = {ALL_CATEGORIES: now + (_DEFAULT_429_DELAY if delay is None else delay)}
        merged = {name: deadline for name, deadline in self.limits if deadline > now}
        for name, deadline in new.items():
            if deadline > now and deadline > merged.get(name, float("-inf")):
                merged[name] = deadline
        limits = tuple(sorted(merged.items()))
        return self if limits == self.limits else RateLimits(limits)

    def remaining(self, category: str, now: float) -> float:
        """Seconds until ``category`` may be sent again; 0.0 when it is not limited."""
        keys = (ALL_CATEGORIES, *_ALIASES.get(category, (category,)))
        longest = 0.0
        for name, deadline in self.limits:
            if name in keys and deadline - now > longest:
                longest = deadline - now
        return longest

    def is_limited(self, category: str, now: float) -> bool:
        """Whether ``category`` must not be sent at ``now`` (a limit on ``""`` covers all)."""
        return self.remaining(category, now) > 0.0

    def next_expiry(self, now: float) -> float | None:
        """The earliest deadline still ahead of ``now``, or None when nothing is limited."""
        ahead = [deadline for _, deadline in self.limits if deadline > now]
        return min(ahead) if ahead else None

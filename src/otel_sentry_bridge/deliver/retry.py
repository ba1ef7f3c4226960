"""Retry policy as a value: how long to back off, when to give up, what a response means.

Everything here is pure, thread-safe and non-blocking: randomness and time come in as
arguments, and the caller does the waiting (like urllib3's ``Retry.get_backoff_time`` kept
apart from ``Retry.sleep``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .http import SendResult

__all__ = ["Backoff", "Outcome", "classify"]

Outcome = Literal["sent", "retry", "rate_limited", "rejected"]

# 501/505: the server will never support this request, so retrying cannot help.
_PERMANENT_5XX = frozenset({501, 505})


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: attempt 1 waits about ``initial`` seconds, each further
    attempt ``factor`` times longer, never more than ``maximum``. ``jitter`` is the fraction by
    which a delay is spread up or down so that many processes do not retry in step.
    ``give_up_after`` bounds how long one envelope is retried from memory."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.25
    give_up_after: float = 120.0

    def __post_init__(self) -> None:
        for name in ("initial", "factor", "maximum", "give_up_after"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"Backoff.{name} must be a finite number >= 0, not {value!r}")
        if self.factor < 1:
            raise ValueError("Backoff.factor must be >= 1 (delays must not shrink)")
        if not 0 <= self.jitter <= 1:
            raise ValueError("Backoff.jitter must be between 0 and 1")

    def delay(self, attempt: int, rand: float) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based; lower counts as 1).

        ``rand`` in [0, 1) comes from the caller (``random.random()``); 0.5 means no jitter.
        The result lies in ``base * (1 ± jitter)``, capped at ``maximum``, and for a fixed
        ``rand`` never decreases as ``attempt`` grows.
        """
        rand = min(max(rand, 0.0), 1.0) if math.isfinite(rand) else 0.5
        steps = max(attempt, 1) - 1
        try:
            base = min(self.initial * self.factor**steps, self.maximum)
        except OverflowError:  # factor**10000: long past the cap anyway
            base = self.maximum
        return min(base * (1.0 + self.jitter * (2.0 * rand - 1.0)), self.maximum)

    def should_give_up(self, first_failure: float, now: float) -> bool:
        """Whether an envelope failing since ``first_failure`` should be dropped at ``now``."""
        return now - first_failure >= self.give_up_after


def classify(result: SendResult) -> Outcome:
    """What the sender should do with an envelope after ``result``.

    - ``"sent"``: any 2xx.
    - ``"retry"``: no response (network error, timeout), 408, or a 5xx other than 501/505.
    - ``"rate_limited"``: 429; wait for :class:`~.ratelimit.RateLimits`, then send again.
    - ``"rejected"``: everything else (3xx, other 4xx incl. 413, 1xx, odd codes). Retrying
      cannot change the answer: drop it and report the server's reason once.
    """
    status = result.status
    if status is None:
        return "retry"
    if 200 <= status < 300:
        return "sent"
    if status == 429:
        return "rate_limited"
    if status == 408 or (500 <= status < 600 and status not in _PERMANENT_5XX):
        return "retry"
    return "rejected"

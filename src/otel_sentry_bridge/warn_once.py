"""``WarnOnce``: a problem that repeats per event or per request is logged once.

One per owner (a bridge, its sender, its spool), so that two bridges, or a bridge made again
after a shutdown, each say what they see. ``forget`` lets a recovered condition be reported
again the next time it happens (Sentry unreachable, then back, then unreachable again).
"""

from __future__ import annotations

import logging
import threading

__all__ = ["WarnOnce"]


class WarnOnce:
    """Thread-safe: any thread may warn; each key is logged at most once until forgotten."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, key: str, message: str, *args: object, exc_info: bool = False) -> bool:
        """Log ``message % args`` at WARNING the first time ``key`` is seen; True then."""
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
        self._logger.warning(message, *args, exc_info=exc_info)
        return True

    def seen(self, key: str) -> bool:
        with self._lock:
            return key in self._seen

    def forget(self, key: str) -> bool:
        """Let ``key`` be logged again; True when it had been logged."""
        with self._lock:
            if key not in self._seen:
                return False
            self._seen.discard(key)
            return True

"""``SizeEstimate``: how many envelopes, and bytes, wait in the spool, without listing the
directory at every put.

The spool's limits are checked against this estimate. It counts the spool's own writes and
deletions, and is re-read from disk (one ``stat`` per file) every ``RESCAN_PUTS`` puts or
``RESCAN_SECONDS`` seconds, since other processes write too; while the spool is full, at most
every ``FULL_RESCAN_SECONDS`` (others may have drained it). Whatever those say, scans are
spaced so that they take at most ``SCAN_SHARE`` of the time: at 60,000 files a scan takes
210 ms on ext4. Several processes together can therefore overshoot the limits a little.

Approximate by design, so not locked: a lost update is corrected by the next scan, and no
lock can be left held in a forked child.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from .spool_files import envelopes

__all__ = ["SizeEstimate"]

RESCAN_PUTS = 64  # the estimate is re-read from disk after this many puts ...
RESCAN_SECONDS = 10.0  # ... or this long, whichever comes first (other processes write too)
FULL_RESCAN_SECONDS = 1.0  # while full, look whether others drained it at most this often
SCAN_SHARE = 0.05  # scans take at most this share of the time


class SizeEstimate:
    """The envelopes in ``folders`` (the spool's ``ready/`` and ``claimed/``): their count
    and bytes, as last scanned plus what this spool wrote and deleted since. ``clock`` is
    monotonic, in seconds."""

    def __init__(self, folders: Sequence[str], clock: Callable[[], float] = time.monotonic) -> None:
        self._folders = tuple(folders)
        self._clock = clock
        self.count = 0
        self.bytes = 0
        self._puts_since_scan = 0
        self._next_scan = 0.0  # clock() of the next rescan; 0: at the first put
        self._next_full_scan = 0.0
        self._scan_gap = 0.0  # least time between two scans, from the duration of the last
        self._last_scan = -float("inf")

    def has_room(self, size: int, *, max_files: int, max_bytes: int) -> bool:
        """Whether one more envelope of ``size`` bytes fits; counts as a put (and may scan)."""
        now = self._clock()
        self._puts_since_scan += 1
        scanned = False
        may_scan = now >= self._last_scan + self._scan_gap
        if may_scan and (self._puts_since_scan >= RESCAN_PUTS or now >= self._next_scan):
            self._rescan(now)
            scanned = True
        if self._fits(size, max_files, max_bytes):
            return True
        if not scanned and may_scan and now >= self._next_full_scan:
            # Another process may have drained it.
            self._next_full_scan = now + FULL_RESCAN_SECONDS
            self._rescan(now)
            return self._fits(size, max_files, max_bytes)
        return False

    def added(self, size: int) -> None:
        """This spool wrote an envelope of ``size`` bytes."""
        self.count += 1
        self.bytes += size

    def removed(self, size: int) -> None:
        """This spool deleted an envelope of ``size`` bytes."""
        self.count = max(self.count - 1, 0)
        self.bytes = max(self.bytes - size, 0)

    def invalidate(self) -> None:
        """The estimate no longer matches the disk: scan at the next put (if scans' spacing
        allows)."""
        self._next_scan = 0.0

    def _fits(self, size: int, max_files: int, max_bytes: int) -> bool:
        return self.count + 1 <= max_files and self.bytes + size <= max_bytes

    def _rescan(self, now: float) -> None:
        self._puts_since_scan = 0
        self._next_scan = now + RESCAN_SECONDS
        count = total = 0
        for folder in self._folders:
            for _, size in envelopes(folder):
                count += 1
                total += size
        self.count, self.bytes = count, total
        self._last_scan = self._clock()
        self._scan_gap = (self._last_scan - now) / SCAN_SHARE

"""``Outbox``: the envelopes waiting in memory for the sender, bounded in count and bytes.

A plain data structure, not thread-safe: the sender (:mod:`.sender`) holds its own lock around
every call. Envelopes go out oldest first; one that failed goes back to the head, to be retried
first; envelopes claimed from the spool join the tail without counting against the bounds
(they are on disk already, and were bounded there).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .spool import SpoolEntry

__all__ = ["Item", "Outbox"]


@dataclass
class Item:
    """One encoded envelope and what the sender knows of its attempts."""

    data: bytes
    category: str
    first_failure: float | None = None
    attempts: int = 0
    entry: SpoolEntry | None = None  # set when the envelope came from the spool
    # In flight when shutdown gave up waiting for it: shutdown kept it (spool) or counted it,
    # so whatever that attempt's end is, it is neither spooled nor counted again.
    abandoned: bool = False


class Outbox:
    def __init__(self, max_items: int, max_bytes: int) -> None:
        self._items: deque[Item] = deque()
        self._bytes = 0
        self._max_items = max(1, max_items)
        self._max_bytes = max_bytes

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def hold(self, item: Item) -> bool:
        """Append ``item`` if there is room for it; False (and nothing changed) if not."""
        if len(self._items) >= self._max_items or self._bytes + len(item.data) > self._max_bytes:
            return False
        self._items.append(item)
        self._bytes += len(item.data)
        return True

    def claimed(self, item: Item) -> None:
        """Append an envelope claimed from the spool (outside the bounds)."""
        self._items.append(item)
        self._bytes += len(item.data)

    def put_back(self, item: Item) -> None:
        """At the head: a failed envelope is retried before the ones behind it."""
        self._items.appendleft(item)
        self._bytes += len(item.data)

    def take(self) -> Item | None:
        """The oldest envelope, or None."""
        if not self._items:
            return None
        item = self._items.popleft()
        self._bytes -= len(item.data)
        return item

    def drain(self) -> list[Item]:
        """Everything, oldest first, leaving the outbox empty."""
        items = list(self._items)
        self._items.clear()
        self._bytes = 0
        return items

"""``Backlog``: what waits to be sent, in memory (the outbox) and on disk (the spool), and
where an envelope that cannot be sent now goes.

The sender (:class:`.sender.Delivery`) decides *when* to send and what a failure means; the
backlog moves the envelopes:

- next to send: the oldest envelope in memory, else a batch claimed from the spool;
- after a failure: an envelope claimed from the spool goes back to it, a new error envelope
  into it, and what waits in memory follows, oldest first, until the spool refuses one;
  whatever the spool refuses waits in memory, a failed one at the head, to be retried first;
- at shutdown (:meth:`Backlog.close`): nothing more is taken; what waited in memory goes to
  the spool while it takes it, or is counted lost.

Only errors are spooled; other categories are kept in memory or not at all.

Locking: the outbox, ``closed`` and the loss counts are guarded by the condition of the
owning ``Delivery``, given by :meth:`Backlog.reset` (at the start, and in a forked child
with the child's new lock). Methods named ``*_locked`` are called with it held
(:meth:`~Backlog.take_locked` releases it while it reads the disk); the others are called
without it and take it when they touch that state. Disk I/O runs outside the lock, except
the few renames that give a claimed batch back when shutdown came meanwhile.
"""

from __future__ import annotations

import threading
from collections import Counter

from .outbox import Item, Outbox
from .spool import Spool

__all__ = ["Backlog"]

SPOOL_BATCH = 20  # envelopes claimed from the spool at once


class Backlog:
    """The outbox (``max_items``/``max_bytes``) and the spool (or None) of one ``Delivery``;
    ``lost`` is its loss count per (reason, category). Usable once :meth:`reset` has given it
    the lock. See the module docstring for the rules."""

    _cond: threading.Condition
    _outbox: Outbox

    def __init__(
        self,
        spool: Spool | None,
        lost: Counter[tuple[str, str]],
        *,
        max_items: int,
        max_bytes: int,
    ) -> None:
        self._spool = spool
        self._lost = lost
        self._max_items = max_items
        self._max_bytes = max_bytes
        # Set (under the lock) by close(); a forked child keeps it, as it keeps the rest of
        # a shutdown that happened before the fork.
        self.closed = False

    def reset(self, cond: threading.Condition) -> None:
        """An empty outbox, guarded by ``cond``: at the start and in a forked child."""
        self._cond = cond
        self._outbox = Outbox(self._max_items, self._max_bytes)

    @property
    def in_memory(self) -> int:
        """How many envelopes wait in the outbox (spooled ones are not counted)."""
        return len(self._outbox)

    # -- called with the lock held ---------------------------------------------------------

    def hold_locked(self, item: Item) -> bool:
        """Append ``item`` to the outbox if it has room for it (and wake the sender)."""
        if not self._outbox.hold(item):
            return False
        self._cond.notify_all()
        return True

    def take_locked(self) -> Item | None:
        """The next envelope to send: the oldest in the outbox, else the oldest of a batch
        claimed from the spool (the rest of the batch joins the outbox behind it). Releases
        the lock while it reads the disk."""
        item = self._outbox.take()
        if item is not None:
            return item
        if self._spool is None:
            return None
        self._cond.release()  # disk I/O outside the lock
        try:
            entries = self._spool.claim(SPOOL_BATCH)
        finally:
            self._cond.acquire()
        if not entries:
            return None
        if self.closed:
            # Shutdown came while we read the disk and has given back what it found in the
            # outbox: these go back too, for the next process, rather than out through a
            # transport that is being closed. (A few renames, under the lock, once.)
            for entry in entries:
                self._spool.release(entry)
            return None
        items = [Item(e.data, "error", entry=e) for e in entries]
        first, rest = items[0], items[1:]
        for item in rest:
            self._outbox.claimed(item)
        return first

    # -- called without the lock -----------------------------------------------------------

    def to_spool(self, item: Item) -> bool:
        """The one way an envelope that cannot be sent now goes to disk: an envelope claimed
        from the spool goes back to it, a new error envelope into it. False when there is no
        spool, the envelope is not an error, or the spool refuses it (it is then kept in
        memory, or counted lost, by the caller)."""
        spool = self._spool
        if spool is None:
            return False
        if item.entry is not None:
            spool.release(item.entry)
            return True
        return item.category == "error" and spool.put(item.data)

    def spill(self) -> None:
        """Degraded with a spool: what waits in memory goes to disk now, oldest first, until
        the spool refuses one; that one and the rest wait in memory, as without a spool."""
        assert self._spool is not None
        while True:
            with self._cond:
                if not self._outbox:
                    return
                item = self._outbox.take()
                if item is None:
                    return
            if self.to_spool(item):
                continue
            if item.category != "error":  # never spooled: sent once or not at all
                self._lose(item.category)
                continue
            with self._cond:
                if self.closed:  # shutdown came meanwhile and did not see this one
                    self._lost[("network_error", item.category)] += 1
                else:
                    self._outbox.put_back(item)
            return

    def put_back(self, item: Item) -> None:
        """A failed envelope that is not on disk waits in memory, at the head, to be retried
        first; counted lost when shutdown came meanwhile (nobody will send it now)."""
        with self._cond:
            if self.closed:  # in flight when shutdown gave up
                self._lost[("network_error", item.category)] += 1
                return
            self._outbox.put_back(item)

    def ack(self, item: Item) -> None:
        """``item`` was sent, or never will be: a spooled envelope's file goes."""
        if item.entry is not None and self._spool is not None:
            self._spool.ack(item.entry)

    def close(self) -> tuple[int, int]:
        """Shutdown: take nothing more (and wake the sender); what waited in memory goes to
        the spool while it takes it, else it is counted lost. Returns (how many waited in
        memory, how many of them were lost)."""
        with self._cond:
            self.closed = True
            left = self._outbox.drain()
            self._cond.notify_all()
        lost = 0
        spool_open = self._spool is not None
        for item in left:
            if item.entry is not None or spool_open:
                if self.to_spool(item):
                    continue
                if item.category == "error":
                    spool_open = False  # refused: the rest would fail alike, and the exit waits
            self._lose(item.category)
            lost += 1
        return len(left), lost

    def _lose(self, category: str) -> None:
        with self._cond:
            self._lost[("network_error", category)] += 1

"""The backlog: what waits in memory and on disk, and where an unsendable envelope goes."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from otel_sentry_bridge.deliver.backlog import SPOOL_BATCH, Backlog
from otel_sentry_bridge.deliver.envelope import decode_envelope, encode_envelope, json_dumps
from otel_sentry_bridge.deliver.outbox import Item
from otel_sentry_bridge.deliver.spool import Spool, SpoolEntry


def envelope(n: int) -> bytes:
    event_id = f"{n:032x}"
    item = {"type": "event", "content_type": "application/json"}
    return encode_envelope({"event_id": event_id}, [(item, json_dumps({"event_id": event_id}))])


def number(data: bytes) -> int:
    headers, _ = decode_envelope(data)
    return int(headers["event_id"], 16)


def error(n: int) -> Item:
    return Item(envelope(n), "error")


def make(
    spool: Spool | None = None, max_items: int = 100, max_bytes: int = 10**6
) -> tuple[Backlog, threading.Condition, Counter[tuple[str, str]]]:
    lost: Counter[tuple[str, str]] = Counter()
    backlog = Backlog(spool, lost, max_items=max_items, max_bytes=max_bytes)
    cond = threading.Condition(threading.Lock())
    backlog.reset(cond)
    return backlog, cond, lost


def take_all(backlog: Backlog, cond: threading.Condition) -> list[Item]:
    taken = []
    with cond:
        while (item := backlog.take_locked()) is not None:
            taken.append(item)
    return taken


class CountingSpool(Spool):
    def __init__(self, directory: Path, **kwargs: int) -> None:
        super().__init__(directory, **kwargs)
        self.puts = 0

    def put(self, envelope: bytes) -> bool:
        self.puts += 1
        return super().put(envelope)


# -- memory ----------------------------------------------------------------------------------


def test_hold_respects_the_outbox_bounds_and_wakes_the_sender() -> None:
    backlog, cond, _ = make(max_items=2)
    waiting = threading.Event()
    woken = []

    def sender() -> None:
        with cond:
            waiting.set()
            woken.append(cond.wait(5))

    thread = threading.Thread(target=sender)
    thread.start()
    assert waiting.wait(5)
    with cond:  # acquired only once the sender waits
        assert backlog.hold_locked(error(0))
    thread.join(5)
    assert woken == [True]  # notified, not timed out
    with cond:
        assert backlog.hold_locked(error(1))
        assert not backlog.hold_locked(error(2))  # full: nothing changed
    assert backlog.in_memory == 2


def test_take_gives_the_oldest_first_and_put_back_goes_to_the_head() -> None:
    backlog, cond, _ = make()
    with cond:
        for n in range(3):
            backlog.hold_locked(error(n))
        first = backlog.take_locked()
    assert first is not None
    backlog.put_back(first)  # failed: retried before the ones behind it
    assert [number(i.data) for i in take_all(backlog, cond)] == [0, 1, 2]


def test_put_back_after_close_counts_the_envelope_lost() -> None:
    backlog, _, lost = make()
    backlog.close()
    backlog.put_back(error(0))
    assert backlog.in_memory == 0
    assert lost == Counter({("network_error", "error"): 1})


def test_reset_empties_the_outbox_and_keeps_closed() -> None:
    backlog, cond, _ = make()
    with cond:
        backlog.hold_locked(error(0))
    backlog.reset(threading.Condition(threading.Lock()))
    assert backlog.in_memory == 0 and not backlog.closed
    backlog.close()
    backlog.reset(threading.Condition(threading.Lock()))
    assert backlog.closed  # a child forked after shutdown stays shut


# -- disk ------------------------------------------------------------------------------------


def test_take_claims_a_batch_from_the_spool_once_memory_is_empty(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for n in range(SPOOL_BATCH + 5):
        spool.put(envelope(n))
    backlog, cond, _ = make(spool)
    with cond:
        backlog.hold_locked(error(1000))
        from_memory = backlog.take_locked()
        first = backlog.take_locked()
    assert from_memory is not None and number(from_memory.data) == 1000
    assert first is not None and first.entry is not None and first.category == "error"
    assert backlog.in_memory == SPOOL_BATCH - 1  # the rest of the batch, behind it
    assert spool.pending() == 5
    rest = take_all(backlog, cond)
    assert [number(i.data) for i in [first, *rest]] == list(range(SPOOL_BATCH + 5))


def test_take_reads_the_disk_without_the_lock(tmp_path: Path) -> None:
    lock = threading.Lock()
    held_during_claim = []

    class Watching(Spool):
        def claim(self, limit: int = 50) -> list[SpoolEntry]:
            held_during_claim.append(lock.locked())
            return super().claim(limit)

    spool = Watching(tmp_path)
    spool.put(envelope(0))
    backlog = Backlog(spool, Counter(), max_items=10, max_bytes=10**6)
    cond = threading.Condition(lock)
    backlog.reset(cond)
    with cond:
        item = backlog.take_locked()
        assert lock.locked()  # held again on return
    assert item is not None and held_during_claim == [False]


def test_a_batch_claimed_while_shutdown_came_goes_back_to_the_spool(tmp_path: Path) -> None:
    backlog: Backlog | None = None

    class ShutDownMeanwhile(Spool):
        def claim(self, limit: int = 50) -> list[SpoolEntry]:
            entries = super().claim(limit)
            assert backlog is not None
            backlog.close()  # another thread's shutdown, while we read the disk
            return entries

    spool = ShutDownMeanwhile(tmp_path)
    for n in range(3):
        spool.put(envelope(n))
    backlog, cond, lost = make(spool)
    with cond:
        assert backlog.take_locked() is None
    assert spool.pending() == 3 and backlog.in_memory == 0 and not lost


def test_to_spool_puts_new_errors_and_gives_back_claimed_ones(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    backlog, _, _ = make(spool)
    assert backlog.to_spool(error(0))
    assert not backlog.to_spool(Item(envelope(1), "transaction"))  # never spooled
    assert spool.pending() == 1
    [entry] = spool.claim()
    assert spool.pending() == 0
    assert backlog.to_spool(Item(entry.data, "error", entry=entry))
    assert spool.pending() == 1  # released, not written again
    assert not make(None)[0].to_spool(error(2))


def test_ack_deletes_a_claimed_envelope_and_ignores_new_ones(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(envelope(0))
    backlog, cond, _ = make(spool)
    backlog.ack(error(1))  # never on disk: nothing to do
    with cond:
        item = backlog.take_locked()
    assert item is not None
    backlog.ack(item)
    assert spool.pending() == 0 and spool.size_bytes() == 0
    assert spool.claim() == []


def test_spill_moves_memory_to_disk_until_the_spool_refuses(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_files=2)
    backlog, cond, lost = make(spool)
    with cond:
        backlog.hold_locked(error(0))
        backlog.hold_locked(Item(envelope(1), "transaction"))
        for n in (2, 3, 4):
            backlog.hold_locked(error(n))
    backlog.spill()
    # 0 and 2 went to disk; the transaction is never spooled (lost); 3 was refused, so it
    # and the rest stay in memory, in order.
    assert [number(e.data) for e in spool.claim()] == [0, 2]
    assert lost == Counter({("network_error", "transaction"): 1})
    assert [number(i.data) for i in take_all(backlog, cond)] == [3, 4]


def test_close_spools_what_waited_and_counts_the_rest(tmp_path: Path) -> None:
    spool = CountingSpool(tmp_path, max_files=2)
    backlog, cond, lost = make(spool)
    with cond:
        for n in range(3):
            backlog.hold_locked(error(n))
        backlog.hold_locked(Item(envelope(3), "transaction"))
        backlog.hold_locked(error(4))
    assert backlog.close() == (5, 3)
    assert backlog.closed and backlog.in_memory == 0
    # 0 and 1 spooled; 2 refused, after which the spool is not tried again (4); the
    # transaction is never spooled.
    assert spool.puts == 3
    assert spool.pending() == 2
    assert lost == Counter({("network_error", "error"): 2, ("network_error", "transaction"): 1})


def test_close_gives_claimed_envelopes_back_even_after_a_refusal(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_files=2)
    spool.put(envelope(0))
    spool.put(envelope(1))
    backlog, cond, lost = make(spool)
    with cond:
        first = backlog.take_locked()  # claims both; 1 waits in memory
    assert first is not None
    backlog.put_back(error(2))  # the spool is full: it will refuse this one
    backlog.put_back(first)
    assert backlog.close() == (3, 1)  # 0 given back, 2 refused, 1 still given back
    assert [number(e.data) for e in spool.claim()] == [0, 1]
    assert lost == Counter({("network_error", "error"): 1})


def test_close_without_a_spool_counts_everything_lost() -> None:
    backlog, cond, lost = make()
    with cond:
        backlog.hold_locked(error(0))
        backlog.hold_locked(Item(envelope(1), "transaction"))
    assert backlog.close() == (2, 2)
    assert lost == Counter({("network_error", "error"): 1, ("network_error", "transaction"): 1})
    assert backlog.close() == (0, 0)

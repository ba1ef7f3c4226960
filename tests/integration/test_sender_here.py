"""Delivery.submit(waiting=N): an envelope sent on the thread that made it while nothing waits
and the server answers quickly; everything else still through the sender thread. Real sockets,
a real receiver; the transport is the real one, wrapped to note which thread sent."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from otel_sentry_bridge.deliver.http import HttpTransport, SendResult
from otel_sentry_bridge.deliver.pipeline import envelope_for
from otel_sentry_bridge.deliver.retry import Backoff
from otel_sentry_bridge.deliver.sender import HERE_MAX_DELAY_S, HERE_PATIENCE_S, Delivery
from otel_sentry_bridge.setup.dsn import Dsn
from tests.support.receiver import SentryReceiver

FAST = Backoff(initial=0.05, factor=2.0, maximum=0.4, jitter=0.1, give_up_after=60.0)
# "Quick" and "near" for these tests: far above the test receiver's reply time on a loaded
# machine.
QUICK_REPLY_S = 0.3


class ThreadNoting:
    """The real transport; each send notes the name of the thread it ran on."""

    def __init__(self, transport: HttpTransport) -> None:
        self.transport = transport
        self.threads: list[str] = []

    def send(self, envelope: bytes) -> SendResult:
        self.threads.append(threading.current_thread().name)
        return self.transport.send(envelope)

    def send_within(self, envelope: bytes, timeout: float) -> SendResult:
        self.threads.append(threading.current_thread().name)
        return self.transport.send_within(envelope, timeout)

    def close(self) -> None:
        self.transport.close()


def _envelope(receiver: SentryReceiver, value: str) -> bytes:
    event = {
        "event_id": uuid.uuid4().hex,
        "timestamp": 1_700_000_000.0,
        "platform": "python",
        "level": "error",
        "exception": {"values": [{"type": "RuntimeError", "value": value}]},
    }
    return envelope_for(event, Dsn.parse(receiver.dsn))


@contextmanager
def _opened(receiver: SentryReceiver, **options: Any) -> Iterator[tuple[Delivery, ThreadNoting]]:
    """A delivery to ``receiver`` over the real transport, quick and near for these tests
    unless ``options`` say otherwise; shut down and closed afterwards."""
    transport = ThreadNoting(HttpTransport(Dsn.parse(receiver.dsn), gzip=False))
    settings = {"quick_reply_s": QUICK_REPLY_S, "near_reply_s": QUICK_REPLY_S, **options}
    delivery = Delivery(transport, backoff=FAST, **settings)
    try:
        yield delivery, transport
    finally:
        delivery.shutdown(2)
        delivery.close()


@pytest.fixture
def delivery(sentry_receiver: SentryReceiver) -> Iterator[tuple[Delivery, ThreadNoting]]:
    with _opened(sentry_receiver) as opened:
        yield opened


def _warm(delivery: Delivery, receiver: SentryReceiver) -> None:
    """The first envelope: the server's speed is not known yet, so the sender thread sends."""
    assert delivery.submit(_envelope(receiver, "first"), waiting=0)
    assert delivery.flush(5)


def _submit_held(
    delivery: Delivery, receiver: SentryReceiver, value: str, *, hold_s: float
) -> threading.Thread:
    """A thread that submits one envelope with ``waiting=0`` and is, on return, in the middle
    of its exchange: the server holds the reply ``hold_s`` seconds (after the warm-up one)."""
    receiver.respond_with(200, delay=hold_s)
    thread = threading.Thread(
        target=delivery.submit, args=(_envelope(receiver, value),), kwargs={"waiting": 0}
    )
    thread.start()
    receiver.wait_for_requests(2)
    return thread


def _values(receiver: SentryReceiver) -> list[str]:
    return [e["exception"]["values"][-1]["value"] for e in receiver.accepted]


def test_while_nothing_waits_an_envelope_is_sent_on_the_submitting_thread(
    delivery: tuple[Delivery, ThreadNoting], sentry_receiver: SentryReceiver
) -> None:
    sender, transport = delivery
    _warm(sender, sentry_receiver)
    me = threading.current_thread().name
    assert transport.threads == ["otel-sentry-bridge-sender"]
    assert sender.submit(_envelope(sentry_receiver, "second"), waiting=0)
    # Sent and answered before submit returned: no other thread was involved.
    assert transport.threads[-1] == me
    assert _values(sentry_receiver) == ["first", "second"]
    assert sender.sent == 2
    # Without ``waiting`` it is queued for the sender thread, as always.
    assert sender.submit(_envelope(sentry_receiver, "third"))
    assert sender.flush(5)
    assert transport.threads[-1] == "otel-sentry-bridge-sender"


def test_a_failure_sent_here_is_retried_by_the_sender_thread_and_new_ones_queue_meanwhile(
    delivery: tuple[Delivery, ThreadNoting], sentry_receiver: SentryReceiver
) -> None:
    sender, transport = delivery
    _warm(sender, sentry_receiver)
    sentry_receiver.respond_with(503)
    assert sender.submit(_envelope(sentry_receiver, "fails once"), waiting=0)
    assert transport.threads[-1] == threading.current_thread().name
    # Degraded now: the next one is not sent here, it waits behind the retry.
    assert sender.submit(_envelope(sentry_receiver, "meanwhile"), waiting=0)
    sentry_receiver.wait_for_accepted(3, timeout=10)
    assert sender.flush(5)
    assert [r.status for r in sentry_receiver.requests] == [200, 503, 200, 200]
    assert transport.threads[2:] == ["otel-sentry-bridge-sender"] * 2
    assert sorted(_values(sentry_receiver)) == ["fails once", "first", "meanwhile"]


def test_a_slow_server_is_sent_to_from_the_sender_thread(
    delivery: tuple[Delivery, ThreadNoting], sentry_receiver: SentryReceiver
) -> None:
    sender, transport = delivery
    sentry_receiver.respond_with(200, delay=QUICK_REPLY_S * 2)
    _warm(sender, sentry_receiver)
    me = threading.current_thread().name
    assert sender.submit(_envelope(sentry_receiver, "after a slow reply"), waiting=0)
    assert sender.flush(5)
    assert transport.threads == ["otel-sentry-bridge-sender"] * 2
    # Quick again: the next one goes from here.
    assert sender.submit(_envelope(sentry_receiver, "quick again"), waiting=0)
    assert transport.threads[-1] == me
    assert len(sentry_receiver.accepted) == 3


def test_flush_waits_for_an_envelope_sent_here(
    delivery: tuple[Delivery, ThreadNoting], sentry_receiver: SentryReceiver
) -> None:
    sender, transport = delivery
    _warm(sender, sentry_receiver)
    # A quick server that stalls on this one reply: a flush from another thread waits for it.
    worker = _submit_held(sender, sentry_receiver, "slow", hold_s=0.5)
    assert sender.flush(5)
    assert len(sentry_receiver.accepted) == 2
    worker.join(5)
    assert transport.threads[-1] == worker.name


def test_a_server_that_stalls_holds_the_submitting_thread_no_longer_than_its_patience(
    delivery: tuple[Delivery, ThreadNoting], sentry_receiver: SentryReceiver
) -> None:
    sender, transport = delivery
    _warm(sender, sentry_receiver)
    sentry_receiver.respond_with(200, delay=HERE_PATIENCE_S * 4)
    began = time.monotonic()
    assert sender.submit(_envelope(sentry_receiver, "stalled"), waiting=0)
    held = time.monotonic() - began
    assert HERE_PATIENCE_S * 0.9 < held < HERE_PATIENCE_S * 2.5
    # Counted as failed there, and retried by the sender thread: the server may now hold it
    # twice, under one event id (Sentry keeps one).
    assert transport.threads[1:] == [threading.current_thread().name]
    assert sender.flush(10)
    assert transport.threads[2:] == ["otel-sentry-bridge-sender"]
    stalled = [
        e for e in sentry_receiver.accepted if e["exception"]["values"][-1]["value"] == "stalled"
    ]
    assert len(stalled) == 2 and len({e["event_id"] for e in stalled}) == 1
    assert sender.sent == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_the_parent_sends_here_delivers_its_own(
    delivery: tuple[Delivery, ThreadNoting], sentry_receiver: SentryReceiver
) -> None:
    sender, _ = delivery
    _warm(sender, sentry_receiver)
    # The parent's worker is in the middle of a send made here (the server holds the reply)
    # when the process forks, as a gunicorn master may.
    worker = _submit_held(sender, sentry_receiver, "parent", hold_s=0.8)
    pid = os.fork()
    if pid == 0:  # child: report through the exit code, never return into pytest
        code = 1
        try:
            sender.submit(_envelope(sentry_receiver, "child"), waiting=0)
            code = 0 if sender.flush(5) else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    worker.join(5)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sender.flush(5)
    assert sorted(_values(sentry_receiver)) == ["child", "first", "parent"]


def test_from_a_server_further_away_sent_here_only_while_what_waits_is_held_up_briefly(
    sentry_receiver: SentryReceiver,
) -> None:
    # Every reply takes a quarter of HERE_MAX_DELAY_S: quick (under QUICK_REPLY_S) but not
    # near; with many spans waiting for the worker, sending there would hold them all up.
    # Three replies measured first (the fastest counts): on a loaded machine one of them may
    # come late, and the test is about the rule, not about this machine's scheduler.
    reply_s = HERE_MAX_DELAY_S / 4
    with _opened(sentry_receiver, near_reply_s=reply_s / 10) as (sender, transport):
        for _ in range(6):
            sentry_receiver.respond_with(200, delay=reply_s)
        for _ in range(3):
            _warm(sender, sentry_receiver)
        me = threading.current_thread().name
        assert sender.submit(_envelope(sentry_receiver, "one waits"), waiting=1)
        assert transport.threads[-1] == me
        many = int(HERE_MAX_DELAY_S / reply_s) * 2
        assert sender.submit(_envelope(sentry_receiver, "many wait"), waiting=many)
        assert sender.flush(5)
        assert transport.threads[-1] == "otel-sentry-bridge-sender"
        assert len(sentry_receiver.accepted) == 5


def test_to_a_near_server_sent_here_until_too_many_wait(sentry_receiver: SentryReceiver) -> None:
    """A near server: the caller sends whatever waits for it, up to ``here_max_waiting``
    (then the sender thread waits for the reply while the caller gets on with what waits)."""
    with _opened(sentry_receiver, here_max_waiting=50) as (sender, transport):
        _warm(sender, sentry_receiver)
        me = threading.current_thread().name
        # Far more than HERE_MAX_DELAY_S / reply time: only nearness lets it go here.
        assert sender.submit(_envelope(sentry_receiver, "49 wait"), waiting=49)
        assert transport.threads[-1] == me
        assert sender.submit(_envelope(sentry_receiver, "50 wait"), waiting=50)
        assert sender.flush(5)
        assert transport.threads[-1] == "otel-sentry-bridge-sender"
        assert _values(sentry_receiver)[-2:] == ["49 wait", "50 wait"]


def test_an_envelope_sent_here_never_overtakes_one_waiting_for_the_sender_thread(
    delivery: tuple[Delivery, ThreadNoting], sentry_receiver: SentryReceiver
) -> None:
    sender, transport = delivery
    _warm(sender, sentry_receiver)
    # The sender thread is in the middle of an exchange, and another envelope waits for it.
    sentry_receiver.respond_with(200, delay=0.3)
    assert sender.submit(_envelope(sentry_receiver, "in flight"))
    sentry_receiver.wait_for_requests(2)
    assert sender.submit(_envelope(sentry_receiver, "waiting"))
    assert sender.submit(_envelope(sentry_receiver, "last"), waiting=0)
    assert sender.flush(5)
    assert _values(sentry_receiver) == ["first", "in flight", "waiting", "last"]
    assert transport.threads == ["otel-sentry-bridge-sender"] * 4

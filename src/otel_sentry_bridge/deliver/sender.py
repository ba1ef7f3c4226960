"""The sender thread: encoded envelopes -> HTTP, with retries, rate limits and a disk spool.

Policy, in order:

- ``submit`` never blocks. While the server answers, envelopes wait in a bounded in-memory
  outbox and are sent in order.
- After a failure (network error, 5xx, 429 or an active rate limit) the sender is *degraded*:
  with a spool configured, the failed envelope and every new one go to disk at once (a crash
  or ``kill -9`` then loses nothing), and the sender retries from the spool with exponential
  backoff and jitter, or when the rate limit ends. Without a spool they wait in memory, each
  for at most ``Backoff.give_up_after`` seconds; so does every envelope the spool refuses
  (its directory unusable, or full): a broken spool never loses what memory can hold.
- Whatever still cannot be kept (outbox and spool full, 4xx rejections, given up) is counted
  per reason and reported to the server in ``client_report`` items.
- Spooled envelopes from an earlier run (or another process sharing the directory) are sent
  when the sender starts and whenever the server is healthy again.
- Only errors are retried and spooled. Other categories (transactions) are sent once, never
  while their category is rate-limited, and dropped (counted) on any failure, without
  holding up the errors behind them.

Where an envelope waits meanwhile (outbox, spool) and where one that cannot be sent now goes
is :class:`~.backlog.Backlog`'s job; this module decides when to send and what each answer
means.

- Sent where it was made: while the server answers quickly (the fastest of its last 16
  replies within ``quick_reply_s``, 20 ms), nothing waits in the outbox or is in flight (the
  order is kept) and no failure or rate limit is in force, an envelope submitted with
  ``waiting=N`` (by the worker: N spans wait for it) is sent on the calling thread, while N
  is under ``here_max_waiting`` (the bridge gives three quarters of its queue) and, for a
  server further than ``near_reply_s`` (5 ms), while N such replies would hold those spans
  up ``HERE_MAX_DELAY_S`` at most. A second thread taking the GIL for every envelope costs
  the host more CPU than the send itself: under sustained traffic the worker falls behind,
  and handing every envelope over then cost ~120 µs more per error than sending it on the
  worker (the sender thread's 0.32-0.40 s for 2,000 errors gone, the worker's own time
  +0.03-0.12 s). Whatever that send's answer, it is handled as the sender thread would; the
  sender thread then retries it.

Thread rules: ``submit``/``flush``/``shutdown`` may be called from any thread; everything else
runs on the sender thread, or on the thread that submitted with ``waiting`` for its own
envelope. One exchange at a time uses the transport (``_wire``). A fork gives the child an
empty outbox and its own thread.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable

from ..warn_once import WarnOnce
from .backlog import Backlog
from .client_reports import REPORT_INTERVAL, ClientReports
from .http import SendResult, Transport
from .outbox import Item
from .ratelimit import RateLimits
from .retry import Backoff, classify
from .spool import Spool
from .worker import THREAD_PREFIX

__all__ = ["Delivery"]

_log = logging.getLogger("otel_sentry_bridge")
# Of the shutdown budget, kept back from the flush for the final client report, so that a
# flush cut short by a backlog still leaves time to tell the server what was lost.
_FINAL_REPORT_RESERVE = 0.25
# A server whose replies (the fastest of the last 16) come within this many seconds is quick
# (a local relay or Sentry in the same network): an envelope may then be sent on the thread
# that made it.
QUICK_REPLY_S = 0.02
# How long a send made on the submitting thread may take (each step: connect, send, reply)
# before it counts as failed and is left to the sender thread to retry: a server that
# answered quickly and then stalls holds the worker, and the spans queued behind it, no
# longer than this. (A retried envelope the server did take after all is the same event id:
# Sentry keeps one.)
HERE_PATIENCE_S = 1.0
# A server whose replies come within this (a relay on this host or next to it: 0.3-1 ms, a few
# ms on a loaded host) is near: the submitting thread sends there whatever waits for it,
# until ``here_max_waiting``. With one connection, envelopes leave at most one per reply
# either way; the sender thread waiting for replies while the worker converts delivers at
# most twice as many per second (when both take as long), for more CPU.
NEAR_REPLY_S = 0.005
# For a server further away: how long the items waiting for the submitting thread may be held
# up by sending there. With N waiting and replies of r seconds, sent there only while N * r
# stays within this: converting while the sender thread waits for the reply then delivers
# more per second.
HERE_MAX_DELAY_S = 0.02
_REPLIES_KEPT = 16  # reply times the server's speed is judged on


class Delivery:
    def __init__(
        self,
        transport: Transport,
        *,
        spool: Spool | None = None,
        backoff: Backoff | None = None,
        max_pending: int = 1000,
        max_pending_bytes: int = 32 * 1024 * 1024,
        dsn_header: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        quick_reply_s: float = QUICK_REPLY_S,
        near_reply_s: float = NEAR_REPLY_S,
        here_max_waiting: int = 500,
    ) -> None:
        self._transport = transport
        self._quick_reply_s = quick_reply_s
        self._near_reply_s = near_reply_s
        # From this many items waiting for the submitting thread, it never sends: the sender
        # thread waits for the replies while it converts (the bridge: three quarters of its
        # queue, above the half where request threads start to step aside for the worker).
        self._here_max_waiting = here_max_waiting
        # A transport that can be given a shorter timeout for one send (HttpTransport).
        self._send_within: Callable[[bytes, float], SendResult] | None = getattr(
            transport, "send_within", None
        )
        self._spool = spool
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._reports = ClientReports(dsn_header or {}, clock())
        # (reason, category) -> events dropped, sent to the server in client reports
        self.lost: Counter[tuple[str, str]] = self._reports.lost
        self.sent = 0
        self._warn = WarnOnce(_log)
        # What waits to be sent, in memory and on disk; ``closed`` once shut down. Its state is
        # guarded by ``_cond``, which _reset gives it.
        self._backlog = Backlog(
            spool, self.lost, max_items=max(1, max_pending), max_bytes=max_pending_bytes
        )
        self._report_due = False  # set by shutdown once every loss is counted
        self._reset()
        ref = weakref.WeakMethod(self._reset)
        os.register_at_fork(after_in_child=lambda: (m := ref()) is not None and m())
        if spool is not None and spool.pending():
            self._ensure_thread()  # deliver what an earlier run left behind

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        # Held for each exchange (one at a time on the transport). New in a forked child: a
        # parent's thread may have held it at the fork, and nobody would ever release it.
        self._wire = threading.Lock()
        self._backlog.reset(self._cond)  # an empty outbox, under the new lock
        # What is in flight (by id()): flush waits for it, shutdown keeps it.
        self._flying: dict[int, Item] = {}
        self._limits = RateLimits()
        self._degraded_until: float | None = None  # retry time after a failure
        self._attempt = 0
        self._reports.restart(self._clock())
        self._thread: threading.Thread | None = None
        # How long the server takes to answer: the fastest of the last successful exchanges
        # (a slow one may only have waited for the GIL); None: unknown, or the last failed.
        self._replies: deque[float] = deque(maxlen=_REPLIES_KEPT)
        self._reply_s: float | None = None
        self._flushing = 0  # threads waiting in flush (woken when a send made here ends)

    # -- any thread ------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._backlog.in_memory

    @property
    def backlogged(self) -> bool:
        """Whether a new envelope would wait: others wait in memory already, or the server
        is failing (envelopes go to the spool). Read without the lock: a hint."""
        return self._backlog.in_memory > 0 or self._degraded_until is not None

    @property
    def can_spool(self) -> bool:
        """Whether a spool is configured and took the last envelope offered to it."""
        return self._spool is not None and self._spool.accepts

    def record_loss(self, reason: str, category: str = "error", quantity: int = 1) -> None:
        with self._cond:
            self._reports.add(reason, category, quantity)

    def is_rate_limited(self, category: str) -> bool:
        """Whether the server asked for no ``category`` envelopes just now."""
        return self._limits.is_limited(category, self._clock())

    def submit(self, data: bytes, category: str = "error", *, waiting: int | None = None) -> bool:
        """Queue one envelope; False (and counted) when it cannot be kept. Never blocks
        without ``waiting``.

        With ``waiting`` (how many items wait for the calling thread meanwhile), the caller
        may wait for the exchange, up to ``HERE_PATIENCE_S``: the envelope is sent on this
        thread while the server answers quickly and those items would not be held up long
        (see the module docstring), else queued as without it."""
        if os.getpid() != self._pid:
            self._reset()
        item = Item(data, category)
        if waiting is not None and self._claim_here(category, waiting, item):
            self._send_here(item)
            return True
        backlog = self._backlog
        with self._cond:
            if backlog.closed:
                self._reports.add("network_error", category)
                return False
            to_disk = self._degraded_until is not None and self._spool is not None
            if to_disk and category != "error":  # never spooled
                self._reports.add("network_error", category)
                return False
            if not to_disk and backlog.hold_locked(item):
                return self._ensure_thread_locked()
        # Degraded with a spool (to disk at once: a crash then loses nothing), or the outbox
        # is full. Disk I/O outside the lock.
        if backlog.to_spool(item):
            self._ensure_thread()
            return True
        # The spool refused it (unusable or full): it waits in memory, as without a spool.
        with self._cond:
            if not backlog.closed and backlog.hold_locked(item):
                return self._ensure_thread_locked()
            self._reports.add("network_error" if backlog.closed else "queue_overflow", category)
            return False

    def flush(self, timeout: float) -> bool:
        """Wait until the outbox is empty and nothing is in flight (spooled envelopes count as
        kept, not as pending). False when the deadline passes first."""
        deadline = self._clock() + max(0.0, timeout)
        with self._cond:
            self._flushing += 1
            try:
                while self._backlog.in_memory or self._flying:
                    remaining = deadline - self._clock()
                    if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                        return False
                    self._cond.wait(min(remaining, 0.5))
            finally:
                self._flushing -= 1
        return True

    def shutdown(self, timeout: float) -> bool:
        """Send what can be sent within ``timeout``; spool the rest (when configured); send
        the final client report if time is left. Returns within about ``timeout`` whatever
        the server does."""
        timeout = max(0.0, timeout)
        deadline = self._clock() + timeout
        drained = self.flush(timeout - min(_FINAL_REPORT_RESERVE, timeout / 4))
        left, lost = self._backlog.close()  # to the spool while it takes them, else lost
        flying = self._abandon_flying()
        for item in flying:
            # Still waiting for the server (one that never answers, or answers slower than
            # the shutdown timeout): the process ends before that exchange does. Spooled, it
            # is sent again by the next process (the server keeps one event per event id).
            if not self._backlog.to_spool(item):
                self.record_loss("network_error", item.category)
                lost += 1
        if lost:
            _log.warning("otel-sentry-bridge: %d event(s) not sent before shutdown", lost)
        self._final_report(deadline)
        return drained and not left and not flying

    def _abandon_flying(self) -> list[Item]:
        with self._cond:
            flying = list(self._flying.values())
            for item in flying:
                item.abandoned = True
        return flying

    def _final_report(self, deadline: float) -> None:
        """Let the sender thread send the last client report; wait for it until ``deadline``.

        Not sent from here: against a server that accepts connections and never answers, a
        POST blocks for the whole HTTP timeout (connect, then read), and so would the exit of
        the process. The sender thread sends it as its last act (after the envelope it may be
        sending, on the same connection) and is waited for only until the deadline, then
        abandoned: it is a daemon. Not a thread of its own: Python 3.12+ cannot start threads
        in an atexit handler, which is where a TracerProvider shuts us down.
        """
        with self._cond:
            self._report_due = True
            self._cond.notify_all()
            if not self._reports.unreported:
                return
        # No sender thread yet (nothing was ever submitted): start one for the report, unless
        # the interpreter refuses (3.12+ at exit); the report is then skipped, never blocking.
        if not self._ensure_thread():
            return
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - self._clock()))

    def close(self) -> None:
        self._transport.close()

    def wait_stopped(self, timeout: float) -> bool:
        """After shutdown: wait until the sender thread has finished (True), at most
        ``timeout`` seconds."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    # -- the submitting thread (waiting=N) -------------------------------------------------

    def _claim_here(self, category: str, waiting: int, item: Item) -> bool:
        """Whether this envelope goes out now on the calling thread (then counted in flight).
        Only while the sender thread exists (it made the first exchange, and it retries what
        fails here) and has nothing to send: envelopes go out in the order they came, so one
        sent here must not overtake one waiting in the outbox or in flight."""
        reply_s = self._reply_s
        if reply_s is None or reply_s >= self._quick_reply_s:
            return False
        if waiting >= self._here_max_waiting:
            return False
        if reply_s > self._near_reply_s and waiting * reply_s > HERE_MAX_DELAY_S:
            return False
        with self._cond:
            if (
                self._thread is None
                or self._flying
                or self._backlog.in_memory
                or self._backlog.closed
                or self._degraded_until is not None
                or self._limits.is_limited(category, self._clock())
            ):
                return False
            self._flying[id(item)] = item
            return True

    def _send_here(self, item: Item) -> None:
        settled = False
        try:
            self._attempt_send(item, HERE_PATIENCE_S)
            settled = self._degraded_until is None
        except Exception:  # never let one envelope stop the caller
            _log.debug("otel-sentry-bridge: delivery error", exc_info=True)
        finally:
            with self._cond:
                self._flying.pop(id(item), None)
                # A failure put it back, or on disk: the sender thread now has a retry to
                # time. A success wakes only a waiting flush, never the idle sender.
                if not settled or self._flushing:
                    self._cond.notify_all()

    # -- sender thread ---------------------------------------------------------------------

    def _ensure_thread(self) -> bool:
        with self._cond:
            return self._ensure_thread_locked()

    def _ensure_thread_locked(self) -> bool:
        if self._thread is not None:
            return True
        thread = threading.Thread(target=self._run, name=f"{THREAD_PREFIX}-sender", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # interpreter shutting down
            return False
        self._thread = thread
        return True

    def _run(self) -> None:
        if self._spool is not None:
            self._spool.recover()
        while True:
            item, closed = self._next_item()
            if closed:
                self._send_client_report(final=True)
                return
            if item is not None:
                try:
                    self._attempt_send(item)
                except Exception:  # never let one envelope stop delivery
                    _log.debug("otel-sentry-bridge: delivery error", exc_info=True)
                finally:
                    with self._cond:
                        self._flying.pop(id(item), None)
                        self._cond.notify_all()
            self._maybe_report()

    def _next_item(self) -> tuple[Item | None, bool]:
        """(item to send now, closed). Waits for work, a retry time or a rate limit to end,
        and returns (None, False) at least every report interval. Once closed, returns
        (None, True) when shutdown has counted what it could not keep."""
        with self._cond:
            if not self._backlog.closed:
                wait = self._wait_time(self._clock())
                if wait <= 0:
                    item = self._backlog.take_locked()
                    if item is not None:
                        self._flying[id(item)] = item
                        return item, False
                    wait = REPORT_INTERVAL
                if not self._backlog.closed:  # (shutdown may have come while it read the disk)
                    self._cond.wait(min(wait, REPORT_INTERVAL))
                    return None, False  # closed or not, the next call tells
            while not self._report_due:
                self._cond.wait()
            return None, True

    def _wait_time(self, now: float) -> float:
        if self._degraded_until is not None and now < self._degraded_until:
            return self._degraded_until - now
        if self._limits.is_limited("error", now):
            return self._limits.remaining("error", now)
        return 0.0

    def _attempt_send(self, item: Item, patience: float | None = None) -> None:
        if item.category != "error" and self._limits.is_limited(item.category, self._clock()):
            self._drop(item, "ratelimit_backoff")
            return
        result = self._exchange(item.data, patience)
        now = self._clock()
        outcome = classify(result)
        _log.debug("otel-sentry-bridge: POST %s: %s", item.category, result.status or result.error)
        with self._cond:
            self._limits = self._limits.after(result, now, time.time())
        if outcome == "sent":
            self._on_sent(item)
        elif outcome == "rejected":
            self._drop(item, "send_error")
            self._warn(
                f"rejected-{result.status}",
                "otel-sentry-bridge: the server rejected an event: HTTP %s %s",
                result.status,
                result.body[:300],
            )
        elif item.category != "error":  # sent once; its failure must not delay the errors
            self._drop(item, "ratelimit_backoff" if outcome == "rate_limited" else "network_error")
        else:
            self._on_failure(item, result, now, rate_limited=outcome == "rate_limited")

    def _exchange(self, data: bytes, patience: float | None = None) -> SendResult:
        """One POST, never two at once on the transport, within ``patience`` seconds when
        given (and the transport can be told); notes whether the reply was quick."""
        with self._wire:
            began = self._clock()
            if patience is not None and self._send_within is not None:
                result = self._send_within(data, patience)
            else:
                result = self._transport.send(data)
            if result.ok:
                self._replies.append(self._clock() - began)
                self._reply_s = min(self._replies)
            else:
                self._replies.clear()
                self._reply_s = None
        return result

    def _on_sent(self, item: Item) -> None:
        self._backlog.ack(item)
        with self._cond:
            self.sent += 1
            recovered = self._degraded_until is not None
            self._degraded_until = None
            self._attempt = 0
        if recovered and self._warn.forget("unreachable"):  # warn again at the next outage
            _log.info("otel-sentry-bridge: Sentry reachable again; delivery resumed")

    def _drop(self, item: Item, reason: str) -> None:
        self._backlog.ack(item)
        self.record_loss(reason, item.category)

    def _on_failure(
        self, item: Item, result: SendResult, now: float, *, rate_limited: bool
    ) -> None:
        item.attempts += 1
        if item.first_failure is None:
            item.first_failure = now
        with self._cond:
            closed = self._backlog.closed
            self._attempt += 1
            # A 429 that limits nothing for this category (Retry-After: 0, a date in the past,
            # X-Sentry-Rate-Limits naming other categories) still waits as a failure does:
            # never a retry loop as fast as the server answers.
            delay = self._limits.remaining(item.category, now) if rate_limited else 0.0
            if delay <= 0.0:
                delay = self._backoff.delay(self._attempt, random.random())
            self._degraded_until = now + max(delay, 0.0)
        if item.abandoned:
            return  # shutdown kept it in the spool, or counted it
        if closed:
            # In flight when shutdown gave up, and perhaps failed only because shutdown then
            # closed the transport under it: our own doing, not an outage to warn about.
            if not self._backlog.to_spool(item):
                self.record_loss("network_error", item.category)
            return
        spooled = self._backlog.to_spool(item)
        if not rate_limited:
            self._warn(
                "unreachable",
                "otel-sentry-bridge: Sentry unreachable (%s); will retry%s",
                result.error or f"HTTP {result.status}",
                " from the spool" if spooled else "",
            )
        if spooled:
            self._backlog.spill()  # what waits in memory follows it to disk
            return
        # No spool, or it refused the envelope: it waits in memory, as without a spool.
        if not rate_limited and self._backoff.should_give_up(item.first_failure, now):
            self.record_loss("network_error", item.category)
            return
        self._backlog.put_back(item)  # at the head, to retry first

    # -- client reports ----------------------------------------------------------------------

    def _maybe_report(self) -> None:
        if self._reports.due(self._clock()):
            self._send_client_report()
            if self._spool is not None:
                # Claims left by a worker that died (another gunicorn worker, a kill -9).
                self._spool.recover()

    def _send_client_report(self, final: bool = False) -> None:
        """Tell the server what was dropped since the last report (best effort, no retry)."""
        with self._cond:
            now = self._clock()
            self._reports.restart(now)  # the next try, or report, an interval from now
            if self._limits.is_limited("internal", now):
                return
            if self._degraded_until is not None and not final:
                return  # the server is not answering: keep counting
            delta = self._reports.claim(now)
        if delta is None:
            return
        result = self._exchange(self._reports.envelope(delta))
        if not result.ok:
            with self._cond:
                self._reports.unclaim(delta)  # try again with the next report

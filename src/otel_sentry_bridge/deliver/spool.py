"""A disk spool of encoded envelopes, shared safely by processes and surviving ``kill -9``.

Layout under the spool directory (created with mode 0o700: envelopes hold personal data)::

    tmp/         <pid>-<rand>.tmp                                   being written
    ready/       <time_ns:020d>-<pid>-<rand>.envelope               waiting, oldest name first
    claimed/     <pid>.<token>-<claim_time_ns:020d>-<ready name>    being sent by that process
    quarantine/  <ready name>                                       unreadable, kept for a look

Every state change is one ``rename`` within one file system, which is atomic: a reader sees
either no file or a complete one, and when processes race to claim the same file exactly one
rename succeeds (the others get ``FileNotFoundError`` and move on). A process killed at any
moment leaves at worst a temp file (removed by :meth:`Spool.recover` later) or a claimed file
(given back to ``ready/`` by :meth:`Spool.recover` once its owner is dead or the claim is stale).
Delivery is therefore at least once: a stale claim of a slow but live owner can be sent twice.

``token`` is random per process (new after ``fork``), so a claim left by an earlier process
that had our pid (pid 1 in a restarted container) is recognised as dead at once.

Thread and blocking rules: every method may be called from any thread of any process sharing
the directory; each does a few local file-system calls and never sleeps. ``put`` writes the
whole envelope and, with ``fsync=True``, waits for the disk. No method raises for I/O
problems: they return False / nothing and log a WARNING once per kind of problem on the
``otel_sentry_bridge`` logger (repeats go to DEBUG). An envelope ``put`` refuses is kept in
memory by its caller (:class:`~otel_sentry_bridge.deliver.sender.Delivery`), which the warnings say.

Costs grow with the number of files, so the two operations that list the directory are
spread out: :meth:`claim` lists ``ready/`` once per ``_CLAIM_AHEAD`` envelopes, not once per
call, and the size estimate that :meth:`put` checks (:mod:`.spool_size`) is re-read by a scan
whose spacing grows with its duration. Measured on ext4 with 60,000 files: listing ``ready/``
takes 45 ms, a size scan (one ``stat`` per file) 210 ms.

File helpers are in :mod:`.spool_files`; the recovery of what dead processes left behind in
:mod:`.spool_recovery`.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from ..warn_once import WarnOnce
from .spool_files import (
    SUFFIX,
    envelopes,
    fsync_dir,
    listdir,
    problem,
    process_token,
    unlink_quietly,
)
from .spool_recovery import recover_leftovers
from .spool_size import SizeEstimate

__all__ = ["Spool", "SpoolEntry"]

_log = logging.getLogger("otel_sentry_bridge")

_TMPSUFFIX = ".tmp"
_MIB = 1024 * 1024
# Names that claim() takes from one listing of ready/ (sorted, oldest first): a listing costs
# 45 ms at 60,000 files, too much to repeat for every batch of 20 the sender claims.
_CLAIM_AHEAD = 1000
_MAX_QUARANTINE = 20  # corrupt files kept for inspection; further ones are deleted


@dataclass(frozen=True)
class SpoolEntry:
    """One claimed envelope: ``data`` to send, ``path`` of the claimed file, ``name`` in ready/."""

    data: bytes = field(repr=False)
    path: str
    name: str


class Spool:
    """Envelopes on disk; see the module docstring for the layout and the guarantees.

    ``max_bytes`` bounds what waits in ``ready/`` and ``claimed/`` together; ``max_files``
    only bounds the cost of listing the directory (at 250,000 files: a listing 0.17 s, a
    scan 0.8 s, draining 0.2 ms per envelope), and its default lies far above what the
    default 64 MiB holds of typical envelopes (gzipped when they must wait, as while the
    server fails: ~1.5 KB, some 45,000). Both are checked against an estimate (own writes
    counted, the directory re-read every 64 puts or 10 s, and at most once a second while
    full; less often where a scan would take more than 5% of the time), so several
    processes together can overshoot a little.

    ``fsync=False`` (default) already survives ``kill -9`` of the process, since written
    data is in the kernel's page cache; ``fsync=True`` also survives a power loss or kernel
    crash at the price of a disk flush per envelope (without it such a crash may leave an
    empty or cut file, which :meth:`claim` quarantines).

    Raises ValueError for non-positive limits; never raises for I/O problems.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_files: int = 250_000,
        max_bytes: int = 64 * _MIB,
        fsync: bool = False,
    ) -> None:
        if max_files < 1 or max_bytes < 1:
            raise ValueError("Spool max_files and max_bytes must be positive")
        self.directory = os.fspath(directory)
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._ready = os.path.join(self.directory, "ready")
        self._claimed = os.path.join(self.directory, "claimed")
        self._quarantine = os.path.join(self.directory, "quarantine")
        self._tmp = os.path.join(self.directory, "tmp")
        self._warned = WarnOnce(_log)
        self._size = SizeEstimate((self._ready, self._claimed))  # what the limits count
        self._last_ns = 0
        self._ahead: deque[str] = deque()  # names in ready/ that claim() takes next
        # Whether the last put succeeded (before any: whether the directory could be made).
        # A hint for callers deciding whether spooling is worth any work.
        self.accepts = self._make_dirs()

    def __repr__(self) -> str:
        return f"Spool({self.directory!r})"

    # -- writing -------------------------------------------------------------------------------

    def put(self, envelope: bytes) -> bool:
        """Store one encoded envelope. False when the spool is full or the disk fails."""
        self.accepts = self._put(envelope)
        return self.accepts

    def _put(self, envelope: bytes) -> bool:
        try:
            data = bytes(envelope)
            if not self._size.has_room(
                len(data), max_files=self.max_files, max_bytes=self.max_bytes
            ):
                self._warn(
                    "full",
                    "otel-sentry-bridge: spool %s is full (%d files / %d bytes); "
                    "events wait in memory instead",
                    self.directory,
                    self.max_files,
                    self.max_bytes,
                )
                return False
            try:
                self._write(data)
            except (FileNotFoundError, NotADirectoryError):
                # The directory was removed under us, or something else is in its place: make
                # it again (which warns, once, when it cannot).
                if not self._make_dirs():
                    return False
                self._write(data)
            self._size.added(len(data))
            return True
        except Exception as exc:  # OSError (disk full, permissions), odd input
            self._warn(
                "write",
                "otel-sentry-bridge: cannot write to spool %s: %s; events wait in memory instead",
                self.directory,
                exc,
            )
            return False

    def _write(self, data: bytes) -> None:
        pid = os.getpid()
        rand = secrets.token_hex(6)
        tmp = os.path.join(self._tmp, f"{pid}-{rand}{_TMPSUFFIX}")
        flags = (
            os.O_WRONLY
            | os.O_CREAT
            | os.O_EXCL
            | getattr(os, "O_CLOEXEC", 0)
            | getattr(os, "O_BINARY", 0)
        )
        fd = os.open(tmp, flags, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            # Strictly increasing within a process, so our own envelopes keep their order.
            stamp = max(time.time_ns(), self._last_ns + 1)
            self._last_ns = stamp
            os.replace(tmp, os.path.join(self._ready, f"{stamp:020d}-{pid}-{rand}{SUFFIX}"))
        except BaseException:
            unlink_quietly(tmp)
            raise
        if self.fsync:
            fsync_dir(self._ready)  # make the rename itself durable

    # -- reading -------------------------------------------------------------------------------

    def claim(self, limit: int = 50) -> list[SpoolEntry]:
        """Take up to ``limit`` envelopes, oldest first, for this process alone.

        Each must later be :meth:`ack`-ed (sent or dropped) or :meth:`release`-d (try later).
        Corrupt files are moved to ``quarantine/`` and skipped. "Oldest first" holds for what
        this process writes, releases and recovers; an envelope another process gives back
        may wait until the names already listed (at most ``_CLAIM_AHEAD``) are taken.
        """
        entries: list[SpoolEntry] = []
        owner = f"{os.getpid()}.{process_token()}"
        listed = False
        while len(entries) < limit:
            if not self._ahead:
                # Names left from an earlier listing may all have gone to other processes:
                # list again once, so that an empty result means an empty spool.
                if listed or not self._list_ahead():
                    break
                listed = True
                continue
            try:
                name = self._ahead.popleft()
            except IndexError:  # another thread took the last one
                continue
            try:
                entry = self._claim_one(name, owner)
            except OSError as exc:  # e.g. claimed/ not writable: the next names fail alike
                self._warn(
                    "claim", "otel-sentry-bridge: cannot claim from %s: %s", self.directory, exc
                )
                break
            if entry is not None:
                entries.append(entry)
        return entries

    def _list_ahead(self) -> bool:
        """Fill ``_ahead`` with the oldest names in ready/; False when there are none."""
        try:
            names = sorted(n for n in os.listdir(self._ready) if n.endswith(SUFFIX))
        except (FileNotFoundError, NotADirectoryError):
            self._make_dirs()  # warns, once, when it cannot
            return False
        except OSError as exc:
            self._warn("read", "otel-sentry-bridge: cannot read spool %s: %s", self.directory, exc)
            return False
        self._ahead = deque(names[:_CLAIM_AHEAD])
        return bool(names)

    def _claim_one(self, name: str, owner: str) -> SpoolEntry | None:
        claimed_name = f"{owner}-{time.time_ns():020d}-{name}"
        path = os.path.join(self._claimed, claimed_name)
        try:
            os.rename(os.path.join(self._ready, name), path)
        except FileNotFoundError:
            return None  # another process claimed it first
        try:
            with open(path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return None  # recovered by another process as stale; it is theirs now
        except OSError as exc:
            self._to_quarantine(path, name, f"unreadable: {exc}")
            return None
        reason = problem(data)
        if reason is not None:
            self._to_quarantine(path, name, reason)
            return None
        return SpoolEntry(data=data, path=path, name=name)

    def _to_quarantine(self, path: str, name: str, reason: str) -> None:
        self._size.invalidate()  # our estimate no longer matches: rescan at the next put
        kept = sum(1 for _ in envelopes(self._quarantine))
        where = "deleted (quarantine full)"
        try:
            if kept >= _MAX_QUARANTINE:
                os.unlink(path)
            else:
                os.replace(path, os.path.join(self._quarantine, name))
                where = f"moved to {self._quarantine}"
        except FileNotFoundError:
            return
        except OSError as exc:
            where = f"cannot be moved: {exc}"
        self._warn(
            "corrupt",
            "otel-sentry-bridge: spooled envelope %s is corrupt (%s); %s",
            name,
            reason,
            where,
        )

    def ack(self, entry: SpoolEntry) -> None:
        """Delete a claimed envelope: it was sent, or will never be."""
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            return  # recovered as stale and handled elsewhere
        except OSError as exc:
            self._warn("ack", "otel-sentry-bridge: cannot delete %s: %s", entry.path, exc)
            return
        self._size.removed(len(entry.data))

    def release(self, entry: SpoolEntry) -> None:
        """Give a claimed envelope back to ``ready/`` under its old name (keeps its place)."""
        self._ahead.clear()  # older than the names listed ahead: the next claim lists again
        try:
            os.replace(entry.path, os.path.join(self._ready, entry.name))
        except FileNotFoundError:
            pass  # recovered as stale: already back in ready/ or taken by another process
        except OSError as exc:
            self._warn("release", "otel-sentry-bridge: cannot release %s: %s", entry.path, exc)

    # -- housekeeping --------------------------------------------------------------------------

    def recover(self, stale_after: float = 300.0) -> int:
        """Give back claims whose owner is gone (dead, or an earlier process with our pid, or
        the claim is older than ``stale_after`` seconds); remove abandoned temp files. Our own
        claims are left alone. Returns how many envelopes went back to ``ready/``. The rules
        are :func:`.spool_recovery.recover_leftovers`'s."""
        recovered = recover_leftovers(
            self._ready,
            self._claimed,
            self._tmp,
            stale_after,
            quarantine=self._to_quarantine,
            warn=self._warn,
        )
        if recovered:
            self._ahead.clear()  # they keep their old places in line: list again
        return recovered

    def pending(self) -> int:
        """How many envelopes wait in ``ready/`` (not counting claimed ones)."""
        return sum(1 for name in listdir(self._ready) if name.endswith(SUFFIX))

    def size_bytes(self) -> int:
        """Bytes of the envelopes in ``ready/`` and ``claimed/``, the ones the limit counts."""
        return sum(size for folder in (self._ready, self._claimed) for _, size in envelopes(folder))

    # -- helpers -------------------------------------------------------------------------------

    def _make_dirs(self) -> bool:
        try:
            for folder in (self._ready, self._claimed, self._quarantine, self._tmp):
                os.makedirs(folder, mode=0o700, exist_ok=True)
            return True
        except OSError as exc:
            self._warn(
                "mkdir",
                "otel-sentry-bridge: cannot create spool %s: %s; events wait in memory instead",
                self.directory,
                exc,
            )
            return False

    def _warn(self, kind: str, message: str, *args: object) -> None:
        """Once per kind of problem at WARNING; every later one at DEBUG."""
        if not self._warned(kind, message, *args):
            _log.debug(message, *args)

"""What dead processes left in the spool: claims whose owner is gone go back to ``ready/``,
abandoned temp files are removed. The layout is described in :mod:`.spool`;
:meth:`.spool.Spool.recover` is the way in.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from .spool_files import (
    age,
    alive,
    int_or_none,
    listdir,
    parse_claimed,
    process_token,
    unlink_quietly,
)

__all__ = ["recover_leftovers"]

# (path, name, reason): moves an unknown file out of claimed/, and warns.
Quarantine = Callable[[str, str, str], None]
# (kind, message, *args): a WARNING once per kind of problem, later ones at DEBUG.
Warn = Callable[..., None]


def recover_leftovers(
    ready: str,
    claimed: str,
    tmp: str,
    stale_after: float,
    *,
    quarantine: Quarantine,
    warn: Warn,
) -> int:
    """Give the claims in ``claimed`` whose owner is gone back to ``ready``, and remove the
    abandoned temp files in ``tmp``. Returns how many envelopes went back to ``ready``.

    A claim goes back when its owner pid is dead, when it was made by an earlier process
    with our pid, or when it is older than ``stale_after`` seconds (the pid may have been
    reused, or the owner lives in another pid namespace). Our own claims are left alone; a
    file in ``claimed`` that is not a claim goes to ``quarantine`` once ``stale_after`` old.
    Temp files go when their writer is dead or they are older than ``stale_after``.
    Ages use the wall clock, since the times come from other processes.
    """
    recovered = 0
    now_ns = time.time_ns()
    me = os.getpid()
    token_of_mine = process_token()
    for name in listdir(claimed):
        path = os.path.join(claimed, name)
        parsed = parse_claimed(name)
        if parsed is None:
            if age(path, now_ns) >= stale_after:
                quarantine(path, name, "unknown file in claimed/")
            continue
        pid, token, claimed_ns, original = parsed
        if pid == me and token == token_of_mine:
            continue
        if pid == me or not alive(pid) or (now_ns - claimed_ns) / 1e9 >= stale_after:
            try:
                os.replace(path, os.path.join(ready, original))
                recovered += 1
            except FileNotFoundError:
                pass  # acked, or recovered by another process meanwhile
            except OSError as exc:
                warn("recover", "otel-sentry-bridge: cannot recover %s: %s", path, exc)
    for name in listdir(tmp):
        path = os.path.join(tmp, name)
        writer = int_or_none(name.split("-", 1)[0])
        dead = writer is not None and writer != me and not alive(writer)
        if dead or age(path, now_ns) >= stale_after:
            unlink_quietly(path)
    return recovered

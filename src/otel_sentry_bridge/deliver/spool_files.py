"""File-system helpers of the spool: names, ages, owners and checks of envelope files.

Pure functions over paths and bytes, no state; :mod:`.spool` holds the policy.
"""

from __future__ import annotations

import gzip
import os

from .compress import GZIP_MAGIC
from .envelope import decode_envelope

__all__ = [
    "SUFFIX",
    "age",
    "alive",
    "envelopes",
    "fsync_dir",
    "int_or_none",
    "listdir",
    "parse_claimed",
    "problem",
    "process_token",
    "unlink_quietly",
]

SUFFIX = ".envelope"


def process_token() -> str:
    """Tells this process from an earlier one that had its pid: its start time in clock
    ticks since boot (``/proc/self/stat`` field 22), as hex; "0" where that is unknown (an
    earlier process's claims are then recovered only once stale)."""
    try:
        with open("/proc/self/stat", "rb") as handle:
            fields = handle.read().decode("latin-1").rpartition(")")[2].split()
        return format(int(fields[19]), "x")
    except (OSError, ValueError, IndexError):
        return "0"


def problem(data: bytes) -> str | None:
    """Why ``data`` is not a sendable envelope, or None."""
    if not data:
        return "empty file"
    try:
        if data[:2] == GZIP_MAGIC:  # stored as the worker compressed it
            data = gzip.decompress(data)
        _, items = decode_envelope(data)
    except Exception as exc:  # MalformedEnvelope; RecursionError from absurdly nested JSON
        return str(exc)[:200] or type(exc).__name__
    return None if items else "no items"


def parse_claimed(name: str) -> tuple[int, str, int, str] | None:
    parts = name.split("-", 2)
    if len(parts) != 3 or not parts[2].endswith(SUFFIX):
        return None
    owner, stamp, original = parts
    pid_text, _, token = owner.partition(".")
    pid, claimed_ns = int_or_none(pid_text), int_or_none(stamp)
    if pid is None or claimed_ns is None or not token:
        return None
    return pid, token, claimed_ns, original


def int_or_none(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def alive(pid: int) -> bool:
    """Whether a process with this pid exists; True when we cannot tell (age decides then)."""
    if pid <= 0:
        return False  # never os.kill(0, ...): that would signal our whole process group
    if os.name == "nt":
        return True  # os.kill(pid, 0) on Windows sends CTRL_C_EVENT instead of probing
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists but belongs to another user
        return True
    return True


def listdir(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def envelopes(folder: str) -> list[tuple[str, int]]:
    """(name, size) of the envelope files in ``folder``; files vanishing meanwhile are skipped."""
    found: list[tuple[str, int]] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(SUFFIX):
                    try:
                        found.append((entry.name, entry.stat(follow_symlinks=False).st_size))
                    except OSError:
                        pass
    except OSError:
        pass
    return found


def age(path: str, now_ns: int) -> float:
    try:
        return (now_ns - os.stat(path, follow_symlinks=False).st_mtime_ns) / 1e9
    except OSError:
        return 0.0


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not possible everywhere (Windows); the file itself is on disk
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

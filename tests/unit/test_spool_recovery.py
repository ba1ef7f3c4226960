"""Recovery of what dead processes left in the spool, on crafted claim and temp file names.

(Real killed and live processes are in tests/integration/test_spool.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from otel_sentry_bridge.deliver.spool_files import process_token
from otel_sentry_bridge.deliver.spool_recovery import recover_leftovers

READY_NAME = "00000000000000000001-1-abc.envelope"


class Calls:
    def __init__(self) -> None:
        self.quarantined: list[tuple[str, str, str]] = []
        self.warned: list[str] = []

    def quarantine(self, path: str, name: str, reason: str) -> None:
        self.quarantined.append((path, name, reason))
        os.unlink(path)

    def warn(self, kind: str, message: str, *args: object) -> None:
        self.warned.append(kind)


@pytest.fixture
def spool(tmp_path: Path) -> dict[str, Path]:
    dirs = {name: tmp_path / name for name in ("ready", "claimed", "tmp")}
    for folder in dirs.values():
        folder.mkdir()
    return dirs


@pytest.fixture(scope="module")
def dead_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait(timeout=60)  # reaped: its pid is gone
    return finished.pid


def claim(folder: Path, pid: int, token: str, age_seconds: float = 0.0) -> Path:
    claimed_ns = time.time_ns() - int(age_seconds * 1e9)
    path = folder / f"{pid}.{token}-{claimed_ns:020d}-{READY_NAME}"
    path.write_bytes(b"envelope")
    return path


def make_old(path: Path) -> None:
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))


def recover(spool: dict[str, Path], calls: Calls, stale_after: float = 300.0) -> int:
    return recover_leftovers(
        str(spool["ready"]),
        str(spool["claimed"]),
        str(spool["tmp"]),
        stale_after,
        quarantine=calls.quarantine,
        warn=calls.warn,
    )


def test_a_dead_owners_claim_goes_back_under_its_ready_name(
    spool: dict[str, Path], dead_pid: int
) -> None:
    claim(spool["claimed"], dead_pid, "1f")
    assert recover(spool, Calls()) == 1
    assert os.listdir(spool["ready"]) == [READY_NAME]
    assert os.listdir(spool["claimed"]) == []


def test_own_claims_stay_however_old(spool: dict[str, Path]) -> None:
    path = claim(spool["claimed"], os.getpid(), process_token(), age_seconds=3600)
    assert recover(spool, Calls(), stale_after=0.0) == 0
    assert path.exists()


def test_a_claim_of_an_earlier_process_with_our_pid_goes_back(spool: dict[str, Path]) -> None:
    claim(spool["claimed"], os.getpid(), process_token() + "0")  # another start time
    assert recover(spool, Calls()) == 1
    assert os.listdir(spool["ready"]) == [READY_NAME]


def test_a_live_owners_claim_goes_back_only_once_stale(spool: dict[str, Path]) -> None:
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        fresh = claim(spool["claimed"], owner.pid, "1f", age_seconds=10)
        assert recover(spool, Calls(), stale_after=60) == 0
        assert fresh.exists()
        assert recover(spool, Calls(), stale_after=10) == 1
        assert os.listdir(spool["ready"]) == [READY_NAME]
    finally:
        owner.kill()
        owner.wait(timeout=60)


def test_an_unknown_file_in_claimed_is_quarantined_once_old(spool: dict[str, Path]) -> None:
    unknown = spool["claimed"] / "not-a-claim"
    unknown.write_bytes(b"?")
    calls = Calls()
    assert recover(spool, calls) == 0
    assert calls.quarantined == [] and unknown.exists()
    make_old(unknown)
    assert recover(spool, calls) == 0
    assert calls.quarantined == [(str(unknown), "not-a-claim", "unknown file in claimed/")]


def test_a_claim_that_cannot_go_back_warns_and_is_not_counted(
    spool: dict[str, Path], dead_pid: int
) -> None:
    spool["ready"].rmdir()
    spool["ready"].write_bytes(b"")  # ready/ is a file: the rename fails
    path = claim(spool["claimed"], dead_pid, "1f")
    calls = Calls()
    assert recover(spool, calls) == 0
    assert calls.warned == ["recover"]
    assert path.exists()


def test_temp_files_go_when_their_writer_is_dead_or_they_are_old(
    spool: dict[str, Path], dead_pid: int
) -> None:
    tmp = spool["tmp"]
    names = {
        "mine": f"{os.getpid()}-fresh.tmp",
        "mine_old": f"{os.getpid()}-old.tmp",
        "orphan": f"{dead_pid}-orphan.tmp",
        "odd": "no-pid-here.tmp",
        "odd_old": "no-pid-old.tmp",
    }
    for name in names.values():
        (tmp / name).write_bytes(b"partial")
    make_old(tmp / names["mine_old"])
    make_old(tmp / names["odd_old"])
    assert recover(spool, Calls()) == 0  # temp files are not counted
    assert sorted(os.listdir(tmp)) == sorted([names["mine"], names["odd"]])

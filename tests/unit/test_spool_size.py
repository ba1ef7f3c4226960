"""The spool's size estimate: own writes counted, the disk re-read at spaced intervals."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_sentry_bridge.deliver.spool_size import (
    FULL_RESCAN_SECONDS,
    RESCAN_PUTS,
    RESCAN_SECONDS,
    SCAN_SHARE,
    SizeEstimate,
)

BIG = 10**9


class Clock:
    """Monotonic seconds; each reading advances by ``step`` (how long a scan seems to take)."""

    def __init__(self, step: float = 0.0) -> None:
        self.t = 1000.0
        self.step = step

    def __call__(self) -> float:
        now = self.t
        self.t += self.step
        return now


def write(folder: Path, name: str, size: int) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.envelope").write_bytes(b"x" * size)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    ready, claimed = tmp_path / "ready", tmp_path / "claimed"
    ready.mkdir()
    claimed.mkdir()
    return ready, claimed


def estimate(folders: tuple[Path, Path], clock: Clock) -> SizeEstimate:
    return SizeEstimate([str(f) for f in folders], clock)


def test_the_first_put_reads_both_folders(folders: tuple[Path, Path]) -> None:
    ready, claimed = folders
    write(ready, "a", 10)
    write(claimed, "b", 5)
    (ready / "not-an-envelope.tmp").write_bytes(b"x" * 100)
    size = estimate(folders, Clock())
    assert size.has_room(1, max_files=BIG, max_bytes=BIG)
    assert (size.count, size.bytes) == (2, 15)


def test_limits_count_the_envelope_being_added(folders: tuple[Path, Path]) -> None:
    write(folders[0], "a", 10)
    size = estimate(folders, Clock())
    assert size.has_room(5, max_files=2, max_bytes=15)
    assert not size.has_room(6, max_files=2, max_bytes=15)  # bytes
    assert not size.has_room(5, max_files=1, max_bytes=BIG)  # files


def test_own_writes_and_deletions_count_between_scans(folders: tuple[Path, Path]) -> None:
    clock = Clock()
    size = estimate(folders, clock)
    size.has_room(10, max_files=BIG, max_bytes=BIG)  # scans: empty
    write(folders[0], "by-another-process", 50)  # not seen until the next scan
    size.added(10)
    size.added(20)
    size.removed(10)
    clock.t += RESCAN_SECONDS / 2
    assert size.has_room(1, max_files=BIG, max_bytes=BIG)
    assert (size.count, size.bytes) == (1, 20)


def test_deletions_never_go_below_zero(folders: tuple[Path, Path]) -> None:
    size = estimate(folders, Clock())
    size.removed(100)
    assert (size.count, size.bytes) == (0, 0)


def test_the_disk_is_read_again_after_so_many_puts(folders: tuple[Path, Path]) -> None:
    size = estimate(folders, Clock())
    size.has_room(1, max_files=BIG, max_bytes=BIG)
    write(folders[0], "a", 7)
    for _ in range(RESCAN_PUTS - 1):
        size.has_room(1, max_files=BIG, max_bytes=BIG)
    assert size.count == 0
    size.has_room(1, max_files=BIG, max_bytes=BIG)
    assert (size.count, size.bytes) == (1, 7)


def test_the_disk_is_read_again_after_so_long(folders: tuple[Path, Path]) -> None:
    clock = Clock()
    size = estimate(folders, clock)
    size.has_room(1, max_files=BIG, max_bytes=BIG)
    write(folders[1], "a", 7)
    clock.t += RESCAN_SECONDS - 0.1
    size.has_room(1, max_files=BIG, max_bytes=BIG)
    assert size.count == 0
    clock.t += 0.1
    size.has_room(1, max_files=BIG, max_bytes=BIG)
    assert size.count == 1


def test_while_full_it_looks_again_at_most_so_often(folders: tuple[Path, Path]) -> None:
    ready = folders[0]
    write(ready, "a", 1)
    write(ready, "b", 1)
    clock = Clock()
    size = estimate(folders, clock)
    assert not size.has_room(1, max_files=2, max_bytes=BIG)  # the first scan: full
    assert not size.has_room(1, max_files=2, max_bytes=BIG)  # looked again: still full
    (ready / "a.envelope").unlink()  # another process drained one
    clock.t += FULL_RESCAN_SECONDS - 0.1
    assert not size.has_room(1, max_files=2, max_bytes=BIG)  # too soon to look again
    clock.t += 0.1
    assert size.has_room(1, max_files=2, max_bytes=BIG)
    assert size.count == 1


def test_invalidate_reads_the_disk_at_the_next_put(folders: tuple[Path, Path]) -> None:
    clock = Clock()
    size = estimate(folders, clock)
    size.has_room(1, max_files=BIG, max_bytes=BIG)
    write(folders[0], "a", 3)
    size.invalidate()
    size.has_room(1, max_files=BIG, max_bytes=BIG)
    assert (size.count, size.bytes) == (1, 3)


def test_scans_take_at_most_their_share_of_the_time(folders: tuple[Path, Path]) -> None:
    clock = Clock(step=1.0)  # every scan seems to take a second
    size = estimate(folders, clock)
    size.has_room(1, max_files=BIG, max_bytes=BIG)  # scans from 1000 to 1001
    gap = 1.0 / SCAN_SHARE  # so the next scan waits until 1001 + gap
    write(folders[0], "a", 3)
    size.invalidate()  # would scan at once, were scans cheap
    clock.t = 1001 + gap - 0.5
    size.has_room(1, max_files=BIG, max_bytes=BIG)
    assert size.count == 0
    clock.t = 1001 + gap
    size.has_room(1, max_files=BIG, max_bytes=BIG)
    assert size.count == 1


def test_a_full_spool_is_not_scanned_more_often_than_scans_allow(
    folders: tuple[Path, Path],
) -> None:
    write(folders[0], "a", 1)
    clock = Clock(step=1.0)
    size = estimate(folders, clock)
    assert not size.has_room(1, max_files=1, max_bytes=BIG)  # scans from 1000 to 1001
    (folders[0] / "a.envelope").unlink()
    clock.t = 1001 + 1.0 / SCAN_SHARE - 0.5  # long past the full-spool interval, but ...
    assert not size.has_room(1, max_files=1, max_bytes=BIG)  # ... scans are spaced
    clock.t = 1001 + 1.0 / SCAN_SHARE
    assert size.has_room(1, max_files=1, max_bytes=BIG)

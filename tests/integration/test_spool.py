"""The disk spool on real directories, with real concurrent and killed processes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from otel_sentry_bridge.deliver import spool as spool_module
from otel_sentry_bridge.deliver.envelope import decode_envelope, encode_envelope, json_dumps
from otel_sentry_bridge.deliver.spool import Spool

LOGGER = "otel_sentry_bridge"
# Children import the package from the same place as this test does.
SRC = str(Path(spool_module.__file__).resolve().parents[2])
CHILD_ENV = {**os.environ, "PYTHONPATH": SRC}


def envelope(n: int) -> bytes:
    event_id = f"{n:032x}"
    item = {"type": "event", "content_type": "application/json"}
    return encode_envelope({"event_id": event_id}, [(item, json_dumps({"event_id": event_id}))])


def event_id(data: bytes) -> int:
    headers, _ = decode_envelope(data)
    return int(headers["event_id"], 16)


def files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def child(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=CHILD_ENV,
    )


# -- one process ---------------------------------------------------------------------------------


def test_put_claim_ack_round_trip_keeps_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    assert all(spool.put(envelope(n)) for n in range(5))
    assert spool.pending() == 5
    assert spool.size_bytes() == sum(len(envelope(n)) for n in range(5))

    first = spool.claim(3)
    assert [event_id(e.data) for e in first] == [0, 1, 2]
    assert spool.pending() == 2
    rest = spool.claim()
    assert [event_id(e.data) for e in rest] == [3, 4]
    assert spool.claim() == []

    for entry in first + rest:
        spool.ack(entry)
    assert spool.pending() == 0
    assert spool.size_bytes() == 0
    assert files(tmp_path / "ready") == files(tmp_path / "claimed") == files(tmp_path / "tmp") == []


def test_released_entry_keeps_its_place_in_line(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for n in range(3):
        spool.put(envelope(n))
    entry = spool.claim(1)[0]
    spool.release(entry)
    assert spool.pending() == 3
    assert [event_id(e.data) for e in spool.claim()] == [0, 1, 2]


def test_ack_and_release_of_a_vanished_claim_are_silent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    spool.put(envelope(1))
    entry = spool.claim()[0]
    os.unlink(entry.path)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        spool.ack(entry)
        spool.release(entry)
    assert caplog.records == []
    assert spool.pending() == 0


def test_files_are_private(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.put(envelope(1))
    (name,) = files(tmp_path / "spool" / "ready")
    assert (tmp_path / "spool" / "ready" / name).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "spool" / "ready").stat().st_mode & 0o777 == 0o700


def test_fsync_mode_writes_the_same_envelopes(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync=True)
    assert spool.put(envelope(7))
    assert [e.data for e in spool.claim()] == [envelope(7)]


# -- limits --------------------------------------------------------------------------------------


def test_file_limit_refuses_and_frees_up_after_ack(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path, max_files=3)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert [spool.put(envelope(n)) for n in range(5)] == [True, True, True, False, False]
    assert spool.pending() == 3
    assert len([r for r in caplog.records if "full" in r.getMessage()]) == 1  # warned once

    # Claimed but not yet acked still occupies the disk.
    entry = spool.claim(1)[0]
    assert not spool.put(envelope(9))
    spool.ack(entry)
    assert spool.put(envelope(9))


def test_byte_limit_refuses_what_does_not_fit(tmp_path: Path) -> None:
    size = len(envelope(0))
    spool = Spool(tmp_path, max_bytes=2 * size + 1)
    assert [spool.put(envelope(n)) for n in range(3)] == [True, True, False]
    assert not Spool(tmp_path / "small", max_bytes=size - 1).put(envelope(0))


def test_limits_count_what_other_processes_wrote(tmp_path: Path) -> None:
    other = Spool(tmp_path)
    for n in range(3):
        other.put(envelope(n))
    assert not Spool(tmp_path, max_files=3).put(envelope(3))


def test_default_limits_take_far_more_than_a_thousand_envelopes(tmp_path: Path) -> None:
    # The byte cap is the limit that counts: a thousand files (1 MB) was a hidden one.
    size = len(envelope(0))
    assert all(Spool(tmp_path / "default").put(envelope(n)) for n in range(1500))
    spool = Spool(tmp_path / "bytes", max_bytes=1500 * size)
    assert all(spool.put(envelope(n)) for n in range(1500))
    assert not spool.put(envelope(1500))
    assert spool.pending() == 1500


def test_claim_lists_the_directory_once_per_many_envelopes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A listing of 60,000 files takes 40 ms: not to be repeated for every batch of 20.
    spool = Spool(tmp_path, max_files=10**6)
    for n in range(2500):
        spool.put(envelope(n))
    listings = []
    listdir = os.listdir

    def counting(path: str) -> list[str]:
        listings.append(path)
        return listdir(path)

    monkeypatch.setattr(os, "listdir", counting)
    claimed = []
    while entries := spool.claim(20):
        claimed += [event_id(e.data) for e in entries]
        for entry in entries:
            spool.ack(entry)
    assert claimed == list(range(2500))
    assert listings.count(str(tmp_path / "ready")) <= 4  # 2,500 / 1,000, and the empty end


def test_claim_finds_what_others_wrote_after_its_listing(tmp_path: Path) -> None:
    mine, other = Spool(tmp_path), Spool(tmp_path)
    for n in range(5):
        mine.put(envelope(n))
    assert [event_id(e.data) for e in mine.claim(1)] == [0]  # lists 1-4 for later
    assert [event_id(e.data) for e in other.claim()] == [1, 2, 3, 4]
    other.put(envelope(5))
    assert [event_id(e.data) for e in mine.claim()] == [5]  # not [] while one waits


def test_accepts_tells_whether_the_last_put_succeeded(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    assert not Spool(blocker).accepts  # its directory cannot be made
    spool = Spool(tmp_path / "spool", max_bytes=len(envelope(0)))
    assert spool.accepts
    assert spool.put(envelope(0)) and spool.accepts
    assert not spool.put(envelope(1)) and not spool.accepts  # full
    spool.ack(spool.claim()[0])
    assert spool.put(envelope(2)) and spool.accepts


def test_invalid_limits_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Spool(tmp_path, max_files=0)
    with pytest.raises(ValueError):
        Spool(tmp_path, max_bytes=-1)


# -- corrupt files -------------------------------------------------------------------------------


def test_corrupt_files_are_quarantined_and_the_rest_still_claimed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    spool.put(envelope(1))
    spool.put(envelope(2))
    ready = tmp_path / "ready"
    bad = {  # names that sort before the good ones, so they are claimed first
        "00000000000000000001-1-empty.envelope": b"",
        "00000000000000000002-1-text.envelope": b"not an envelope at all",
        "00000000000000000003-1-cut.envelope": envelope(3)[:-10],
        "00000000000000000004-1-headeronly.envelope": b'{"event_id":"x"}\n',
    }
    for name, data in bad.items():
        (ready / name).write_bytes(data)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        claimed = spool.claim()
    assert [event_id(e.data) for e in claimed] == [1, 2]
    assert files(tmp_path / "quarantine") == sorted(bad)
    assert files(ready) == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "corrupt" in warnings[0].getMessage()


# -- failing disks -------------------------------------------------------------------------------


def test_put_never_raises_when_the_directory_cannot_exist(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        spool = Spool(blocker / "spool")
        assert spool.put(envelope(1)) is False
        assert spool.put(envelope(2)) is False
        assert spool.claim() == []
        assert spool.recover() == 0
    assert spool.pending() == 0
    assert spool.size_bytes() == 0
    assert 1 <= len(caplog.records) <= 3  # once per kind of problem, not once per call


def test_a_file_in_place_of_the_directory_gives_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "a-file"
    path.write_bytes(b"")
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        spool = Spool(path)
        assert not spool.put(envelope(1))
        assert spool.claim() == []
        assert not spool.put(envelope(2))
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert str(path) in warning and "Not a directory" in warning and "memory" in warning


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_put_never_raises_on_a_read_only_directory(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    (tmp_path / "spool" / "tmp").chmod(0o500)
    try:
        assert spool.put(envelope(1)) is False
    finally:
        (tmp_path / "spool" / "tmp").chmod(0o700)


def test_put_recreates_a_removed_directory(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    for folder in ("ready", "claimed", "quarantine", "tmp"):
        (tmp_path / "spool" / folder).rmdir()
    (tmp_path / "spool").rmdir()
    assert spool.put(envelope(1))
    assert [event_id(e.data) for e in spool.claim()] == [1]


# -- several processes ---------------------------------------------------------------------------

CLAIMER = """
    import sys
    from otel_sentry_bridge.deliver.envelope import decode_envelope
    from otel_sentry_bridge.deliver.spool import Spool

    spool = Spool(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()  # start together, once both have imported
    while entries := spool.claim(int(sys.argv[2])):
        for entry in entries:
            print(decode_envelope(entry.data)[0]["event_id"])
            spool.ack(entry)
"""


def test_two_processes_claim_every_envelope_exactly_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for n in range(500):
        assert spool.put(envelope(n))
    claimers = [child(CLAIMER, str(tmp_path), "1") for _ in range(2)]
    for proc in claimers:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in claimers:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = [proc.communicate(timeout=60)[0].split() for proc in claimers]
    assert [proc.returncode for proc in claimers] == [0, 0]

    counts = Counter(int(eid, 16) for output in outputs for eid in output)
    assert sorted(counts) == list(range(500))
    assert set(counts.values()) == {1}, "an envelope was claimed twice"
    assert all(outputs), "both processes should have won some claims"
    assert spool.pending() == 0
    assert files(tmp_path / "claimed") == files(tmp_path / "quarantine") == []


CLAIM_AND_EXIT = """
    import sys
    from otel_sentry_bridge.deliver.spool import Spool

    print(Spool(sys.argv[1]).claim(1)[0].path)
"""

CLAIM_AND_WAIT = """
    import sys
    from otel_sentry_bridge.deliver.spool import Spool

    spool = Spool(sys.argv[1])
    entry = spool.claim(1)[0]
    print("claimed", flush=True)
    sys.stdin.readline()
    spool.ack(entry)  # already taken back as stale: must not fail
    print("acked")
"""


def test_claim_of_a_dead_process_is_recovered_in_its_place(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for n in range(3):
        spool.put(envelope(n))
    proc = child(CLAIM_AND_EXIT, str(tmp_path))
    out, _ = proc.communicate(timeout=60)  # waits for (reaps) the process: its pid is gone
    assert proc.returncode == 0
    assert Path(out.strip()).exists()
    assert spool.pending() == 2

    assert spool.recover() == 1
    assert files(tmp_path / "claimed") == []
    assert [event_id(e.data) for e in spool.claim()] == [0, 1, 2]


def test_claim_of_a_live_process_is_recovered_only_when_stale(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(envelope(5))
    proc = child(CLAIM_AND_WAIT, str(tmp_path))
    assert proc.stdout is not None and proc.stdin is not None
    try:
        assert proc.stdout.readline().strip() == "claimed"
        assert spool.recover() == 0
        assert spool.pending() == 0
        assert spool.recover(stale_after=0.0) == 1
        assert [event_id(e.data) for e in spool.claim()] == [5]
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "acked"
    finally:
        proc.kill()
        proc.wait(timeout=60)


def test_own_claims_are_never_recovered(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(envelope(1))
    entry = spool.claim()[0]
    assert Spool(tmp_path).recover(stale_after=0.0) == 0
    assert Path(entry.path).exists()


def test_recover_removes_abandoned_temp_files(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait(timeout=60)
    tmp = tmp_path / "tmp"
    old = tmp / f"{os.getpid()}-old.tmp"
    fresh = tmp / f"{os.getpid()}-fresh.tmp"
    orphan = tmp / f"{finished.pid}-orphan.tmp"  # fresh, but its writer is dead
    for path in (old, fresh, orphan):
        path.write_bytes(b"partial")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))

    spool.recover()
    assert files(tmp) == [fresh.name]


def test_kill_9_while_writing_leaves_only_whole_envelopes(tmp_path: Path) -> None:
    writer = child(
        """
        import sys
        from otel_sentry_bridge.deliver.envelope import encode_envelope, json_dumps
        from otel_sentry_bridge.deliver.spool import Spool

        spool = Spool(sys.argv[1], max_files=10**6)
        item = {"type": "event", "content_type": "application/json"}
        payload = json_dumps({"padding": "x" * 200_000})  # big enough to be caught mid-write
        n = 0
        while True:
            spool.put(encode_envelope({"event_id": f"{n:032x}"}, [(item, payload)]))
            n += 1
            if n == 20:
                print("writing", flush=True)
        """,
        str(tmp_path),
    )
    assert writer.stdout is not None
    try:
        assert writer.stdout.readline().strip() == "writing"
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait(timeout=60)

    spool = Spool(tmp_path, max_files=10**6)
    spool.recover()  # the writer is dead: its temp file goes
    assert files(tmp_path / "tmp") == []
    claimed = spool.claim(10**6)
    assert len(claimed) >= 20
    assert files(tmp_path / "quarantine") == []
    assert sorted(event_id(e.data) for e in claimed) == list(range(len(claimed)))

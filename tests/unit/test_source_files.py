"""Context lines are read with the encoding Python reads the source file with, and only from
files not modified since the process started."""

from __future__ import annotations

import codecs
import os
import sys
import time
from pathlib import Path

import pytest

from otel_sentry_bridge.convert.frames import SOURCE_CHANGED
from otel_sentry_bridge.deliver import source_files as source
from otel_sentry_bridge.deliver.source_files import PROCESS_STARTED_AT, SourceCache

_LONG_AGO = 1_000_000_000.0  # 2001: before any process start


def _write(tmp_path: Path, name: str, data: bytes, mtime: float = _LONG_AGO) -> str:
    """A file as deployed before the process started, unless ``mtime`` says otherwise."""
    path = tmp_path / name
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return str(path)


def test_a_pep_263_declaration_is_honoured(tmp_path: Path) -> None:
    text = "# -*- coding: latin-1 -*-\nMENU = 'café à la crème'\n"
    path = _write(tmp_path, "menu.py", text.encode("latin-1"))
    assert SourceCache()(path) == ("# -*- coding: latin-1 -*-", "MENU = 'café à la crème'")


def test_the_declaration_may_be_on_the_second_line(tmp_path: Path) -> None:
    text = "#!/usr/bin/env python\n# vim: set fileencoding=cp1252 :\nPRICE = '12 €'\n"
    path = _write(tmp_path, "price.py", text.encode("cp1252"))
    lines = SourceCache()(path)
    assert lines is not None and lines[2] == "PRICE = '12 €'"


def test_a_utf8_bom_is_not_part_of_the_first_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "bom.py", codecs.BOM_UTF8 + "X = 'ü'\n".encode())
    assert SourceCache()(path) == ("X = 'ü'",)


def test_undeclared_files_are_utf8_and_bad_bytes_do_not_fail(tmp_path: Path) -> None:
    path = _write(tmp_path, "plain.py", "A = 'ü'\n".encode() + b"B = '\xff'\n")
    assert SourceCache()(path) == ("A = 'ü'", "B = '\ufffd'")


def test_an_unknown_declared_encoding_falls_back_to_utf8(tmp_path: Path) -> None:
    data = "# -*- coding: no-such-codec -*-\nA = 'ü'\n".encode()
    path = _write(tmp_path, "odd.py", data)
    assert SourceCache()(path) == ("# -*- coding: no-such-codec -*-", "A = 'ü'")


def _failing_codec(name: str) -> codecs.CodecInfo | None:
    def decode(data: bytes, errors: str = "strict") -> tuple[str, int]:
        raise RuntimeError("a codec with a bug")

    if name != "bridge_test_failing":
        return None
    return codecs.CodecInfo(codecs.utf_8_encode, decode, name=name)


def test_a_declared_codec_that_does_not_decode_text_gives_no_lines(tmp_path: Path) -> None:
    # "# Content-Encoding: base64" matches PEP 263's pattern: the file declares "base64",
    # a codec that is not a text encoding (its decode raises LookupError).
    template = _write(tmp_path, "mail.txt", b"# Content-Encoding: base64\n{{ body }}\n")
    assert SourceCache()(template) is None
    codecs.register(_failing_codec)
    try:
        odd = _write(tmp_path, "odd.py", b"# coding: bridge_test_failing\nA = 1\n")
        assert SourceCache()(odd) is None
    finally:
        codecs.unregister(_failing_codec)


def test_binary_and_missing_files_give_none(tmp_path: Path) -> None:
    assert SourceCache()(_write(tmp_path, "blob.py", b"\x00\x01")) is None
    assert SourceCache()(str(tmp_path / "missing.py")) is None


def test_huge_files_and_directories_give_none(tmp_path: Path) -> None:
    huge = _write(tmp_path, "huge.py", b"x = 1\n" * (source._MAX_FILE_BYTES // 6 + 1))
    assert SourceCache()(huge) is None
    os.utime(tmp_path, (_LONG_AGO, _LONG_AGO))
    assert SourceCache()(str(tmp_path)) is None


def test_a_file_modified_after_the_process_started_is_changed(tmp_path: Path) -> None:
    path = _write(tmp_path, "views.py", b"a = 1\n", mtime=PROCESS_STARTED_AT + 1)
    assert SourceCache()(path) is SOURCE_CHANGED


def test_the_threshold_can_be_injected_and_is_inclusive(tmp_path: Path) -> None:
    path = _write(tmp_path, "views.py", b"a = 1\n", mtime=1_600_000_000.0)
    assert SourceCache(loaded_before=1_600_000_000.0)(path) == ("a = 1",)
    assert SourceCache(loaded_before=1_599_999_999.5)(path) is SOURCE_CHANGED


def test_a_changed_file_that_is_also_binary_or_huge_is_changed(tmp_path: Path) -> None:
    blob = _write(tmp_path, "blob.py", b"\x00\x01", mtime=PROCESS_STARTED_AT + 1)
    assert SourceCache()(blob) is SOURCE_CHANGED


def test_a_file_is_stat_ed_at_most_once_per_recheck_interval(tmp_path: Path) -> None:
    now = [100.0]
    cache = SourceCache(loaded_before=_LONG_AGO, recheck_after=2.0, clock=lambda: now[0])
    path = _write(tmp_path, "views.py", b"a = 1\n")
    assert cache(path) == ("a = 1",)
    os.remove(path)
    now[0] += 1.9
    assert cache(path) == ("a = 1",)  # not looked at again yet
    now[0] += 0.1
    assert cache(path) is None  # looked at again: gone


def test_a_file_modified_after_it_was_read_is_changed_at_the_next_check(tmp_path: Path) -> None:
    now = [0.0]
    cache = SourceCache(loaded_before=_LONG_AGO + 10, recheck_after=1.0, clock=lambda: now[0])
    path = _write(tmp_path, "views.py", b"a = 1\n")
    assert cache(path) == ("a = 1",)
    _write(tmp_path, "views.py", b"a = 2\n", mtime=_LONG_AGO + 20)
    now[0] += 1.0
    assert cache(path) is SOURCE_CHANGED


def test_an_unchanged_file_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    cache = SourceCache(loaded_before=_LONG_AGO, recheck_after=1.0, clock=lambda: now[0])
    path = _write(tmp_path, "views.py", b"a = 1\n")
    assert cache(path) == ("a = 1",)

    def no_read(_self: SourceCache, _path: str) -> None:
        raise AssertionError("read again")

    monkeypatch.setattr(SourceCache, "_read", no_read)
    now[0] += 5.0
    assert cache(path) == ("a = 1",)  # stat'ed again: same inode, mtime and size


def test_the_cache_stays_bounded(tmp_path: Path) -> None:
    cache = SourceCache(max_files=3)
    paths = [_write(tmp_path, f"m{index}.py", b"a = 1\n") for index in range(10)]
    for path in paths:
        assert cache(path) == ("a = 1",)
    assert list(cache._files) == paths[-3:]


def test_the_default_threshold_is_the_process_start() -> None:
    assert SourceCache().loaded_before == PROCESS_STARTED_AT
    assert PROCESS_STARTED_AT <= source._IMPORTED_AT <= time.time()
    if sys.platform.startswith("linux"):  # this test run started shortly before the import
        assert source._IMPORTED_AT - 600 < PROCESS_STARTED_AT < source._IMPORTED_AT


# /proc/self/stat of a process whose name holds spaces and parentheses: fields 3 to 24.
_SELF_STAT = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 9 9\n"
_PROC_STAT = "cpu  1 2 3 4\nintr 5 6\nctxt 7\nbtime 1700000000\nprocesses 8\n"


def test_the_linux_start_time_is_boot_time_plus_start_ticks() -> None:
    assert source._linux_start_time(_SELF_STAT, _PROC_STAT, 100) == 1_700_000_000 + 1234.56


@pytest.mark.parametrize(
    ("self_stat", "proc_stat", "ticks"),
    [
        ("", _PROC_STAT, 100),
        ("4242 a S 1 2 3", _PROC_STAT, 100),
        (_SELF_STAT.replace(" 123456 ", " x "), _PROC_STAT, 100),
        (_SELF_STAT, "cpu 1 2\n", 100),
        (_SELF_STAT, "btime soon\n", 100),
        (_SELF_STAT, _PROC_STAT, 0),
    ],
)
def test_unparsable_proc_text_gives_none(self_stat: str, proc_stat: str, ticks: int) -> None:
    assert source._linux_start_time(self_stat, proc_stat, ticks) is None


def test_without_proc_the_start_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert source.process_start_time(1_234.5) == 1_234.5
    monkeypatch.setattr(sys, "platform", "linux")

    def no_proc(*args: object, **kwargs: object) -> None:
        raise PermissionError("no /proc here")

    monkeypatch.setattr(source, "open", no_proc, raising=False)
    assert source.process_start_time(1_234.5) == 1_234.5

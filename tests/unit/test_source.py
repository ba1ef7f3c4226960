"""Context lines are read with the encoding Python reads the source file with."""

from __future__ import annotations

import codecs
from pathlib import Path

from otel_sentry_bridge.source import SourceCache


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
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


def test_binary_and_missing_files_give_none(tmp_path: Path) -> None:
    assert SourceCache()(_write(tmp_path, "blob.py", b"\x00\x01")) is None
    assert SourceCache()(str(tmp_path / "missing.py")) is None

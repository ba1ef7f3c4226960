"""Frame placement (module, relative filename, in_app) is memoised per layout, and bounded;
source context never shows a file version other than the one that ran."""

from __future__ import annotations

import importlib.util
import os
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from otel_sentry_bridge.convert import frames
from otel_sentry_bridge.convert.frames import (
    SOURCE_CHANGED,
    CodeLayout,
    SourceChanged,
    SourceReader,
    sentry_frame,
)
from otel_sentry_bridge.convert.stacktrace import ParsedFrame, parse_stacktrace
from otel_sentry_bridge.deliver.source_files import SourceCache

LAYOUT = CodeLayout(
    import_roots=("/srv/app/src/", "/usr/lib/python3.11/site-packages/"),
    stdlib_roots=("/usr/lib/python3.11/",),
)


def test_placement_matches_the_uncached_rules() -> None:
    for path in (
        "/srv/app/src/shop/views.py",
        "/srv/app/src/shop/__init__.py",
        "/usr/lib/python3.11/site-packages/django/core/handlers/base.py",
        "/usr/lib/python3.11/json/decoder.py",
        "<frozen importlib._bootstrap>",
        "/elsewhere/script.py",
    ):
        module, filename = frames._module_and_filename(path, LAYOUT)
        expected = (module, filename, frames._in_app(module, path, LAYOUT))
        assert LAYOUT.placement(path) == expected
        assert LAYOUT.placement(path) == expected  # from the memo, the same answer


def test_placement_memo_stays_bounded() -> None:
    layout = CodeLayout(import_roots=("/srv/",), stdlib_roots=())
    for index in range(frames._MAX_PLACEMENTS + 10):
        layout.placement(f"/srv/gen/m{index}.py")
    assert len(layout._placements) <= frames._MAX_PLACEMENTS
    assert layout.placement("/srv/gen/m1.py") == ("gen.m1", "gen/m1.py", True)


def test_memo_is_not_part_of_the_layout_identity() -> None:
    twin = CodeLayout(import_roots=LAYOUT.import_roots, stdlib_roots=LAYOUT.stdlib_roots)
    LAYOUT.placement("/srv/app/src/shop/models.py")
    assert twin == LAYOUT and hash(twin) == hash(LAYOUT)


# Source context: a file modified since the process started shows no source at all.

_CHECKOUT = '''\
"""Imported by a test, made to raise, then edited."""


def checkout(order_id):
    total = order_id * 2
    raise ValueError(f"order {order_id} failed")


def refund(order_id):
    return order_id
'''
_RAISING_LINE = 6  # ``raise ValueError(...)`` above
_EDITED = _CHECKOUT.replace(
    '    raise ValueError(f"order {order_id} failed")', "    return total  # edited later"
)
_LOADED_BEFORE = 1_700_000_000.0  # the injected process start
_BEFORE = _LOADED_BEFORE - 3600
_AFTER = _LOADED_BEFORE + 3600


def _write_module(path: Path, text: str, mtime: float) -> None:
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def _import(path: Path) -> ModuleType:
    name = f"_edited_{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _traceback_of(module: ModuleType) -> str:
    """The stack trace text as the SDK records it: formatted when the error happens."""
    try:
        module.checkout(17)
    except ValueError as exc:
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    raise AssertionError("checkout did not raise")


def _frame_of(text: str, path: Path, read_source: SourceReader) -> dict[str, Any]:
    (exc,) = parse_stacktrace(text)
    (frame,) = [f for f in exc.frames if f.path == str(path)]
    assert frame.lineno == _RAISING_LINE and frame.function == "checkout"
    return sentry_frame(frame, LAYOUT, read_source, 5)


def _no_source(frame: dict[str, Any]) -> bool:
    return not {"context_line", "pre_context", "post_context"} & set(frame)


def test_a_module_edited_after_it_raised_shows_no_source(tmp_path: Path) -> None:
    path = tmp_path / "checkout.py"
    _write_module(path, _CHECKOUT, _BEFORE)
    text = _traceback_of(_import(path))
    assert 'raise ValueError(f"order {order_id} failed")' in text  # printed at error time
    _write_module(path, _EDITED, _AFTER)  # edited before the worker converts the error
    frame = _frame_of(text, path, SourceCache(loaded_before=_LOADED_BEFORE))
    assert _no_source(frame), frame
    assert frame["lineno"] == _RAISING_LINE and frame["function"] == "checkout"


def test_a_module_edited_before_it_raised_shows_no_printed_line_either(tmp_path: Path) -> None:
    path = tmp_path / "checkout.py"
    _write_module(path, _CHECKOUT, _BEFORE)
    module = _import(path)
    _write_module(path, _EDITED, _AFTER)  # edited after the import: the old code still runs
    text = _traceback_of(module)
    assert "return total  # edited later" in text  # linecache printed the new line: a lie
    frame = _frame_of(text, path, SourceCache(loaded_before=_LOADED_BEFORE))
    assert _no_source(frame), frame


def test_an_unchanged_module_gets_its_context_lines(tmp_path: Path) -> None:
    path = tmp_path / "checkout.py"
    _write_module(path, _CHECKOUT, _BEFORE)
    text = _traceback_of(_import(path))
    frame = _frame_of(text, path, SourceCache(loaded_before=_LOADED_BEFORE))
    assert frame["context_line"] == '    raise ValueError(f"order {order_id} failed")'
    assert frame["pre_context"] == _CHECKOUT.splitlines()[:5]
    assert frame["post_context"] == _CHECKOUT.splitlines()[6:11]


def test_an_unreadable_file_falls_back_to_the_printed_line(tmp_path: Path) -> None:
    path = tmp_path / "checkout.py"
    _write_module(path, _CHECKOUT, _BEFORE)
    text = _traceback_of(_import(path))
    path.unlink()  # gone (a deploy removed it): nothing says the printed line is stale
    frame = _frame_of(text, path, SourceCache(loaded_before=_LOADED_BEFORE))
    assert frame["context_line"] == 'raise ValueError(f"order {order_id} failed")'
    assert "pre_context" not in frame and "post_context" not in frame


_PRINTED = ParsedFrame("/srv/app/src/shop/views.py", 3, "index", "raise ValueError('x')")


@pytest.mark.parametrize("context_lines", [5, 0])
def test_a_changed_file_drops_the_printed_line(context_lines: int) -> None:
    def read_source(path: str) -> SourceChanged:
        return SOURCE_CHANGED

    frame = sentry_frame(_PRINTED, LAYOUT, read_source, context_lines)
    assert _no_source(frame) and frame["lineno"] == 3 and frame["module"] == "shop.views"


@pytest.mark.parametrize("context_lines", [5, 0])
def test_an_unreadable_file_keeps_the_printed_line(context_lines: int) -> None:
    frame = sentry_frame(_PRINTED, LAYOUT, lambda path: None, context_lines)
    assert frame["context_line"] == "raise ValueError('x')" and "pre_context" not in frame


def test_without_context_lines_a_readable_file_keeps_the_printed_line() -> None:
    lines = ("a = 1", "b = 2", "raise ValueError('from the file')", "c = 3")
    frame = sentry_frame(_PRINTED, LAYOUT, lambda path: lines, 0)
    assert frame["context_line"] == "raise ValueError('x')" and "pre_context" not in frame
    frame = sentry_frame(_PRINTED, LAYOUT, lambda path: lines, 1)
    assert frame["context_line"] == "raise ValueError('from the file')"
    assert frame["pre_context"] == ["b = 2"] and frame["post_context"] == ["c = 3"]

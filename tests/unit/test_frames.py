"""Frame placement (module, relative filename, in_app) is memoised per layout, and bounded;
source context never shows a file version other than the one that ran."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_sentry_bridge.convert import frames
from otel_sentry_bridge.convert.frames import (
    SOURCE_CHANGED,
    CodeLayout,
    SourceChanged,
    SourceReader,
    sentry_frame,
    sentry_frames,
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


# Module names: the name a module was loaded under, as sentry-sdk reports a frame's module.


def _module(name: str, file: str) -> ModuleType:
    module = ModuleType(name)
    module.__file__ = file
    return module


def test_a_loaded_modules_name_wins_over_the_path_derived_one() -> None:
    # /srv/app/src was put on sys.path after the layout was read: from the roots alone the
    # file would be "src.shop.views", a module nobody imported.
    layout = CodeLayout(
        import_roots=("/srv/app/",),
        stdlib_roots=(),
        loaded=frames.LoadedModules({"shop.views": _module("shop.views", _VIEWS)}),
    )
    assert layout.placement(_VIEWS) == ("shop.views", "shop/views.py", True)
    package = "/srv/app/src/shop/__init__.py"
    layout = CodeLayout(
        import_roots=("/srv/app/",),
        stdlib_roots=(),
        loaded=frames.LoadedModules({"shop": _module("shop", package)}),
    )
    assert layout.placement(package) == ("shop", "shop/__init__.py", True)
    # a file no module was loaded from: derived from the roots, as before
    assert layout.placement("/srv/app/tools/run.py") == ("tools.run", "tools/run.py", True)


_VIEWS = "/srv/app/src/shop/views.py"


def test_the_module_name_is_read_again_when_modules_are_loaded() -> None:
    modules: dict[str, Any] = {"os": os}
    layout = CodeLayout(
        import_roots=("/srv/app/",), stdlib_roots=(), loaded=frames.LoadedModules(modules)
    )
    assert layout.placement(_VIEWS)[0] == "src.shop.views"
    modules["shop.views"] = _module("shop.views", _VIEWS)  # imported since
    assert layout.placement(_VIEWS)[0] == "shop.views"


def test_the_map_is_rebuilt_only_when_the_number_of_modules_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds: list[int] = []
    build = frames._files_to_modules
    monkeypatch.setattr(frames, "_files_to_modules", lambda m: builds.append(1) or build(m))
    modules: dict[str, Any] = {"shop.views": _module("shop.views", _VIEWS)}
    layout = CodeLayout(
        import_roots=("/srv/",), stdlib_roots=(), loaded=frames.LoadedModules(modules)
    )
    for _ in range(100):
        layout.placement(_VIEWS)
    assert len(builds) == 1
    modules["json"] = json
    layout.placement(_VIEWS)
    assert len(builds) == 2


def test_a_file_loaded_under_two_names_keeps_the_derived_name() -> None:
    modules = {
        "settings": _module("settings", "/srv/app/shop/settings.py"),
        "shop.settings": _module("shop.settings", "/srv/app/shop/settings.py"),
        # a module's own __name__ counts, not its key: multiprocessing's __mp_main__ alias
        "__mp_main__": (main := _module("__main__", "/srv/app/manage.py")),
        "__main__": main,
    }
    layout = CodeLayout(
        import_roots=("/srv/app/",), stdlib_roots=(), loaded=frames.LoadedModules(modules)
    )
    assert layout.placement("/srv/app/shop/settings.py")[:2] == (
        "shop.settings",
        "shop/settings.py",
    )
    assert layout.placement("/srv/app/manage.py")[:2] == ("__main__", "manage.py")


def test_odd_entries_of_sys_modules_are_skipped_and_lazy_modules_stay_unloaded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lazy_mod.py"
    path.write_text("import sys\nsys.modules['_lazy_ran'] = True\n")
    spec = importlib.util.spec_from_file_location("lazy_mod", path)
    assert spec is not None and spec.loader is not None
    spec.loader = importlib.util.LazyLoader(spec.loader)
    lazy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lazy)
    modules: dict[str, Any] = {
        "lazy_mod": lazy,
        "not_a_module": object(),
        "none": None,
        "no_file": ModuleType("no_file"),
        "compiled": _module("compiled", "/srv/app/_speedups.cpython-311-x86_64.so"),
    }
    loaded = frames.LoadedModules(modules)
    assert loaded.refresh()
    assert loaded.name_of(str(path)) == "lazy_mod"
    assert "_lazy_ran" not in sys.modules  # its code did not run on this thread
    assert loaded.name_of("/srv/app/_speedups.cpython-311-x86_64.so") is None


def test_the_current_layout_names_modules_as_they_were_imported(tmp_path: Path) -> None:
    plugin = tmp_path / "plugins" / "loyalty.py"
    plugin.parent.mkdir()
    plugin.write_text("def award():\n    raise ValueError('no points')\n")
    spec = importlib.util.spec_from_file_location("shop_plugins.loyalty", plugin)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["shop_plugins.loyalty"] = module
    try:
        spec.loader.exec_module(module)
        try:
            module.award()
        except ValueError as exc:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        (parsed,) = parse_stacktrace(text)
        layout = CodeLayout.current()
        frame = sentry_frames(parsed.frames, layout, lambda path: None, 0)[-1]
        assert (frame["module"], frame["filename"]) == (
            "shop_plugins.loyalty",
            os.path.join("plugins", "loyalty.py"),
        )
    finally:
        del sys.modules["shop_plugins.loyalty"]


# OTel's context manager frames head an exception that use_span records: not the app's stack.


def _recorded_frames(record: Callable[[Any], None]) -> list[ParsedFrame]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    record(provider.get_tracer("tests"))
    provider.shutdown()
    (span,) = exporter.get_finished_spans()
    assert span.events, "use_span records the exception"
    (parsed,) = parse_stacktrace(str(span.events[0].attributes["exception.stacktrace"]))
    return parsed.frames


def _fail() -> None:
    raise ValueError("boom")


def _with_start_as_current_span(tracer: Any) -> None:
    try:
        with tracer.start_as_current_span("work"):
            _fail()
    except ValueError:
        pass


def _with_use_span(tracer: Any) -> None:
    span = tracer.start_span("manual")
    try:
        with trace.use_span(span, end_on_exit=True):
            _fail()
    except ValueError:
        pass


@pytest.mark.parametrize("record", [_with_start_as_current_span, _with_use_span])
def test_otel_context_manager_frames_are_left_out(record: Callable[[Any], None]) -> None:
    parsed = _recorded_frames(record)
    assert parsed[0].function == "use_span"  # as recorded: the frame the exception entered
    functions = [f["function"] for f in sentry_frames(parsed, CodeLayout.current(), _none, 0)]
    assert functions == [record.__name__, "_fail"]


def _none(path: str) -> None:
    return None


def test_only_the_outermost_otel_frames_go_and_the_innermost_frame_stays() -> None:
    otel = "/usr/lib/python3.11/site-packages/opentelemetry/trace/__init__.py"
    use_span = ParsedFrame(otel, 602, "use_span", "yield span")
    app = ParsedFrame("/srv/app/src/shop/views.py", 3, "index", None)
    kept = sentry_frames([app, use_span, app], LAYOUT, _none, 0)
    assert [f["function"] for f in kept] == ["index", "use_span", "index"]
    assert [f["function"] for f in sentry_frames([use_span], LAYOUT, _none, 0)] == ["use_span"]
    mine = ParsedFrame("/srv/app/src/shop/tracing.py", 9, "use_span", None)  # not OTel's
    assert len(sentry_frames([mine, app], LAYOUT, _none, 0)) == 2

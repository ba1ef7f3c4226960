"""Frame placement (module, relative filename, in_app) is memoised per layout, and bounded."""

from __future__ import annotations

from otel_sentry_bridge.convert import frames
from otel_sentry_bridge.convert.frames import CodeLayout

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

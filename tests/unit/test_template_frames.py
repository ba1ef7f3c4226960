"""The template frame of a Django template error (``exc.template_debug``), made from real
errors of the tests' Django project."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from otel_sentry_bridge.capture.template_frames import (
    CONTEXT_LINES,
    MAX_LINE_CHARS,
    template_frame,
)
from tests.support.broken_template import broken_template_frame

TEMPLATES = Path(__file__).resolve().parents[1] / "djangoapp" / "templates"


@pytest.fixture(scope="module", autouse=True)
def _django() -> None:
    """The tests' Django project, as the Django tests set it up (settings are per process)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.djangoapp.settings")
    import django

    django.setup()


def _error_of(call: Any) -> BaseException:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("no error")


def _syntax_error(source: str, *, debug: bool = True) -> BaseException:
    from django.template import Engine

    return _error_of(lambda: Engine(debug=debug).from_string(source))


def test_a_syntax_error_in_a_template_file_is_a_frame_of_that_file_and_line() -> None:
    from django.template import TemplateSyntaxError
    from django.template.loader import get_template

    exc = _error_of(lambda: get_template("broken.html"))
    assert isinstance(exc, TemplateSyntaxError)
    path = str(TEMPLATES / "broken.html")
    assert template_frame(exc) == broken_template_frame(path)


def test_an_error_raised_while_rendering_is_a_frame_of_the_line_rendered() -> None:
    from django.template import Context, Engine

    class Order:
        @property
        def total(self) -> str:
            raise ValueError("no total")

    template = Engine(debug=True).from_string("<h1>Order</h1>\n<p>{{ order.total }}</p>\n")
    exc = _error_of(lambda: template.render(Context({"order": Order()})))
    assert isinstance(exc, ValueError)
    frame = template_frame(exc)
    assert frame is not None
    assert frame["filename"] == "<unknown source>"  # Django's name of a template from a string
    assert frame["lineno"] == 2
    assert frame["context_line"] == "<p>{{ order.total }}</p>"
    assert frame["pre_context"] == ["<h1>Order</h1>"]
    assert frame["post_context"] == []  # the newline that ends the template is no line


def test_context_is_at_most_five_lines_each_side() -> None:
    lines = [f"line {n}" for n in range(1, 31)]
    lines[14] = "{% if %}"  # line 15
    frame = template_frame(_syntax_error("\n".join(lines)))
    assert frame is not None
    assert frame["lineno"] == 15
    assert frame["pre_context"] == [f"line {n}" for n in range(10, 15)]
    assert frame["post_context"] == [f"line {n}" for n in range(16, 21)]
    assert len(frame["pre_context"]) == len(frame["post_context"]) == CONTEXT_LINES


def test_an_error_on_the_first_line_has_no_lines_before_it() -> None:
    frame = template_frame(_syntax_error("{% endif %}\nsecond\n"))
    assert frame is not None
    assert (frame["lineno"], frame["pre_context"], frame["context_line"]) == (1, [], "{% endif %}")
    assert frame["post_context"] == ["second"]


def test_long_lines_are_cut() -> None:
    long = "x" * 5000
    frame = template_frame(_syntax_error(f"{long}\n{{% if %}}{long}\n{long}"))
    assert frame is not None
    for text in [*frame["pre_context"], frame["context_line"], *frame["post_context"]]:
        assert len(text) == MAX_LINE_CHARS
        assert text.endswith("...")


def test_without_the_engines_debug_option_there_is_no_frame() -> None:
    exc = _syntax_error("{% if %}", debug=False)
    assert not hasattr(exc, "template_debug")
    assert template_frame(exc) is None


@pytest.mark.parametrize("exc", [None, ValueError("plain"), KeyError("x")])
def test_errors_without_template_debug_have_no_frame(exc: BaseException | None) -> None:
    assert template_frame(exc) is None


def _with_debug(debug: Any) -> BaseException:
    exc = RuntimeError("template")
    exc.template_debug = debug  # type: ignore[attr-defined]
    return exc


def test_a_source_without_source_lines_gives_the_context_from_it() -> None:
    source = "\n".join(f"row {n}" for n in range(1, 101))
    frame = template_frame(_with_debug({"name": "mail.txt", "line": 50, "source": source}))
    assert frame is not None
    assert frame["context_line"] == "row 50"
    assert frame["pre_context"] == [f"row {n}" for n in range(45, 50)]
    assert frame["post_context"] == [f"row {n}" for n in range(51, 56)]


@pytest.mark.parametrize(
    "debug",
    [
        "not a mapping",
        {},
        {"name": "a.html"},
        {"name": "a.html", "line": "3"},
        {"name": "a.html", "line": 0},
        {"name": "a.html", "line": True},
    ],
)
def test_template_debug_without_a_line_gives_no_frame(debug: Any) -> None:
    assert template_frame(_with_debug(debug)) is None


def test_odd_source_lines_give_a_frame_without_context() -> None:
    debug = {"name": None, "line": 3, "source_lines": [("3", "x"), (3,), None, (4, b"y")]}
    assert template_frame(_with_debug(debug)) == {
        "filename": "<django template>",
        "abs_path": "<django template>",
        "lineno": 3,
        "function": "<template>",
        "in_app": True,
    }


def test_a_template_debug_that_raises_gives_no_frame_and_no_error() -> None:
    class Hostile(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            raise RuntimeError("no")

    assert template_frame(_with_debug(Hostile())) is None

"""safe_repr: bounded text for any value, at a cost that does not grow with the value."""

from __future__ import annotations

import collections
from typing import Any

import pytest

from otel_sentry_bridge.safe_repr import safe_repr, truncate


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1, 2, (3,)], "c": "x"},
        [1, 2.5, None, True, b"\x00ab", "q'uote"],
        (),
        (1,),
        set(),
        frozenset(),
        {1},
        frozenset({2}),
        {"nested": {"deeper": [1]}},
    ],
)
def test_small_builtin_values_read_as_python_prints_them(value: Any) -> None:
    assert safe_repr(value) == repr(value)


def test_strings_are_returned_as_they_are_and_cut() -> None:
    assert safe_repr("plain") == "plain"
    assert safe_repr("x" * 600, 10) == "xxxxxxx..."


def test_subclasses_show_their_name_and_their_items_without_their_own_repr() -> None:
    assert safe_repr(collections.OrderedDict(a=1)) == "OrderedDict({'a': 1})"

    class Tags(list[str]):
        def __repr__(self) -> str:
            raise RuntimeError("never called")

    assert safe_repr(Tags(["x"])) == "Tags(['x'])"


def test_huge_containers_show_their_first_items_in_their_own_order() -> None:
    # reprlib sorts a whole dict or set first (300+ ms at this size); this reads 20 items.
    text = safe_repr({index: index for index in range(500_000)}, 100_000)
    assert text.startswith("{0: 0, 1: 1, 2: 2,") and text.endswith(", ...}")
    assert text.count(":") == 20
    assert safe_repr(set(range(500_000)), 100_000).endswith(", ...}")


def test_unsortable_and_mixed_keys_are_fine() -> None:
    assert safe_repr({1: "a", "b": 2, None: 3}) == "{1: 'a', 'b': 2, None: 3}"


def test_big_bytes_and_ints_are_cut_before_they_are_printed() -> None:
    assert len(safe_repr(b"x" * 20_000_000)) == 512
    assert safe_repr(10**5000) == "<int with 16610 bits>"


def test_deep_nesting_stops_at_three_levels() -> None:
    assert safe_repr([[[[1]]]]) == "[[[[...]]]]"
    assert safe_repr({"a": {"b": {"c": {"d": 1}}}}) == "{'a': {'b': {'c': {...}}}}"


def test_a_broken_repr_gives_a_placeholder_and_never_raises() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise ValueError("no")

    class NotText:
        def __repr__(self) -> Any:
            return 3

    assert safe_repr(Broken()) == "<Broken object (repr failed)>"
    assert safe_repr([Broken()]) == "[<Broken object (repr failed)>]"
    assert safe_repr(NotText()) == "<NotText object (repr failed)>"


def test_the_limit_is_kept_and_marked() -> None:
    text = safe_repr(list(range(100)), 30)
    assert len(text) == 30 and text.endswith("...")


def test_truncate_marks_what_it_cuts() -> None:
    assert truncate("abcdef", 6) == "abcdef"
    assert truncate("abcdefg", 6) == "abc..."
    assert truncate("abcdefg", 2) == "..."

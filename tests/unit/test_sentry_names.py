"""Sentry's rules for environment and release names, checked against relay itself."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sentry_relay.processing import StoreNormalizer

from otel_sentry_bridge.convert.sentry_names import environment_problem, release_problem

_normalizer = StoreNormalizer()

# (value, kept by Sentry), each limit approached from both sides.
ENVIRONMENTS = [
    ("production", True),
    ("e" * 64, True),
    ("e" * 65, False),
    ("é" * 32, True),  # 64 bytes: the limit counts UTF-8 bytes
    ("é" * 32 + "e", False),  # 65 bytes, 33 characters
    ("€" * 21 + "e", True),  # 64 bytes
    ("€" * 22, False),  # 66 bytes
    ("prödüktion", True),
    ("eu west", True),  # spaces are fine, whatever older docs say
    ("none", False),
    ("None", False),
    ("NONE", False),
    ("nones", True),
    ("latest", True),
    (".", False),
    ("..", False),
    ("...", True),
    ("a/b", False),
    ("a\\b", False),
    ("prod\nuction", False),
    ("prod\ruction", False),
    ("prod\tuction", False),
    ("a\x0cb", False),
    ("a\x00b", False),
    ("a\x1fb", False),
    ("a\x7fb", False),
    ("a\x85b", True),  # a C1 control: relay only refuses the ASCII ones
    ("a\u00a0b", True),
    ("a\u2028b", True),
    ("shop@eu:1+2", True),
]

RELEASES = [
    ("shop@1.2.3", True),
    ("r" * 200, True),
    ("r" * 201, False),
    ("é" * 100, True),  # 200 bytes
    ("é" * 100 + "r", False),  # 201 bytes
    ("my app 1.0", True),
    ("None", True),
    ("latest", False),
    ("Latest", False),
    ("LATEST", False),
    ("latest-1", True),
    (".", False),
    ("..", False),
    ("...", True),
    ("a/b", False),
    ("a\\b", False),
    ("1.0\nx", False),
    ("1\r0", False),
    ("1\t0", False),
    ("a\x0bb", False),
    ("a\x00b", False),
    ("a\x7fb", False),
    ("a\x85b", True),
    ("versión-1✓", True),
]


def _relay_keeps(name: str, value: str) -> bool:
    event = {"event_id": "a" * 32, "platform": "python", "message": "m", name: value}
    normalized = _normalizer.normalize_event(raw_event=json.dumps(event).encode())
    return normalized.get(name) == value and not normalized.get("errors")


@pytest.mark.parametrize(("value", "kept"), ENVIRONMENTS)
def test_environment_rules(value: str, kept: bool) -> None:
    assert (environment_problem(value) is None) == kept
    assert _relay_keeps("environment", value) == kept  # the table itself is relay's verdict


@pytest.mark.parametrize(("value", "kept"), RELEASES)
def test_release_rules(value: str, kept: bool) -> None:
    assert (release_problem(value) is None) == kept
    assert _relay_keeps("release", value) == kept


# Every ASCII character and a sample beyond (Latin-1, separators, BOM, CJK, emoji).
_CHARACTERS = [chr(c) for c in range(0x100)] + ["\u2028", "\u3000", "\ufeff", "中", "😀"]


@pytest.mark.parametrize(
    ("name", "problem"), [("environment", environment_problem), ("release", release_problem)]
)
def test_every_character_is_judged_like_relay(
    name: str, problem: Callable[[str], str | None]
) -> None:
    disagree = [
        c for c in _CHARACTERS if (problem(f"a{c}b") is None) != _relay_keeps(name, f"a{c}b")
    ]
    assert disagree == []


def test_empty_name_is_a_problem() -> None:
    assert environment_problem("") and release_problem("")


def test_problems_say_why() -> None:
    assert "64 bytes" in (environment_problem("e" * 65) or "")
    assert "200 bytes" in (release_problem("r" * 201) or "")
    assert "reserved" in (environment_problem("None") or "")
    assert "reserved" in (release_problem("latest") or "")
    assert "'/'" in (environment_problem("a/b") or "")

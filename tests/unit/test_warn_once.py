"""WarnOnce: each problem logged once per owner, again after it was forgotten."""

from __future__ import annotations

import logging

import pytest

from otel_sentry_bridge.warn_once import WarnOnce


def test_a_key_is_logged_once_until_forgotten(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.warn_once")
    warn = WarnOnce(logger)
    with caplog.at_level(logging.WARNING, logger="tests.warn_once"):
        assert warn("down", "server %s down", "a") is True
        assert warn("down", "server %s down", "b") is False
        assert warn.seen("down")
        assert warn.forget("down") is True
        assert warn.forget("down") is False
        assert warn("down", "server %s down", "c") is True
    assert [r.getMessage() for r in caplog.records] == ["server a down", "server c down"]


def test_two_owners_each_say_it() -> None:
    logger = logging.getLogger("tests.warn_once")
    first, second = WarnOnce(logger), WarnOnce(logger)
    assert first("x", "m") and second("x", "m")

"""Backoff delays and response classification: pure decisions, randomness passed in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_sentry_bridge.deliver.http import SendResult
from otel_sentry_bridge.deliver.retry import Backoff, classify

NO_JITTER = 0.5  # rand = 0.5 puts the delay exactly on the exponential curve


def test_first_attempt_waits_the_initial_delay() -> None:
    assert Backoff().delay(1, NO_JITTER) == 0.5


def test_delays_grow_by_the_factor() -> None:
    backoff = Backoff(initial=1.0, factor=3.0, maximum=1000.0)
    assert [backoff.delay(n, NO_JITTER) for n in (1, 2, 3, 4)] == [1.0, 3.0, 9.0, 27.0]


@given(st.integers(min_value=-5, max_value=5000), st.floats(min_value=0.0, max_value=0.999999))
def test_delays_never_shrink_and_never_exceed_the_cap(attempt: int, rand: float) -> None:
    backoff = Backoff()
    assert 0.0 <= backoff.delay(attempt, rand) <= backoff.delay(attempt + 1, rand) <= 30.0


def test_delays_reach_the_cap_and_stay_there() -> None:
    backoff = Backoff(initial=1.0, factor=2.0, maximum=10.0, jitter=0.0)
    assert [backoff.delay(n, 0.3) for n in (4, 5, 6, 100, 10**6)] == [8.0, 10.0, 10.0, 10.0, 10.0]


@pytest.mark.parametrize("attempt", [1, 2, 3, 4])
def test_jitter_stays_within_its_fraction(attempt: int) -> None:
    backoff = Backoff(initial=1.0, factor=2.0, maximum=100.0, jitter=0.25)
    base = 2.0 ** (attempt - 1)
    assert backoff.delay(attempt, 0.0) == pytest.approx(base * 0.75)
    assert backoff.delay(attempt, 0.999999) == pytest.approx(base * 1.25, rel=1e-5)
    for rand in (0.1, 0.4, 0.6, 0.9):
        assert base * 0.75 <= backoff.delay(attempt, rand) <= base * 1.25


def test_jitter_near_the_cap_never_goes_above_it() -> None:
    backoff = Backoff(initial=30.0, maximum=30.0, jitter=0.5)
    assert backoff.delay(1, 0.99) == 30.0
    assert backoff.delay(1, 0.0) == 15.0


def test_attempt_zero_or_negative_counts_as_the_first() -> None:
    assert Backoff().delay(0, NO_JITTER) == Backoff().delay(-3, NO_JITTER) == 0.5


def test_out_of_range_rand_is_clamped() -> None:
    backoff = Backoff(initial=1.0, jitter=0.5, maximum=10.0)
    assert backoff.delay(1, -7.0) == 0.5
    assert backoff.delay(1, float("nan")) == 1.0


def test_give_up_after_the_configured_time() -> None:
    backoff = Backoff(give_up_after=120.0)
    assert not backoff.should_give_up(first_failure=10.0, now=129.9)
    assert backoff.should_give_up(first_failure=10.0, now=130.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"initial": -1.0}, {"factor": 0.5}, {"jitter": 1.5}, {"maximum": float("inf")}],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_backoff_is_immutable() -> None:
    with pytest.raises(AttributeError):
        Backoff().initial = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "sent"),
        (204, "sent"),
        (400, "rejected"),
        (401, "rejected"),
        (403, "rejected"),
        (413, "rejected"),
        (302, "rejected"),
        (408, "retry"),
        (429, "rate_limited"),
        (500, "retry"),
        (501, "rejected"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
        (505, "rejected"),
        (None, "retry"),
    ],
)
def test_classify(status: int | None, outcome: str) -> None:
    assert classify(SendResult(status=status)) == outcome


def test_a_network_error_is_retried() -> None:
    assert classify(SendResult(status=None, error="ConnectionError: refused")) == "retry"

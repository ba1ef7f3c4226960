"""Rate limits: header parsing, Retry-After, and the immutable RateLimits value. No clocks."""

from __future__ import annotations

from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_sentry_bridge.deliver.http import SendResult
from otel_sentry_bridge.deliver.ratelimit import (
    RateLimits,
    parse_rate_limits,
    parse_retry_after,
)

NOW = 1000.0
EPOCH = 1_700_000_000.0


def after(
    status: int | None, limits: str | None = None, retry_after: str | None = None
) -> RateLimits:
    result = SendResult(status=status, rate_limits=limits, retry_after=retry_after)
    return RateLimits().after(result, NOW, EPOCH)


# -- parse_rate_limits ---------------------------------------------------------------------------


def test_one_entry_with_one_category() -> None:
    assert parse_rate_limits("60:error:key", NOW) == {"error": NOW + 60}


def test_several_categories_and_several_entries() -> None:
    header = "60:error;transaction:organization, 2700:internal:project"
    assert parse_rate_limits(header, NOW) == {
        "error": NOW + 60,
        "transaction": NOW + 60,
        "internal": NOW + 2700,
    }


def test_empty_categories_mean_all() -> None:
    assert parse_rate_limits("30::organization", NOW) == {"": NOW + 30}


def test_reason_and_namespaces_fields_are_accepted_and_ignored() -> None:
    header = (
        "10:metric_bucket:organization:quota_exceeded:custom;spans, 20:error:key:usage_exceeded"
    )
    assert parse_rate_limits(header, NOW) == {"metric_bucket": NOW + 10, "error": NOW + 20}


def test_repeated_category_keeps_the_longest_limit() -> None:
    assert parse_rate_limits("90:error:key, 10:error:org", NOW) == {"error": NOW + 90}


def test_fractional_seconds_and_whitespace() -> None:
    assert parse_rate_limits("  1.5 : error ; internal :key ", NOW) == {
        "error": NOW + 1.5,
        "internal": NOW + 1.5,
    }


@pytest.mark.parametrize(
    "header",
    [
        "",
        ",,,",
        "garbage",
        "abc:error:key",
        "-5:error:key",
        "nan:error:key",
        "inf::key",
        "60",
        "1e3:error",
    ],
)
def test_bad_entries_are_ignored(header: str) -> None:
    assert parse_rate_limits(header, NOW) == {}


def test_a_bad_entry_does_not_spoil_the_good_ones() -> None:
    assert parse_rate_limits("x:error:key, 60:internal:key, :::", NOW) == {"internal": NOW + 60}


def test_absurd_values_are_capped_at_a_day() -> None:
    assert parse_rate_limits("9" * 500 + ":error:key", NOW) == {"error": NOW + 86400}


@given(st.text(), st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_parse_rate_limits_never_raises(header: str, now: float) -> None:
    for deadline in parse_rate_limits(header, now).values():
        assert deadline >= now


@given(st.text(alphabet=st.sampled_from("0123456789:;,. abcerorx-"), max_size=60))
def test_parse_rate_limits_never_raises_on_near_miss_headers(header: str) -> None:
    parse_rate_limits(header, NOW)


# -- parse_retry_after ---------------------------------------------------------------------------


def test_retry_after_seconds() -> None:
    assert parse_retry_after("120", EPOCH) == 120.0
    assert parse_retry_after(" 7 ", EPOCH) == 7.0


def test_retry_after_http_date_is_relative_to_now_epoch() -> None:
    assert parse_retry_after(formatdate(EPOCH + 90, usegmt=True), EPOCH) == pytest.approx(90.0)


def test_retry_after_date_in_the_past_means_now() -> None:
    assert parse_retry_after(formatdate(EPOCH - 90, usegmt=True), EPOCH) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-1", "1e3", "Mon, 99 Foo 2024 99:99:99 GMT"])
def test_retry_after_absent_or_bad_is_none(value: str | None) -> None:
    assert parse_retry_after(value, EPOCH) is None


@given(st.text())
def test_parse_retry_after_never_raises(value: str) -> None:
    delay = parse_retry_after(value, EPOCH)
    assert delay is None or 0 <= delay <= 86400


# -- RateLimits ----------------------------------------------------------------------------------


def test_empty_limits_limit_nothing() -> None:
    limits = RateLimits()
    assert not limits.is_limited("error", NOW)
    assert limits.remaining("error", NOW) == 0.0
    assert limits.next_expiry(NOW) is None


def test_429_with_header_limits_only_the_named_categories() -> None:
    limits = after(429, "60:internal:key", retry_after="5")
    assert limits.is_limited("internal", NOW)
    assert not limits.is_limited("error", NOW)


def test_429_with_retry_after_seconds_limits_everything() -> None:
    limits = after(429, retry_after="30")
    assert limits.remaining("error", NOW) == 30.0
    assert limits.remaining("internal", NOW) == 30.0


def test_429_with_retry_after_http_date() -> None:
    limits = after(429, retry_after=formatdate(EPOCH + 45, usegmt=True))
    assert limits.remaining("error", NOW) == pytest.approx(45.0)


def test_429_with_neither_header_limits_everything_for_60_seconds() -> None:
    limits = after(429)
    assert limits.remaining("error", NOW) == 60.0
    assert limits.next_expiry(NOW) == NOW + 60


def test_429_with_an_unreadable_limits_header_falls_back_to_retry_after() -> None:
    assert after(429, "nonsense", retry_after="12").remaining("error", NOW) == 12.0


def test_header_on_a_200_also_applies() -> None:
    limits = after(200, "60:error:key")
    assert limits.is_limited("error", NOW)


def test_header_on_a_500_also_applies() -> None:
    assert after(503, "60::key").is_limited("internal", NOW)


def test_other_statuses_without_header_do_not_limit() -> None:
    for status in (200, 400, 500, 503, None):
        assert after(status, retry_after="30") == RateLimits()


def test_limit_expires_exactly_at_the_deadline() -> None:
    limits = after(200, "60:error:key")
    assert limits.is_limited("error", NOW + 59.999)
    assert not limits.is_limited("error", NOW + 60)
    assert limits.remaining("error", NOW + 60) == 0.0
    assert limits.next_expiry(NOW + 60) is None


def test_a_limit_on_all_categories_applies_to_any_category() -> None:
    limits = after(200, "60::organization")
    assert limits.is_limited("error", NOW)
    assert limits.is_limited("internal", NOW)
    assert limits.is_limited("anything", NOW)


@pytest.mark.parametrize("limited", ["default", "error"])
def test_default_and_error_are_the_same_category(limited: str) -> None:
    limits = after(200, f"60:{limited}:project")
    assert limits.is_limited("error", NOW)
    assert limits.is_limited("default", NOW)
    assert not limits.is_limited("internal", NOW)


def test_remaining_takes_the_longest_applicable_limit() -> None:
    limits = after(200, "10::org, 50:default:project, 90:internal:key")
    assert limits.remaining("error", NOW) == 50.0
    assert limits.remaining("transaction", NOW) == 10.0
    assert limits.next_expiry(NOW) == NOW + 10
    assert limits.next_expiry(NOW + 10) == NOW + 50


def test_after_returns_a_new_value_and_leaves_the_old_one_alone() -> None:
    empty = RateLimits()
    limited = empty.after(SendResult(status=429), NOW, EPOCH)
    assert limited is not empty
    assert not empty.is_limited("error", NOW)
    with pytest.raises(AttributeError):
        limited.limits = ()  # type: ignore[misc]


def test_later_responses_extend_but_never_shorten_a_limit() -> None:
    limits = after(200, "60:error:key")
    later = limits.after(SendResult(200, rate_limits="10:error:key"), NOW + 5, EPOCH)
    assert later.remaining("error", NOW + 5) == 55.0
    longer = later.after(SendResult(200, rate_limits="100:error:key"), NOW + 5, EPOCH)
    assert longer.remaining("error", NOW + 5) == 100.0


def test_expired_limits_are_dropped() -> None:
    limits = after(200, "10:error:key, 60:internal:key")
    later = limits.after(SendResult(200), NOW + 30, EPOCH)
    assert [name for name, _ in later.limits] == ["internal"]


def test_a_response_without_news_returns_the_same_value() -> None:
    limits = after(200, "60:error:key")
    assert limits.after(SendResult(200), NOW + 1, EPOCH) is limits


@given(
    st.one_of(st.none(), st.integers(min_value=100, max_value=599)),
    st.one_of(st.none(), st.text()),
    st.one_of(st.none(), st.text()),
)
def test_after_never_raises(status: int | None, header: str | None, retry: str | None) -> None:
    limits = RateLimits().after(
        SendResult(status, rate_limits=header, retry_after=retry), NOW, EPOCH
    )
    assert limits.remaining("error", NOW) <= 86400
    fallback = status == 429 and not (header and parse_rate_limits(header, NOW))
    if fallback and parse_retry_after(retry, EPOCH) != 0.0:
        assert limits.is_limited("internal", NOW)


def test_rate_limit_categories_are_read_in_any_case() -> None:
    """probe 2026-12-05: ``60:ERROR:org`` limited nothing, and the 429 was retried at once."""
    assert parse_rate_limits("60:ERROR;Default:organization", 100.0) == {
        "error": 160.0,
        "default": 160.0,
    }

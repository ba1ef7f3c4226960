"""The event schema: one declaration that scrubbing and the size limits both follow."""

from __future__ import annotations

from otel_sentry_bridge.convert import bound_sections, scrub
from otel_sentry_bridge.convert.schema import IDENTITY_KEYS, SECTIONS, Kind, kind_of


def test_unknown_and_odd_keys_are_user_data() -> None:
    assert kind_of("my_context") is Kind.DATA
    assert kind_of(7) is Kind.DATA
    assert kind_of("exception") is Kind.EXCEPTIONS


def test_the_identity_is_the_four_fields_sentry_needs() -> None:
    assert {"event_id", "timestamp", "level", "platform"} == IDENTITY_KEYS


def test_every_kind_has_a_scrub_rule_and_a_bound_rule() -> None:
    assert set(scrub._SCRUB) == set(Kind)
    assert set(bound_sections.EVENT_FIELDS) == set(SECTIONS)

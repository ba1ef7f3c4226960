"""Sentry's own event normaliser (sentry-relay) as a test oracle for every event we produce."""

from __future__ import annotations

from typing import Any

from sentry_relay.processing import StoreNormalizer

from otel_sentry_bridge.deliver.envelope import json_dumps

_normalizer = StoreNormalizer()


def relay_errors(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The problems relay finds in ``event`` (empty when Sentry would accept it as sent)."""
    # Through our own encoder, exactly as the server would receive it (plain json.dumps would
    # write a lone surrogate as an escape relay refuses to parse at all).
    normalized = _normalizer.normalize_event(raw_event=json_dumps(event))
    return list(normalized.get("errors") or [])


def assert_valid_event(event: dict[str, Any]) -> None:
    errors = relay_errors(event)
    assert errors == [], f"sentry-relay rejects parts of the event: {errors}"

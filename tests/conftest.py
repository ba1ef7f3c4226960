"""Shared fixtures. Every event any test produces is checked by sentry-relay's normaliser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from otel_sentry_bridge.deliver import pipeline
from tests.support.bugsink import bugsink  # noqa: F401  (session fixture)
from tests.support.otel_django import instrumented_django  # noqa: F401
from tests.support.receiver import sentry_receiver  # noqa: F401
from tests.support.relay import relay_errors


@pytest.fixture(autouse=True)
def every_event_passes_relay(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Collect every event encoded in this process during the test; at teardown, each must
    pass Sentry's own normaliser without errors. (Subprocess tests validate at the receiver.)"""
    produced: list[dict[str, Any]] = []
    encode = pipeline.event_envelope

    def recording(event: dict[str, Any], **kwargs: Any) -> bytes:
        produced.append(event)
        return encode(event, **kwargs)

    monkeypatch.setattr(pipeline, "event_envelope", recording)
    yield produced
    problems = [(e.get("event_id"), relay_errors(e)) for e in produced]
    problems = [p for p in problems if p[1]]
    assert not problems, f"events rejected by sentry-relay: {problems}"

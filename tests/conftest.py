"""Shared fixtures. Every event any test produces is checked by sentry-relay's normaliser."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from otel_sentry_bridge.convert.limits import enforce_limits
from otel_sentry_bridge.convert.scrub import scrub_event
from otel_sentry_bridge.deliver import envelope_heads, pipeline, section_memo
from otel_sentry_bridge.deliver.event_json import event_json
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
        # The event as its bytes say (the pipeline may hand over only the header's fields
        # with the JSON made already).
        produced.append(json.loads(kwargs["encode"](event)))
        return encode(event, **kwargs)

    monkeypatch.setattr(pipeline, "event_envelope", recording)
    envelope = envelope_heads.EnvelopeHeads.envelope

    def recording_heads(heads: Any, event: dict[str, Any], body: bytes) -> bytes:
        produced.append(json.loads(body))
        return envelope(heads, event, body)

    monkeypatch.setattr(envelope_heads.EnvelopeHeads, "envelope", recording_heads)
    yield produced
    problems = [(e.get("event_id"), relay_errors(e)) for e in produced]
    problems = [p for p in problems if p[1]]
    assert not problems, f"events rejected by sentry-relay: {problems}"


@pytest.fixture(autouse=True)
def section_memo_matches_the_whole_event_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every event a pipeline finishes section by section (from the memo or not) must be the
    same bytes as the whole-event path makes: checked on every event of every test."""
    encode = section_memo.SectionMemo.encode

    def checked(memo: section_memo.SectionMemo, event: dict[str, Any]) -> Any:
        got = encode(memo, event)
        if got is not None:
            whole = enforce_limits(scrub_event(event, memo._scrubber))
            assert got[0] == event_json(whole), "the section memo differs from the whole event"
            head = {k: whole[k] for k in section_memo.HEAD_FIELDS if k in whole}
            trace = (whole.get("contexts") or {}).get("trace") or {}
            if "trace_id" in trace:
                head["contexts"] = {"trace": {"trace_id": trace["trace_id"]}}
            assert got[1] == head, "the envelope header would differ"
        return got

    monkeypatch.setattr(section_memo.SectionMemo, "encode", checked)

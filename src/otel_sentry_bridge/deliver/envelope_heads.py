"""Error envelopes whose header is made once per kind of event.

An event's envelope header holds the DSN, the SDK and the dynamic sampling context: the same
for every event of one transaction, environment and release but for the event id, the send
time and the trace id. :class:`EnvelopeHeads` keeps the header's JSON for each such kind with
random tokens in those three places and puts the event's own values in. The bytes are those of
:func:`.envelope.event_envelope` (tests compare them); values it cannot put in that way (ids
that are not hex digits, fields that are not plain data) take that function.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from ..convert.context import sdk_info
from ..lru import Lru
from ..setup.dsn import Dsn
from .envelope import event_envelope, iso_utc

__all__ = ["EnvelopeHeads", "dynamic_sampling_context"]

_KINDS_KEPT = 64
_HEX_ID = re.compile(r"[0-9a-f]{32}")


def dynamic_sampling_context(event: Mapping[str, Any], dsn: Dsn | None) -> dict[str, Any] | None:
    """What Sentry samples traces by, from an event (``None`` without a trace id or a DSN)."""
    # before_send may have put anything here: no trace context, no sampling context.
    contexts = event.get("contexts")
    trace = contexts.get("trace") if isinstance(contexts, Mapping) else None
    if not isinstance(trace, Mapping) or not trace.get("trace_id") or dsn is None:
        return None
    context: dict[str, Any] = {
        "trace_id": trace["trace_id"],
        "public_key": dsn.public_key,
        "environment": event.get("environment"),
    }
    if event.get("release"):
        context["release"] = event["release"]
    if event.get("transaction"):
        context["transaction"] = event["transaction"]
    if event.get("type") == "transaction":
        context["sampled"] = "true"
    return context


class EnvelopeHeads:
    """Envelopes for one DSN; one owner (a pipeline) at a time."""

    def __init__(self, dsn: Dsn | None, now: Callable[[], datetime] | None = None) -> None:
        self._dsn = dsn
        self._now = now or _utc_now
        self._kept: Lru[tuple[Any, ...], bytes] = Lru(_KINDS_KEPT)
        self._event_id = secrets.token_hex(16)
        self._trace_id = secrets.token_hex(16)
        self._sent_at = "s" + secrets.token_hex(16)

    def envelope(self, event: Mapping[str, Any], body: bytes) -> bytes:
        """``event_envelope`` of ``event`` (its header's fields) with ``body`` as its JSON,
        sent now."""
        sent_at = self._now()
        trace = dynamic_sampling_context(event, self._dsn)
        event_id = event["event_id"]
        trace_id = None if trace is None else trace["trace_id"]
        if not _hex(event_id) or (trace_id is not None and not _hex(trace_id)):
            return self._made(event, trace, sent_at, lambda _: body)
        others = None if trace is None else tuple(i for i in trace.items() if i[0] != "trace_id")
        kind = (event.get("type") == "transaction", others)
        try:
            head = self._kept.use(kind)
        except TypeError:  # not hashable: not plain data
            return self._made(event, trace, sent_at, lambda _: body)
        if head is None:
            tokened = dict(event, event_id=self._event_id)
            tokened_trace = None if trace is None else {**trace, "trace_id": self._trace_id}
            whole = self._made(tokened, tokened_trace, sent_at, lambda _: b"")
            head = whole[: whole.rindex(b'"length":') + 9].replace(
                iso_utc(sent_at).encode(), self._sent_at.encode(), 1
            )
            for token in (self._event_id, self._trace_id, self._sent_at):
                if head.count(token.encode()) > 1:  # a field holds a token itself
                    return self._made(event, trace, sent_at, lambda _: body)
            self._kept.put(kind, head)
        head = head.replace(self._event_id.encode(), event_id.encode(), 1)
        head = head.replace(self._sent_at.encode(), iso_utc(sent_at).encode(), 1)
        if trace_id is not None:
            head = head.replace(self._trace_id.encode(), trace_id.encode(), 1)
        return b"".join((head, b"%d}\n" % len(body), body, b"\n"))

    def _made(
        self,
        event: Mapping[str, Any],
        trace: Mapping[str, Any] | None,
        sent_at: datetime,
        encode: Callable[[Mapping[str, Any]], bytes],
    ) -> bytes:
        return event_envelope(
            dict(event), dsn=self._dsn, sent_at=sent_at, sdk=sdk_info(), trace=trace, encode=encode
        )


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _hex(value: Any) -> bool:
    return type(value) is str and _HEX_ID.fullmatch(value) is not None

"""The worker-side pipeline: span -> events -> filters -> envelope -> transport; and, when
transactions are on, a batch of spans -> transaction -> envelope -> transport.

Runs only on the worker thread. Owns the state the pure core must not have: the recently-sent
signatures (cross-span dedupe), loss counters, and the transport.
"""

from __future__ import annotations

import logging
import platform
import random
import socket
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .. import attributes as attr
from ..capture.record import CaptureRecord, DirectCapture
from ..capture.store import CaptureStore
from ..capture.traceback_text import exception_attributes
from ..capture.transactions import TransactionBatch
from ..convert.breadcrumbs import span_breadcrumb
from ..convert.context import ConvertContext, sdk_info
from ..convert.event import build_event
from ..convert.filters import IgnoredTypes
from ..convert.frames import CodeLayout
from ..convert.limits import enforce_limits
from ..convert.model import EventView, SpanView
from ..convert.scrub import scrub_event, scrubber_for
from ..convert.sealed import unsealed
from ..convert.select import Identity, select_events
from ..convert.spans import held_attributes, plain_span_view, record_view, span_events, span_view
from ..convert.transaction import build_transaction
from ..offload.codec import error_parcel, plain, plain_record, plain_view
from ..offload.shipment import Shipment, TransactionShipment
from ..setup.config import Settings, before_send_takes_hint
from ..setup.dsn import Dsn
from ..warn_once import WarnOnce
from .compress import gzip_body, worth_gzip
from .envelope import event_envelope
from .envelope_heads import EnvelopeHeads, dynamic_sampling_context
from .event_json import event_json
from .section_memo import SectionMemo
from .sender import Delivery
from .source_files import SourceCache

if TYPE_CHECKING:  # not imported by a helper process, which never sees a span
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["Pipeline", "convert_context", "envelope_for"]

_log = logging.getLogger("otel_sentry_bridge")
_DEDUPE_SIZE = 4096
# How an error of a trace was reported: by one of our captures, or as a copy another
# instrumentation recorded without our event id.
_CAPTURED = "captured"
_ANONYMOUS = "anonymous"
# What the envelope and Sentry need of an event (limits.py never trims them either): put back
# from the event as built when before_send's result lacks them.
_REQUIRED_FIELDS = ("event_id", "timestamp", "platform", "level")


def _runtime() -> dict[str, str]:
    return {
        "name": platform.python_implementation(),
        "version": platform.python_version(),
    }


def convert_context(settings: Settings) -> ConvertContext:
    """The conversion's view of this process (reads ``sys.path`` and the host name once)."""
    return ConvertContext(
        settings=settings,
        layout=CodeLayout.current(settings.in_app_include, settings.in_app_exclude),
        read_source=SourceCache(),
        hostname=socket.gethostname(),
        runtime=_runtime(),
    )


def envelope_for(event: Mapping[str, Any], dsn: Dsn | None) -> bytes:
    """The wire form of one event, with its dynamic sampling context."""
    return event_envelope(
        dict(event),
        dsn=dsn,
        sent_at=datetime.now(timezone.utc),
        sdk=sdk_info(),
        trace=dynamic_sampling_context(event, dsn),
        encode=event_json,
    )


class Pipeline:
    """Callable on the worker thread with a ``ReadableSpan`` or a ready ``SpanView``."""

    def __init__(
        self,
        settings: Settings,
        dsn: Dsn | None,
        delivery: Delivery,
        capture_store: CaptureStore,
        warn: WarnOnce,
    ) -> None:
        self.settings = settings
        self._dsn = dsn
        self.delivery = delivery
        self._ignored = IgnoredTypes(settings.ignored_exceptions)
        self._ctx = convert_context(settings)
        self._store = capture_store
        self._warn = warn
        self._scrubber = scrubber_for(settings.denylist, settings.send_default_pii)
        self._sections = SectionMemo(self._scrubber)
        self._envelopes = EnvelopeHeads(dsn)
        # (trace id, capture id or signature) -> _CAPTURED / _ANONYMOUS, the newest last
        self._sent: OrderedDict[tuple[int, object], str] = OrderedDict()
        self._lock = threading.Lock()
        # (reason, category) -> events dropped; shared with the sender, sent as client reports
        self.lost: Counter[tuple[str, str]] = delivery.lost
        # How many items wait for the worker (set by the bridge that owns it): whether an
        # envelope may be sent on the worker thread itself depends on it (Delivery.submit).
        # None: never there (shutting down: what is left goes to the outbox and the spool).
        self.waiting: Callable[[], int | None] = lambda: 0
        # Envelopes made during batch(), handed to the delivery at its end; None outside.
        self._held: list[tuple[bytes, str]] | None = None
        # Read once: whether before_send takes sentry-sdk's (event, hint) or just (event).
        self._hint = settings.before_send is not None and before_send_takes_hint(
            settings.before_send
        )

    def __call__(
        self,
        item: ReadableSpan | DirectCapture | TransactionBatch | Shipment | TransactionShipment,
    ) -> None:
        if isinstance(item, (TransactionBatch, TransactionShipment)):
            self.send_transaction(item)
            return
        if not isinstance(item, Shipment):
            try:
                item = self.shipment(item)
            except Exception:
                # The span's errors could not be read at all: at least one error is lost.
                self._internal_loss()
                return
        self.convert(item)

    def shipment(self, item: ReadableSpan | DirectCapture, *, cheap: bool = False) -> Shipment:
        """What the conversion needs of ``item``: its view, the records our hooks left for
        it (taken from the store: each bridge converts a span once) and the trace's
        breadcrumbs so far. ``cheap``: on an application thread, a direct capture's
        traceback is the cheap text our hooks put on spans (without the source lines, which
        the conversion reads from the files anyway), not Python's full printout."""
        if isinstance(item, DirectCapture):
            view = self._direct_view(item, full=not cheap)
        else:
            view = span_view(item)
        view, records = self._records_of(view)
        span_crumbs, log_crumbs = self._crumbs(view.trace_id, view.events)
        return Shipment(view, records, log_crumbs, span_crumbs)

    def parcel(self, item: ReadableSpan | DirectCapture) -> tuple[Any, ...]:
        """``codec.plain(self.shipment(item, cheap=True))``, for the helper process: a
        finished span is read straight into the pipe's plain tuples, on the thread that ends
        it, without the views in between (a third less time)."""
        if isinstance(item, DirectCapture):
            return plain(self.shipment(item, cheap=True))
        context = item.context
        trace_id = context.trace_id if context else 0
        events, records, _ = self._take_records(
            context.span_id if context else 0,
            [(e.name, e.timestamp or 0, held_attributes(e.attributes)) for e in span_events(item)],
        )
        span_crumbs, log_crumbs = self._crumbs(trace_id, events)
        return error_parcel(
            plain_span_view(item, tuple(events)),
            {key: plain_record(record) for key, record in records.items()},
            log_crumbs,
            [plain_view(crumb) for crumb in span_crumbs],
        )

    def _crumbs(
        self, trace_id: int, events: Sequence[tuple[str, int, Any]]
    ) -> tuple[list[SpanView], list[dict[str, Any]] | None]:
        """The trace's outgoing calls (span breadcrumbs, when breadcrumbs are on) and log
        breadcrumbs, up to the last of the span's ``events`` (name, timestamp, attributes)."""
        store = self._store
        if not store.holds(trace_id):
            return [], None  # most traces: nothing recorded before their error
        until_ns = max([event[1] for event in events], default=0)
        span_crumbs = (
            [record_view(record) for record in store.spans(trace_id, until_ns)]
            if self.settings.max_breadcrumbs
            else []
        )
        return span_crumbs, store.breadcrumbs(trace_id, until_ns / 1e9)

    def convert(self, shipment: Shipment) -> None:
        """The events of one shipment: selected, built, filtered, encoded, handed over."""
        view = shipment.view
        try:
            selected = select_events(view, self._ctx.parse_cache)
        except Exception:
            self._internal_loss()
            return
        for one in selected:
            try:
                record = shipment.records.get(one.identity.capture_id or "")
                at_ns = one.event.timestamp_ns
                log_crumbs = shipment.log_crumbs
                if log_crumbs is not None:
                    at_s = at_ns / 1e9
                    log_crumbs = [c for c in log_crumbs if c["timestamp"] <= at_s]
                span_crumbs = [
                    span_breadcrumb(crumb, self._scrubber)
                    for crumb in shipment.span_crumbs
                    if (crumb.end_time_ns or 0) <= at_ns
                ]
                event = build_event(
                    view,
                    one,
                    self._ctx,
                    record=record,
                    log_crumbs=log_crumbs,
                    span_crumbs=span_crumbs,
                )
                self._process(view.trace_id, one.identity, event)
            except Exception:
                # A bug of ours, or data from before_send we cannot encode: this event is
                # lost, but counted and reported like any other loss, and the span's other
                # events still go.
                self._internal_loss()

    def _internal_loss(self) -> None:
        self.record_loss("internal_sdk_error")
        self._warn(
            "internal",
            "otel-sentry-bridge: failed to process an event; dropped "
            "(counted as internal_sdk_error)",
            exc_info=True,
        )

    @staticmethod
    def _direct_view(capture: DirectCapture, *, full: bool = True) -> SpanView:
        attributes = dict(capture.attributes)
        if capture.exception is not None:
            # ``full`` (the worker): with source lines. Else the cheap text, for the thread
            # that captured it to ship to the helper process.
            attributes.update(exception_attributes(capture.exception, full=full))
        # An exception object, or only its text (a log record of another instrumentation).
        has_exception = capture.exception is not None or attr.EXCEPTION_TYPE in attributes
        name = "exception" if has_exception else attr.LOG_EVENT
        return SpanView(
            trace_id=capture.trace_id,
            span_id=capture.span_id,
            name=capture.name,
            kind=capture.span_kind,
            attributes=dict(capture.span_attributes or {}),
            resource=dict(capture.resource or {}),
            events=(EventView(name, capture.timestamp_ns, attributes),),
        )

    def _records_of(self, view: SpanView) -> tuple[SpanView, dict[str, CaptureRecord]]:
        """The view without what is recorded for tracing only, and the records our hooks
        left for its events (see :meth:`_take_records`)."""
        events, records, changed = self._take_records(view.span_id, view.events)
        if not changed:
            return view, records
        return view._replace(events=tuple(EventView._make(event) for event in events)), records

    def _take_records(
        self, span_id: int, events: Iterable[tuple[str, int, Mapping[str, Any]]]
    ) -> tuple[list[tuple[str, int, Mapping[str, Any]]], dict[str, CaptureRecord], bool]:
        """The records our hooks left for a span's events (name, timestamp, attributes), by
        event id, taken from the store: each bridge converts a span once. An exception
        another instrumentation recorded gets the event id of the record waiting for it; one
        recorded for tracing only (``send=False``) is left out. Also: the events as they are
        to be converted, and whether they differ from those given."""
        records: dict[str, CaptureRecord] = {}
        out: list[tuple[str, int, Mapping[str, Any]]] = []
        changed = False
        store = self._store
        for event in events:
            name, timestamp_ns, attributes = event
            event_id = attributes.get(attr.EVENT_ID)
            if name == "exception" and event_id is None:
                key = (
                    span_id,
                    str(attributes.get(attr.EXCEPTION_TYPE, "")),
                    str(attributes.get(attr.EXCEPTION_MESSAGE, "")),
                )
                expected = store.take_expected(key)
                if expected is not None:
                    changed = True
                    if not expected.send:
                        continue
                    records[expected.event_id] = expected
                    event = (
                        name,
                        timestamp_ns,
                        {**attributes, attr.EVENT_ID: expected.event_id},
                    )
            elif isinstance(event_id, str):
                record = store.take(event_id)
                if record is not None:
                    records[event_id] = record
            out.append(event)
        return out, records, changed

    @property
    def sent_count(self) -> int:
        return self.delivery.sent

    def record_loss(self, reason: str, quantity: int = 1, category: str = "error") -> None:
        self.delivery.record_loss(reason, category, quantity)

    def _seen(self, trace_id: int, identity: Identity) -> bool:
        """True when this error of the trace was already reported from another span.

        A capture of ours is one error (its id; a loop logging the same line twice is two). A
        copy without our id (an exception recorded again on each span it passes through) is
        the same error as anything of the trace with its signature; a capture whose exception
        was already sent as such a copy (a child span recorded it first) is skipped too.
        """
        # The signature's hash, not the signature: it holds the whole message, and 4,096
        # remembered 5 MB messages would hold gigabytes after they were sent (a collision
        # of 64-bit hashes within one trace is not a concern).
        by_signature = (trace_id, hash(identity.signature))
        with self._lock:
            if identity.capture_id is None:
                if by_signature in self._sent:
                    self._sent.move_to_end(by_signature)
                    return True
                self._remember(by_signature, _ANONYMOUS)
                return False
            by_id = (trace_id, identity.capture_id)
            if by_id in self._sent or self._sent.get(by_signature) == _ANONYMOUS:
                return True
            self._remember(by_id, _CAPTURED)
            if by_signature not in self._sent:
                self._remember(by_signature, _CAPTURED)
        return False

    def _remember(self, key: tuple[int, object], how: str) -> None:
        self._sent[key] = how
        if len(self._sent) > _DEDUPE_SIZE:
            self._sent.popitem(last=False)

    def _ignored_event(self, event: Mapping[str, Any]) -> bool:
        values = (event.get("exception") or {}).get("values") or []
        if not values:
            return False
        main = values[-1]
        module = main.get("module")
        qualified = f"{module}.{main['type']}" if module else str(main.get("type", ""))
        return self._ignored.matches(qualified)

    def _process(self, trace_id: int, identity: Identity, event: dict[str, Any]) -> None:
        if self._ignored_event(event) or self._seen(trace_id, identity):
            return
        settings = self.settings
        if settings.sample_rate < 1.0 and random.random() >= settings.sample_rate:
            self.record_loss("sample_rate")
            return
        if settings.before_send is not None:
            # User code may change the event in place: it gets frames of its own.
            result = self._before_send(settings.before_send, unsealed(event))
            if result is None:
                self.record_loss("before_send")
                return
            event = result
        self.send(event)

    def _before_send(
        self, before_send: Callable[..., Any], event: dict[str, Any]
    ) -> dict[str, Any] | None:
        """What ``before_send`` makes of ``event``; None when the event is to be dropped."""
        # Kept aside: before_send may empty the event in place.
        required = {key: event[key] for key in _REQUIRED_FIELDS if key in event}
        try:
            # The hint is empty: most events are built from span attributes, with no
            # exception or log record object left to hand over; what we know is in the event.
            result = before_send(event, {}) if self._hint else before_send(event)
        except Exception:
            # Dropped, as sentry-sdk does: before_send is often the privacy filter, and an
            # event it could not filter must not go out as it is.
            self._warn(
                "before_send raised",
                "otel-sentry-bridge: before_send raised; the events it fails on are dropped",
                exc_info=True,
            )
            return None
        if result is None:
            return None
        if not isinstance(result, Mapping):
            self._warn(
                "before_send result",
                "otel-sentry-bridge: before_send must return the event or None, not "
                f"{type(result).__name__}; such events are dropped",
            )
            return None
        out = dict(result)
        for key, value in required.items():
            if out.get(key) is None:
                out[key] = value
        return out

    def send(self, event: dict[str, Any]) -> bool:
        """Scrub, bound, encode and hand over to the delivery (which may send it here):
        section by section with the memo while the event is far below the size limit, else
        as a whole (measured and trimmed as one)."""
        finished = self._sections.encode(event)
        if finished is None:
            event = enforce_limits(scrub_event(event, self._scrubber))
            body = event_json(event)
        else:
            body, event = finished  # the event's JSON, and what its envelope header reads
        return self._hand_over(self._encode(event, body), "error")

    @staticmethod
    def transaction_shipment(batch: TransactionBatch) -> TransactionShipment:
        """A transaction's spans read into views (plain data, for the helper process)."""
        return TransactionShipment(
            span_view(batch.root),
            tuple(span_view(span, details=False) for span in batch.spans),
            batch.dropped,
        )

    def send_transaction(self, batch: TransactionBatch | TransactionShipment) -> bool:
        """Build, scrub, bound, encode and hand over one transaction (category
        ``transaction``: its own rate limits and loss counts)."""
        if isinstance(batch, TransactionBatch):
            batch = self.transaction_shipment(batch)
        if batch.dropped:
            self.record_loss("buffer_overflow", batch.dropped, category="span")
        if self.delivery.is_rate_limited("transaction"):
            self.record_loss("ratelimit_backoff", category="transaction")
            return False  # not even built: the server said it does not want any now
        event = build_transaction(batch.root, list(batch.spans), self._ctx, self._scrubber)
        event = enforce_limits(scrub_event(event, self._scrubber))
        return self._hand_over(self._encode(event, event_json(event)), "transaction")

    def batch(self, items: Sequence[Shipment | TransactionShipment]) -> None:
        """Several items at once (what the helper process read in one go): all converted
        first, then all handed to the delivery in their order. Each stage's code and data
        stay warm in the caches: under sustained errors about a quarter less CPU per error
        than converting and sending them one by one."""
        held: list[tuple[bytes, str]] = []
        self._held = held
        try:
            for item in items:
                self(item)
        finally:
            self._held = None
            for data, category in held:
                self.delivery.submit(data, category, waiting=self.waiting())

    def _hand_over(self, data: bytes, category: str) -> bool:
        held = self._held
        if held is not None:
            held.append((data, category))
            return True
        return self.delivery.submit(data, category, waiting=self.waiting())

    def _encode(self, event: Mapping[str, Any], body: bytes) -> bytes:
        envelope = self._envelopes.envelope(event, body)
        # Small ones go as they are (compress.py says why), unless they are to wait: in a
        # burst or an outage the outbox (bounded in bytes) and the spool hold three times as
        # many compressed. Gzipped here, not on the sender, for that reason.
        if self.settings.gzip and (worth_gzip(envelope) or self.delivery.backlogged):
            return gzip_body(envelope)
        return envelope

    def close(self) -> None:
        self.delivery.close()

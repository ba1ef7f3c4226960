"""Opt-in Sentry transactions: collect the spans of sampled traces until their local root ends.

Sampling is decided once per trace, when its *local root* starts (a span without a parent,
or whose parent came from another process):

- with a remote parent, its ``sampled`` flag decides (the upstream service already chose;
  following it keeps the trace whole in Sentry);
- otherwise the trace id decides: the transaction is sent when its low 56 bits (the random
  part of a W3C trace id) are below ``traces_sample_rate * 2**56``. Every process configured
  with the same rate thus makes the same choice for the same trace.

Only spans the OpenTelemetry sampler recorded reach a span processor, so transactions are a
subset of the traces the tracing backend receives.

Thread rules: ``on_start``/``on_end`` run on the threads that start and end spans. Spans of
traces not being collected cost one dict lookup; collected ones a lock and a list append.
Memory is bounded three ways: spans per transaction, open traces, spans held in total. What
does not fit is dropped and counted (``buffer_overflow``).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not imported by a helper process, which never sees a span
    from opentelemetry.sdk.trace import ReadableSpan, Span
    from opentelemetry.trace import SpanContext

__all__ = ["TransactionBatch", "TransactionCollector", "is_sampled"]

_RANDOM_BITS = 56
_RANDOM_MASK = (1 << _RANDOM_BITS) - 1

LossCallback = Callable[[str, str, int], None]  # (reason, category, quantity)


def is_sampled(trace_id: int, parent: SpanContext | None, rate: float) -> bool:
    """Whether the trace of a local root with this ``parent`` becomes a transaction."""
    if rate <= 0.0:
        return False
    if parent is not None and parent.is_remote:
        return bool(parent.trace_flags.sampled)
    return (trace_id & _RANDOM_MASK) < rate * (1 << _RANDOM_BITS)


@dataclass(frozen=True)
class TransactionBatch:
    """A local root span and the spans of its trace that ended before it (worker item)."""

    root: ReadableSpan
    spans: tuple[ReadableSpan, ...]
    dropped: int = 0  # spans left out by a bound


@dataclass
class _Open:
    root_span_id: int
    spans: list[ReadableSpan] = field(default_factory=list)
    dropped: int = 0


class TransactionCollector:
    def __init__(
        self,
        rate: float,
        *,
        record_loss: LossCallback,
        max_spans: int = 1000,
        max_traces: int = 256,
        max_held_spans: int = 10000,
    ) -> None:
        self.rate = rate
        self._record_loss = record_loss
        self._max_spans = max_spans
        self._max_traces = max_traces
        self._max_held = max_held_spans
        self._reset()
        # A forked child must not wait on a lock another thread of the parent held, nor send
        # the parent's traces. Through a weak reference: the hook must not keep us alive.
        ref = weakref.WeakMethod(self._reset)
        os.register_at_fork(after_in_child=lambda: (m := ref()) is not None and m())

    def _reset(self) -> None:
        self._held = 0
        self._lock = threading.Lock()
        self._open: OrderedDict[int, _Open] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    def on_start(self, span: Span) -> None:
        parent = span.parent
        if parent is not None and not parent.is_remote:
            return  # not a local root: its trace was decided when the root started
        context = span.get_span_context()
        if not is_sampled(context.trace_id, parent, self.rate):
            if parent is None:  # our own rate decided (not the upstream service)
                self._record_loss("sample_rate", "transaction", 1)
            return
        evicted: _Open | None = None
        with self._lock:
            if context.trace_id in self._open:
                return  # a second local root in the trace: its spans join the first
            if len(self._open) >= self._max_traces:
                _, evicted = self._open.popitem(last=False)  # the oldest: likely never ends
                self._held -= len(evicted.spans)
            self._open[context.trace_id] = _Open(context.span_id)
        if evicted is not None:
            self._record_loss("buffer_overflow", "transaction", 1)

    def on_end(self, span: ReadableSpan) -> TransactionBatch | None:
        """Keep ``span`` if its trace is collected; the batch once the local root ends."""
        context = span.context
        if context is None:
            return None
        trace_id = context.trace_id
        if trace_id not in self._open:  # the common case: no lock
            return None
        with self._lock:
            pending = self._open.get(trace_id)
            if pending is None:
                return None
            if context.span_id == pending.root_span_id:
                del self._open[trace_id]
                self._held -= len(pending.spans)
                return TransactionBatch(span, tuple(pending.spans), pending.dropped)
            if len(pending.spans) < self._max_spans and self._held < self._max_held:
                pending.spans.append(span)
                self._held += 1
            else:
                pending.dropped += 1
        return None

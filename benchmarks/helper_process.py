"""A measurement, not a product: the bridge's conversion and delivery moved to a helper
process, for configuration C-helper (sustained traffic only).

The issue on performance asks whether doing the work out of the process pays: the helper's
CPU counts, but it runs on another core, without the GIL it would otherwise share with the
request threads. Here the request thread does what it does in C (capture, span event,
``on_end`` scan); then, in place of the worker's queue, the span is read into the plain
``SpanView`` the conversion takes, with the capture records it needs, pickled and written to a
pipe. A spawned process (started once, before the timed region) reads them and runs the rest
of the worker's pipeline (select, build, scrub, limits, encode, HTTP) with its own bridge.

Left out, so the helper does a little less than C's worker: breadcrumbs (the benchmark app
makes none) and transactions (off). None of the reliability the issue asks of a real helper
(not outliving its parent, no loss on ``kill -9``, fork servers) is here.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

_FLUSH = b""


def _serve(conn: Connection, dsn: str) -> None:
    """The helper process: a bridge of its own, fed views and records through ``conn``."""
    from otel_sentry_bridge import SentrySpanProcessor
    from otel_sentry_bridge.convert.event import build_event
    from otel_sentry_bridge.convert.select import select_events

    processor = SentrySpanProcessor(dsn=dsn)
    pipeline = processor.pipeline
    ctx = pipeline._ctx
    while True:
        try:
            data = conn.recv_bytes()
        except EOFError:
            return
        if data == _FLUSH:
            processor.force_flush(60_000)
            conn.send_bytes(b"flushed")
            continue
        view, records = pickle.loads(data)
        for one in select_events(view, ctx.parse_cache):
            record = records.get(one.identity.capture_id or "")
            event = build_event(view, one, ctx, record=record, log_crumbs=(), span_crumbs=())
            pipeline._process(view.trace_id, one.identity, event)


def install(processor: Any, dsn: str) -> Callable[[float], bool]:
    """Starts the helper and points the bridge's worker queue at it; returns ``flush``."""
    from otel_sentry_bridge.capture.record import DirectCapture
    from otel_sentry_bridge.capture.transactions import TransactionBatch
    from otel_sentry_bridge.convert.spans import span_view

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    helper = context.Process(target=_serve, args=(child, dsn), daemon=True)
    helper.start()
    child.close()
    pipeline = processor.bridge.pipeline

    def submit(item: Any) -> bool:
        if isinstance(item, TransactionBatch):
            return True
        view = pipeline._direct_view(item) if isinstance(item, DirectCapture) else span_view(item)
        view, records = pipeline._records_of(view)
        parent.send_bytes(pickle.dumps((view, records), protocol=pickle.HIGHEST_PROTOCOL))
        return True

    processor.bridge._worker.submit = submit

    def flush(timeout: float) -> bool:
        parent.send_bytes(_FLUSH)
        return parent.poll(timeout) and parent.recv_bytes() == b"flushed"

    return flush

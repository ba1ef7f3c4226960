"""The measured configurations, each built inside its own subprocess.

- A: bare Django (WSGIHandler, DEBUG=False, three middlewares).
- B: A + opentelemetry-instrumentation-django + SDK provider + BatchSpanProcessor to a
  discarding exporter.
- B-floor: B, plus the least an in-process reporter can do per error (``floor_reporter``:
  hooks that queue the exception, a thread that encodes its frames and trace context and
  POSTs them); under sustained traffic, a yardstick for the total CPU per error.
- B-floor-helper: the same with the thread's work in a spawned helper process fed through a
  pipe (its CPU counted): the least a reporter with a helper process costs per error.
- C: B + this bridge (SentrySpanProcessor, Django signal hook, SpanEventHandler on the root
  logger) sending over HTTP to the loopback receiver.
- B-post: B, plus the least that any in-process error sender does after a request that made
  an error: hand a ready envelope to another thread, which POSTs it to the receiver (one
  keep-alive ``http.client`` connection), and wait until it is answered. C - B-post is the
  bridge's cost above that floor.
- C-capture: C with the worker's share switched off (spans are scanned in ``on_end`` and then
  dropped): the capture work done on the request thread alone, without the after-effects of
  the background conversion and delivery on the next request.
- C-helper: C with ``helper_process=True``: conversion and delivery in the bridge's spawned
  helper process, fed through a pipe; under sustained traffic only.
- C-auto: C with the default settings (``helper_process`` "auto": in process until errors
  come in a storm, then in a helper process); under sustained traffic only. (C itself is
  ``helper_process=False``: what the default does at a few errors a second.)
- D: A + sentry-sdk (DjangoIntegration + LoggingIntegration, errors only, tracing off) with a
  discarding transport; D-http: the same with its real HTTP transport to the receiver.

Every configuration has a NullHandler on the root logger, so that ``logger.exception`` never
falls through to logging's last-resort stderr handler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .common import DSN_KEY, dsn, sample_envelope_gzip

CONFIGS = (
    "A",
    "B",
    "B-post",
    "B-floor",
    "B-floor-helper",
    "C",
    "C-capture",
    "C-helper",
    "C-auto",
    "D",
    "D-http",
)
# Measured on an idle process, one request at a time (the floors, C-helper and C-auto only
# under sustained traffic).
IDLE_CONFIGS = tuple(
    config
    for config in CONFIGS
    if config not in ("B-floor", "B-floor-helper", "C-helper", "C-auto")
)
# Endpoints whose requests make one error event each (``settle`` is told which one ran).
ERROR_ENDPOINTS = frozenset({"boom", "logerr"})
Handler = Callable[[dict[str, Any], Callable[..., Any]], Any]


def _noop(endpoint: str) -> None:
    return None


@dataclass
class Setup:
    handler: Handler
    # Drains background work between timed requests (untimed), so each request is measured
    # on an otherwise idle process; the worker's own cost is measured separately. Called with
    # the endpoint the request went to.
    settle: Callable[[str], None] = _noop
    flush: Callable[[float], bool] = lambda timeout: True
    info: Callable[[], dict[str, Any]] = field(default=lambda: {})


def build(config: str, port: int) -> Setup:
    if config not in CONFIGS:
        raise SystemExit(f"unknown configuration {config!r}; one of {', '.join(CONFIGS)}")
    from . import djangoapp

    djangoapp.configure()
    if config.startswith("D"):
        return _sentry_sdk(config, port)
    import django

    django.setup(set_prefix=False)
    logging.getLogger().addHandler(logging.NullHandler())
    if config == "A":
        return Setup(handler=_wsgi_handler())
    if config == "B-post":
        setup = _otel(with_bridge=False, port=port)
        setup.settle = _post_after_errors(port)
        return setup
    if config in ("B-floor", "B-floor-helper"):
        from . import floor_reporter

        setup = _otel(with_bridge=False, port=port)
        install = floor_reporter.install if config == "B-floor" else floor_reporter.install_helper
        setup.flush = install(port)
        return setup
    return _otel(
        with_bridge=config.startswith("C"),
        port=port,
        deliver=config != "C-capture",
        helper={"C-helper": True, "C-auto": "auto"}.get(config, False),
    )


def _wsgi_handler() -> Handler:
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIHandler()  # type: ignore[no-any-return]


def _otel(
    *, with_bridge: bool, port: int, deliver: bool = True, helper: bool | str = False
) -> Setup:
    from opentelemetry import trace
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class DiscardExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardExporter()))
    processor = None
    if with_bridge:
        from otel_sentry_bridge import SentrySpanProcessor

        processor = SentrySpanProcessor(dsn=dsn(port), helper_process=helper)
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument(tracer_provider=provider)  # before the handler is built
    if processor is None:
        return Setup(handler=_wsgi_handler())

    if not deliver:
        # Benchmark-only: what the request thread hands over is counted and dropped, so the
        # worker and sender never run between the timed requests.
        handed_over = {"spans": 0}

        def count_only(item: Any) -> bool:
            handed_over["spans"] += 1
            return True

        processor.bridge._worker.submit = count_only  # type: ignore[method-assign]

    from otel_sentry_bridge.capture.log_handler import SpanEventHandler
    from otel_sentry_bridge.django import install

    install()
    logging.getLogger().addHandler(SpanEventHandler())
    bridge = processor

    def info() -> dict[str, Any]:
        lost = {f"{reason}/{category}": n for (reason, category), n in bridge.pipeline.lost.items()}
        extra = {} if deliver else {"handed_over": handed_over["spans"]}
        return {"bridge_sent": bridge.pipeline.sent_count, "bridge_lost": lost, **extra}

    def settle(endpoint: str) -> None:
        bridge.force_flush(10_000)

    def flush(timeout: float) -> bool:
        return bridge.force_flush(int(timeout * 1000))

    return Setup(handler=_wsgi_handler(), settle=settle, flush=flush, info=info)


def _sentry_sdk(config: str, port: int) -> Setup:
    import django
    import sentry_sdk
    from sentry_sdk.envelope import Envelope
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration
    from sentry_sdk.transport import Transport

    counted = {"events": 0}

    class DiscardTransport(Transport):
        """Counts and drops: what sentry-sdk does on the request thread, without I/O."""

        def capture_envelope(self, envelope: Envelope) -> None:
            if envelope.get_event() is not None:
                counted["events"] += 1

    options: dict[str, Any] = {
        "dsn": dsn(port) if config == "D-http" else dsn(1),
        "integrations": [
            DjangoIntegration(),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
        "default_integrations": True,
        "traces_sample_rate": None,  # errors only
    }
    if config == "D":
        options["transport"] = DiscardTransport
    sentry_sdk.init(**options)
    django.setup(set_prefix=False)
    logging.getLogger().addHandler(logging.NullHandler())
    handler = _wsgi_handler()  # after init: sentry-sdk patches WSGIHandler.__call__
    if config == "D":
        return Setup(handler=handler, info=lambda: {"sdk_events": counted["events"]})

    def flush(timeout: float) -> bool:
        sentry_sdk.flush(timeout=timeout)
        return True

    return Setup(handler=handler, settle=lambda endpoint: sentry_sdk.flush(timeout=10), flush=flush)


def _post_after_errors(port: int) -> Callable[[str], None]:
    """``settle`` for B-post: after an error endpoint, one envelope handed to a sender thread
    and POSTed to the receiver, waited for. No conversion, no serialisation, no compression:
    only the thread hand-off and the HTTP exchange that delivering any error takes."""
    import http.client
    import queue
    import threading

    headers = {
        "Content-Type": "application/x-sentry-envelope",
        "Content-Encoding": "gzip",
        "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={DSN_KEY}",
    }
    body = sample_envelope_gzip()
    requests: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    answers: queue.SimpleQueue[int] = queue.SimpleQueue()

    def sender() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            body = requests.get()
            conn.request("POST", "/api/1/envelope/", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            answers.put(response.status)

    threading.Thread(target=sender, name="bench-post", daemon=True).start()

    def settle(endpoint: str) -> None:
        if endpoint in ERROR_ENDPOINTS:
            requests.put(body)
            if answers.get(timeout=10) != 200:
                raise SystemExit("B-post: the receiver did not accept the envelope")

    return settle

"""One OTel-instrumented Django for the whole in-process test session.

Django and the OTel Django instrumentation are process-wide, so they are set up once; each
test plugs its own span processor in through :class:`SwitchableProcessor`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class SwitchableProcessor(SpanProcessor):
    """Forwards to whichever processor the current test installed."""

    def __init__(self) -> None:
        self.current: SpanProcessor | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.current is not None:
            self.current.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.current is not None:
            self.current.on_end(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.current.force_flush(timeout_millis) if self.current is not None else True


@dataclass
class InstrumentedDjango:
    provider: TracerProvider
    exporter: InMemorySpanExporter
    switch: SwitchableProcessor

    @contextmanager
    def processor(self, processor: SpanProcessor) -> Iterator[SpanProcessor]:
        from otel_sentry_bridge.django import install

        # The AppConfig connected the signal hook at setup, but a test that uninstruments the
        # zero-code instrumentor since then has disconnected it. (Idempotent.)
        install()
        self.exporter.clear()
        self.switch.current = processor
        try:
            yield processor
        finally:
            self.switch.current = None
            processor.shutdown()


@pytest.fixture(scope="session")
def instrumented_django() -> Iterator[InstrumentedDjango]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.djangoapp.settings")
    import django

    django.setup()
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    provider = TracerProvider(resource=Resource.create({"service.name": "shop-tests"}))
    exporter = InMemorySpanExporter()
    switch = SwitchableProcessor()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(switch)
    DjangoInstrumentor().instrument(tracer_provider=provider)
    try:
        yield InstrumentedDjango(provider, exporter, switch)
    finally:
        DjangoInstrumentor().uninstrument()
        provider.shutdown()

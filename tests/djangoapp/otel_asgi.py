"""ASGI entry for the real-server tests with OpenTelemetry configured by hand, as a user would
without ``opentelemetry-instrument``: errors to SENTRY_DSN, spans to
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT when it is set.

Two switches for the tests: ``TEST_ASGI_MIDDLEWARE=1`` also wraps the application in the OTel
ASGI middleware, which then owns the SERVER span (the Django span becomes its child);
``TEST_HIDE_ASGI_INSTRUMENTATION=1`` makes opentelemetry-instrumentation-asgi unimportable,
as on a machine where it is not installed.
"""

import logging
import os
import sys

if os.environ.get("TEST_HIDE_ASGI_INSTRUMENTATION") == "1":
    sys.modules["opentelemetry.instrumentation.asgi"] = None  # type: ignore[assignment]

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.capture.log_handler import SpanEventHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.djangoapp.asgi_settings")

provider = TracerProvider()
if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
provider.add_span_processor(SentrySpanProcessor())  # SENTRY_DSN from the environment
trace.set_tracer_provider(provider)
DjangoInstrumentor().instrument()

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
if os.environ.get("TEST_ASGI_MIDDLEWARE") == "1":
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    application = OpenTelemetryMiddleware(application)
logging.basicConfig()  # the bridge's own warnings to stderr, where the tests read them
logging.getLogger().addHandler(SpanEventHandler())
logging.getLogger("shop").setLevel(logging.INFO)

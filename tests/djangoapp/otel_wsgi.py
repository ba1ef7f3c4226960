"""WSGI entry for the real-server tests: OpenTelemetry configured by hand, as a user would
without ``opentelemetry-instrument`` (the sampler comes from OTEL_TRACES_SAMPLER)."""

import logging
import os

from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.trace import TracerProvider

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.capture.log_handler import SpanEventHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.djangoapp.settings")

provider = TracerProvider()
provider.add_span_processor(SentrySpanProcessor())  # SENTRY_DSN from the environment
trace.set_tracer_provider(provider)
DjangoInstrumentor().instrument()

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
logging.getLogger().addHandler(SpanEventHandler())
logging.getLogger("shop").setLevel(logging.INFO)

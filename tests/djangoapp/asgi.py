"""ASGI entry for uvicorn (``uvicorn tests.djangoapp.asgi:application``): no OpenTelemetry code,
``opentelemetry-instrument`` brings it all."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.djangoapp.asgi_settings")
application = get_asgi_application()

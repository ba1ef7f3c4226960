"""ASGI entry point for uvicorn (``uvicorn shop.asgi:application``) and other ASGI servers.

Under ``opentelemetry-instrument`` the Django instrumentation traces ASGI requests only when
``opentelemetry-instrumentation-asgi`` is installed (see requirements.txt).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

application = get_asgi_application()

"""The shop's Celery app. Its worker is instrumented like the web process, with no code:

    cd examples/shop
    opentelemetry-instrument celery -A shop worker --loglevel=INFO

A task that fails for good then reaches Sentry in the trace of the request that enqueued it
(see ``tasks.py`` and the ``/tasks/<name>/`` view).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop", include=["shop.tasks"])
# CELERY_* names in shop/settings.py (the broker URL comes from CELERY_BROKER_URL).
app.config_from_object("django.conf:settings", namespace="CELERY")

"""Settings for the example shop: no database, no sessions, plain console logging.

Nothing here mentions OpenTelemetry or Sentry: ``opentelemetry-instrument`` and the
``SENTRY_*``/``OTEL_*`` environment variables do all of it (see examples/README.md).
"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "").lower() in {"1", "true", "yes", "on"}
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"

# The shop keeps its data in memory: no models, no database, no migrations to run. It is an
# app itself for its templates (shop/templates/) and its management command (`crash`).
INSTALLED_APPS: list[str] = ["shop"]
DATABASES: dict[str, dict[str, str]] = {}
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

USE_TZ = True

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        # Django then keeps where a template failed (file, line, the lines around it), which
        # Sentry shows as the template's frame. Without it (the default when DEBUG is off),
        # a template error's event has only the Python frames of Django's template engine.
        "OPTIONS": {"debug": True},
    }
]

# Celery (shop/celery.py, shop/tasks.py): the broker the views enqueue to and the worker reads.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "loggers": {
        # propagate=False, as many projects do to avoid duplicate lines: the records never
        # reach the root logger, yet the bridge still turns this logger's errors into events.
        "shop": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django": {"handlers": ["console"], "level": "INFO"},
    },
}

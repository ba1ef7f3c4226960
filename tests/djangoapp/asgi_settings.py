"""The test project served over ASGI: the same settings, with the async views routed too."""

from .settings import *  # noqa: F403

ROOT_URLCONF = "tests.djangoapp.asgi_urls"
# INFO lines of the views become breadcrumbs (the root logger stays at WARNING).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"shop": {"level": "INFO"}},
}

"""Celery integration: failed tasks become Sentry events in the trace of whoever enqueued them.

The zero-code instrumentor calls :func:`install` when Celery is installed. Configuring
OpenTelemetry by hand, call it once in the worker (for example next to the Celery app).
"""

from ..capture.celery_hooks import install, uninstall

__all__ = ["install", "uninstall"]

"""A plain Celery app (no Django) for the in-process worker tests."""

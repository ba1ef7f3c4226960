"""``django-admin crash``: a management command that fails, as a broken cron job does.

Found only with ``tests.djangoapp`` in ``INSTALLED_APPS`` (tests/e2e/test_excepthooks.py adds
it in a settings module of its own).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class NightlyJobFailed(Exception):
    pass


class Command(BaseCommand):
    help = "Raise an exception that escapes the command."

    def handle(self, *args: Any, **options: Any) -> None:
        raise NightlyJobFailed("the nightly job failed")

"""``python manage.py crash``: a nightly job that fails, as a cron job's command does.

Run under ``opentelemetry-instrument`` (with the same environment as the web process), the
exception that escapes it reaches Sentry as one unhandled error (mechanism ``excepthook``)
before Python prints the traceback and the command exits with status 1, as it always did:

    cd examples/shop
    opentelemetry-instrument python manage.py crash
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

# What a supplier's stock feed looks like: "sku;quantity" per line.
FEED = ("KB-101;12", "MS-202;40", "SC-303;")


class StockFeedError(Exception):
    """A line of the supplier's stock feed cannot be read."""


def _parse_line(number: int, line: str) -> tuple[str, int]:
    sku, _, quantity = line.partition(";")
    try:
        return sku, int(quantity)
    except ValueError as exc:
        raise StockFeedError(f"line {number} of the stock feed has no quantity: {line!r}") from exc


def _import_feed(lines: tuple[str, ...]) -> dict[str, int]:
    return dict(_parse_line(number, line) for number, line in enumerate(lines, start=1))


class Command(BaseCommand):
    help = "Import the supplier's stock feed; its third line is broken, so this always fails."

    def handle(self, *args: Any, **options: Any) -> None:
        stock = _import_feed(FEED)
        self.stdout.write(f"imported {len(stock)} products")

"""Tasks that fail in each way the Celery hooks must handle. The broker is set by the tests."""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

app = Celery("celeryapp", set_as_current=False)
app.conf.update(
    task_ignore_result=True,
    # The in-process worker must leave pytest's logging alone.
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

# Fake secrets that no event may show.
CARD_TOKEN = "tok_9f8e7d6c5b4a"
API_KEY = "ak_live_0123456789"


class CardDeclined(Exception):
    """An expected outcome, listed in the task's ``throws``."""


class GatewayTimeout(Exception):
    pass


def _call_gateway(order_id: int) -> None:
    raise GatewayTimeout(f"gateway timed out charging order {order_id}")


@app.task(name="celeryapp.charge")
def charge(order_id: int, card_token: str, amount: int, api_key: str = "", **_: Any) -> None:
    _call_gateway(order_id)


@app.task(name="celeryapp.decline", throws=(CardDeclined,))
def decline(order_id: int) -> None:
    raise CardDeclined(f"card declined for order {order_id}")


@app.task(name="celeryapp.flaky", bind=True, max_retries=2)
def flaky(self: Any, order_id: int) -> None:
    try:
        raise ConnectionError(f"stock service unreachable for order {order_id}")
    except ConnectionError as exc:
        raise self.retry(exc=exc, countdown=0) from exc


@app.task(name="celeryapp.slow")
def slow() -> None:
    # What the prefork pool raises inside a task at its soft time limit (the solo pool of the
    # in-process worker has no timer; the e2e test runs a real limit).
    raise SoftTimeLimitExceeded()


@app.task(name="celeryapp.decline_one", throws=CardDeclined)  # a class, not a tuple
def decline_one(order_id: int) -> None:
    raise CardDeclined(f"card declined for order {order_id}")


class StockLocked(Exception):
    """Holds a lock, which does not pickle: Celery hands ``task_failure`` (and the OTel
    instrumentation) an ``UnpickleableExceptionWrapper`` in its place."""

    def __init__(self, message: str, lock: Any) -> None:
        super().__init__(message)
        self.lock = lock


class LockedValueError(ValueError):
    """Does not pickle either, but has a base class that does: Celery sends a ``ValueError``."""

    def __init__(self, message: str, lock: Any) -> None:
        super().__init__(message)
        self.lock = lock


def _lock_stock(order_id: int) -> None:
    raise StockLocked(f"stock locked for order {order_id}", threading.Lock())


@app.task(name="celeryapp.reserve")
def reserve(order_id: int) -> None:
    _lock_stock(order_id)


@app.task(name="celeryapp.reserve_value")
def reserve_value(order_id: int) -> None:
    raise LockedValueError(f"stock value locked for order {order_id}", threading.Lock())


@app.task(name="celeryapp.reserve_expected", throws=(StockLocked,))
def reserve_expected(order_id: int) -> None:
    _lock_stock(order_id)

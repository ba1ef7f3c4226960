"""Background tasks of the shop, run by a Celery worker. Each one fails the way real tasks do;
its docstring says what Sentry shows for it (see also examples/README.md)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from celery.utils.log import get_task_logger

from .celery import app

logger = get_task_logger(__name__)


class GatewayTimeout(Exception):
    """The payment gateway did not answer in time."""


class CardDeclined(Exception):
    """The bank said no: an answer the shop expects, not a bug."""


def _call_gateway(order_id: int, card_token: str, amount_cents: int) -> None:
    raise GatewayTimeout(f"payment gateway timed out for order {order_id}")


@app.task
def charge_card(order_id: int, card_token: str, amount_cents: int, api_key: str = "") -> None:
    """Fails with GatewayTimeout: one unhandled Sentry event (mechanism ``celery``) in the trace
    of the request that enqueued it, with the task's name, id, retries and arguments, where
    ``card_token`` and ``api_key`` show as ``[Filtered]``; the INFO line is a breadcrumb."""
    logger.info("charging order %s (%s cents)", order_id, amount_cents)
    _call_gateway(order_id, card_token, amount_cents)


@app.task(throws=(CardDeclined,))
def capture_payment(order_id: int) -> None:
    """Raises CardDeclined, which the task lists in ``throws``: an expected outcome, so no
    Sentry event (Celery logs it at INFO without a traceback)."""
    raise CardDeclined(f"card declined for order {order_id}")


def _fetch_stock(sku: str) -> dict[str, Any]:
    raise ConnectionError(f"stock service unreachable while syncing {sku}")


@app.task(bind=True, max_retries=2, default_retry_delay=0.5)
def sync_stock(self: Any, sku: str) -> dict[str, Any]:
    """The stock service is down: retried twice (retries send nothing), then one Sentry event
    for the final failure, with ``retries`` 2."""
    try:
        return _fetch_stock(sku)
    except ConnectionError as exc:
        raise self.retry(exc=exc) from exc


@app.task(soft_time_limit=1)
def build_report(day: str) -> None:
    """Runs past its 1 s soft time limit: SoftTimeLimitExceeded. Wherever the limit happened
    to interrupt the task, all such events group into one issue per task (fingerprint
    ``celery``, ``SoftTimeLimitExceeded``, the task name), as raven grouped them."""
    for _ in range(600):  # "aggregating the day's orders"
        time.sleep(0.05)


@app.task
def resize_images(batch: int) -> None:
    """The pool process dies mid-task, as under the OOM killer: the worker's main process
    reports WorkerLostError, still in the trace of the request that enqueued the task."""
    os.kill(os.getpid(), signal.SIGKILL)

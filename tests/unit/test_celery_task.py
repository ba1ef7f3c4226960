"""The task data a Celery failure adds to its event: bounded, JSON-safe, secrets filtered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from otel_sentry_bridge.capture import celery_task as task_data
from otel_sentry_bridge.capture.celery_task import (
    MAX_ITEMS,
    MAX_TEXT,
    bounded,
    parameter_names,
    soft_time_limit_fingerprint,
    task_extras,
)
from otel_sentry_bridge.convert.scrub import Scrubber

_sensitive = Scrubber().is_sensitive


class Exploding:
    def __repr__(self) -> str:
        raise RuntimeError("repr hits the database")


def test_json_values_are_kept_and_everything_else_becomes_a_safe_repr() -> None:
    assert bounded({"n": 1, "f": 1.5, "ok": True, "none": None, "s": "x"}) == {
        "n": 1,
        "f": 1.5,
        "ok": True,
        "none": None,
        "s": "x",
    }
    assert bounded((1, [2, 3])) == [1, [2, 3]]
    assert bounded({1: "int key"}) == {"1": "int key"}
    assert bounded({1, 2}) == "{1, 2}"
    assert bounded(Exploding()).startswith("<Exploding")
    json.dumps(bounded({"a": Exploding(), "b": object()}))  # always encodable


def test_sizes_are_bounded_in_count_depth_and_length() -> None:
    assert len(bounded(list(range(1000)))) == MAX_ITEMS
    assert len(bounded({str(i): i for i in range(1000)})) == MAX_ITEMS
    assert len(bounded("x" * 100_000)) == MAX_TEXT
    deep: Any = "bottom"
    for _ in range(10):
        deep = [deep]
    (((below,),),) = bounded(deep)
    assert isinstance(below, str)  # past the depth limit: a bounded repr


def test_parameter_names_stop_at_star_args_and_skip_bound_self() -> None:
    def charge(order_id: int, card_token: str, *rest: Any, api_key: str = "") -> None: ...

    class Task:
        def run(self, sku: str, password: str) -> None: ...

    assert parameter_names(charge) == ["order_id", "card_token"]
    assert parameter_names(Task().run) == ["sku", "password"]
    assert parameter_names(len) == ["obj"]
    assert parameter_names(object()) == []  # not callable: no names, no error


def test_positional_arguments_are_filtered_by_the_name_of_their_parameter() -> None:
    extras = task_extras(
        task_name="shop.charge",
        task_id="abc",
        retries=1,
        args=(1001, "tok_secret", 4990, "extra positional"),
        kwargs={"api_key": "ak_secret", "note": "gift"},
        names=["order_id", "card_token", "amount"],
        is_sensitive=_sensitive,
    )
    assert extras["contexts"]["celery"] == {
        "task_name": "shop.charge",
        "task_id": "abc",
        "retries": 1,
        "args": [1001, "[Filtered]", 4990, "extra positional"],
        # kwargs are filtered by key in the pipeline's scrubbing, like any context
        "kwargs": {"api_key": "ak_secret", "note": "gift"},
    }
    assert extras["tags"] == {"celery_task_name": "shop.charge"}
    assert extras["transaction"] == "shop.charge"
    assert "fingerprint" not in extras


def test_unknown_retries_and_arguments_are_left_out() -> None:
    extras = task_extras(
        task_name="t",
        task_id=None,
        retries=None,
        args=None,
        kwargs=None,
        names=[],
        is_sensitive=_sensitive,
        fingerprint=soft_time_limit_fingerprint("t"),
    )
    assert extras["contexts"]["celery"] == {"task_name": "t"}
    assert extras["fingerprint"] == ["celery", "SoftTimeLimitExceeded", "t"]


def test_the_module_imports_no_celery() -> None:
    source = Path(task_data.__file__).read_text()
    assert "import celery" not in source and "from celery" not in source

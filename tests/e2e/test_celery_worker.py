"""A real ``celery worker`` (prefork pool) and the example shop, both under
``opentelemetry-instrument`` with no code change, a real Redis broker between them: each task
failure reaches the loopback Sentry receiver in the trace of the web request that enqueued it.

One run serves every test of the module: the shop enqueues each of its tasks once from a web
request, the worker fails them, then it shuts down warm, after which nothing more can arrive.
``--max-tasks-per-child=1`` makes every task run in a fresh pool process that leaves through
``os._exit`` right after it: its events (and spans) arrive because the hooks flush at exit.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.processes import (
    BIN,
    SHOP,
    ServerProcess,
    helpers_with,
    shop_env,
    start_shop,
    wait_until_gone,
)
from tests.support.receiver import SentryReceiver
from tests.support.redis_server import RedisServer, redis_server  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CARD_TOKEN = "tok_fake_4242"  # what the shop's /tasks/charge/ view passes
API_KEY = "sk_fake_shop"
TASKS = {  # view name -> task name
    "charge": "shop.tasks.charge_card",
    "capture": "shop.tasks.capture_payment",
    "sync-stock": "shop.tasks.sync_stock",
    "report": "shop.tasks.build_report",
    "resize": "shop.tasks.resize_images",
}
FAILING = {TASKS[name] for name in ("charge", "sync-stock", "report", "resize")}


@dataclass
class CeleryRun:
    events: list[dict[str, Any]]  # every event the receiver got
    task_ids: dict[str, str]  # task name -> id
    otlp: OtlpReceiver
    invalid: list[dict[str, Any]]  # events sentry-relay would reject

    def celery_events(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for event in self.events:
            name = (event.get("tags") or {}).get("celery_task_name")
            if name:
                assert name not in out, f"two events for {name}"
                out[name] = event
        return out

    def producer(self, task: str) -> ReceivedSpan:
        """The shop's enqueue span of ``task``, checked to sit in a web request's trace."""
        (span,) = self.otlp.wait_for_spans(
            lambda s: (
                s.kind == "PRODUCER"
                and s.name == f"apply_async/{task}"
                and s.resource.get("service.name") == "shop"
            )  # not a retry the worker enqueued
        )
        (server,) = self.otlp.wait_for_spans(
            lambda s: s.kind == "SERVER" and s.span_id == span.parent_span_id
        )
        assert server.trace_id == span.trace_id
        assert server.resource.get("service.name") == "shop"
        return span


def _env(service: str, broker: str, receiver: SentryReceiver, otlp: OtlpReceiver) -> dict:
    env = shop_env(receiver.dsn, otlp.traces_endpoint, CELERY_BROKER_URL=broker)
    env["OTEL_SERVICE_NAME"] = service
    return env


def _worker(env: dict[str, str], log: Any) -> ServerProcess:
    return ServerProcess(
        [
            str(BIN / "opentelemetry-instrument"),
            str(BIN / "celery"),
            "-A",
            "shop",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "--max-tasks-per-child=1",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--hostname=e2e@localhost",
        ],
        env,
        log,
        cwd=SHOP,
    )


def _wait_for_output(process: ServerProcess, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in process.output():
        if process.proc.poll() is not None:
            raise AssertionError(f"worker exited {process.proc.returncode}:\n{process.output()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} within {timeout}s:\n{process.output()[-4000:]}")
        time.sleep(0.05)  # a log file has nothing to block on


def _enqueue(base: str, name: str) -> str:
    with urllib.request.urlopen(f"{base}/tasks/{name}/", timeout=10) as response:
        assert response.status == 202
        return str(json.load(response)["task_id"])


def _wait_for_failing_tasks(receiver: SentryReceiver, worker: ServerProcess) -> None:
    events = receiver.wait_for_events(len(FAILING), timeout=60)
    deadline = time.monotonic() + 60
    while not {(e.get("tags") or {}).get("celery_task_name") for e in events} >= FAILING:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"missing task events:\n{worker.output()[-4000:]}")
        events = receiver.wait_for_events(len(events) + 1, timeout=remaining)


@pytest.fixture(scope="module", params=[False, True], ids=["in-process", "helper-process"])
def run(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CeleryRun]:
    logs = tmp_path_factory.mktemp("celery-e2e")
    assert redis_server.command("FLUSHALL") == b"+OK"
    broker = f"{redis_server.url}/2"
    tag = uuid.uuid4().hex
    with SentryReceiver() as receiver, OtlpReceiver() as otlp:
        worker_env = _env("shop-worker", broker, receiver, otlp)
        if request.param:  # each pool process (one task each) starts its own helper
            worker_env.update(OTEL_SENTRY_HELPER_PROCESS="true", E2E_TAG=tag)
        worker = _worker(worker_env, logs / "worker.log")
        try:
            shop, base = start_shop(_env("shop", broker, receiver, otlp), logs / "shop.log")
            try:
                _wait_for_output(worker, "ready.", timeout=60)
                task_ids = {TASKS[name]: _enqueue(base, name) for name in TASKS}
                _wait_for_failing_tasks(receiver, worker)
                if request.param:  # the main process reported the lost pool process
                    assert helpers_with("E2E_TAG", tag), worker.output()[-4000:]
                # Warm shutdown: the main process flushes at exit; after it nothing can come.
                worker.proc.send_signal(signal.SIGTERM)
                assert worker.proc.wait(30) == 0, worker.output()[-4000:]
            finally:
                shop.stop()
        finally:
            worker.stop()
        if request.param:
            wait_until_gone("E2E_TAG", tag)  # no helper outlives its pool process
        yield CeleryRun(list(receiver.events), task_ids, otlp, list(receiver.invalid))


def test_every_event_passes_sentry_relay(run: CeleryRun) -> None:
    assert run.invalid == []


def test_each_failed_task_is_one_unhandled_celery_event(run: CeleryRun) -> None:
    events = run.celery_events()
    assert set(events) == FAILING  # capture_payment's CardDeclined is in its throws
    for name, event in events.items():
        assert event["exception"]["values"][-1]["mechanism"] == {
            "type": "celery",
            "handled": False,
        }
        assert event["transaction"] == name
        assert event["contexts"]["celery"]["task_id"] == run.task_ids[name]


def test_each_event_is_in_the_trace_of_the_web_request_that_enqueued_its_task(
    run: CeleryRun,
) -> None:
    for name, event in run.celery_events().items():
        assert event["contexts"]["trace"]["trace_id"] == run.producer(name).trace_id, name
    # The first run of a task hangs right off the enqueue span of the web request.
    charge = run.celery_events()["shop.tasks.charge_card"]["contexts"]["trace"]
    assert charge["parent_span_id"] == run.producer("shop.tasks.charge_card").span_id


def test_the_task_arguments_are_in_the_event_with_secrets_filtered(run: CeleryRun) -> None:
    charge = run.celery_events()["shop.tasks.charge_card"]
    (exception,) = charge["exception"]["values"]
    assert exception["type"] == "GatewayTimeout"
    assert exception["stacktrace"]["frames"][-1]["function"] == "_call_gateway"
    assert charge["contexts"]["celery"] == {
        "task_name": "shop.tasks.charge_card",
        "task_id": run.task_ids["shop.tasks.charge_card"],
        "retries": 0,
        "args": [1001, "[Filtered]", 4990],  # card_token, by its parameter name
        "kwargs": {"api_key": "[Filtered]"},
    }
    assert charge["tags"]["celery_task_name"] == "shop.tasks.charge_card"
    wire = json.dumps(run.events)
    assert CARD_TOKEN not in wire and API_KEY not in wire
    # The task logger's INFO line (a logger Celery detaches from the root) is a breadcrumb.
    crumbs = [c["message"] for c in charge["breadcrumbs"]["values"]]
    assert "charging order 1001 (4990 cents)" in crumbs


def test_retries_then_a_final_failure_is_one_event_with_the_retry_count(run: CeleryRun) -> None:
    sync = run.celery_events()["shop.tasks.sync_stock"]
    assert sync["exception"]["values"][-1]["type"] == "ConnectionError"
    assert sync["contexts"]["celery"]["retries"] == 2


def test_a_soft_time_limit_is_grouped_per_task(run: CeleryRun) -> None:
    report = run.celery_events()["shop.tasks.build_report"]
    assert report["exception"]["values"][-1]["type"] == "SoftTimeLimitExceeded"
    assert report["fingerprint"] == ["celery", "SoftTimeLimitExceeded", "shop.tasks.build_report"]


def test_a_lost_pool_process_is_reported_once_by_the_main_process(run: CeleryRun) -> None:
    resize = run.celery_events()["shop.tasks.resize_images"]
    assert resize["exception"]["values"][-1]["type"] == "WorkerLostError"
    # Celery logs the same failure again in the main process ("Task handler raised error",
    # with billiard's wrapper around the exception): not a second event.
    types = [v["type"] for e in run.events for v in (e.get("exception") or {}).get("values", [])]
    assert types.count("WorkerLostError") == 1
    assert "ExceptionWithTraceback" not in types


def test_the_task_span_reaches_the_tracing_backend_with_the_exception(run: CeleryRun) -> None:
    trace = run.celery_events()["shop.tasks.charge_card"]["contexts"]["trace"]
    (span,) = run.otlp.wait_for_spans(lambda s: s.name == "run/shop.tasks.charge_card")
    assert span.span_id == trace["span_id"]
    assert span.resource.get("service.name") == "shop-worker"
    # The task's INFO line, then the exception: what Jaeger shows on the span.
    assert [e.name for e in span.events] == ["log", "exception"]


def test_nothing_else_is_sent(run: CeleryRun) -> None:
    others = [e for e in run.events if not (e.get("tags") or {}).get("celery_task_name")]
    # Celery's own ERROR line about the killed pool process is a message event of its own.
    assert [(e.get("logger"), "exception" in e) for e in others] == [("multiprocessing", False)]

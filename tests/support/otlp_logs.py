"""OTLP/HTTP logs for the loopback receiver: :func:`decode_logs_request` turns an
``ExportLogsServiceRequest`` body into :class:`ReceivedLogRecord` values, and
:class:`OtlpLogsReceiver` is an :class:`~tests.support.otlp_receiver.OtlpReceiver` (traces as
before, on the same port) that also decodes and keeps ``POST /v1/logs`` instead of only
counting it. Point ``OTEL_EXPORTER_OTLP_ENDPOINT`` at :attr:`OtlpLogsReceiver.endpoint` and
both the span and the log exporter of an app send here.

Thread rules as in :mod:`tests.support.otlp_receiver`: a logs request is decoded and recorded
under the receiver's lock before the reply is sent; from other threads or processes, block in
:meth:`OtlpLogsReceiver.wait_for_logs`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from tests.support.otlp_receiver import OtlpReceiver, _Handler, decode_any_value

__all__ = [
    "LOGS_PATH",
    "OtlpLogsReceiver",
    "ReceivedLogRecord",
    "decode_logs_request",
    "otlp_logs_receiver",
]

LOGS_PATH = "/v1/logs"
_PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class ReceivedLogRecord:
    """One decoded OTLP log record; ids lowercase hex as in Sentry's ``contexts.trace`` (""
    when the record has none)."""

    trace_id: str
    span_id: str
    severity_number: int
    severity_text: str
    body: Any
    attributes: dict[str, Any]
    event_name: str  # "" when unset
    scope: str  # instrumentation scope name (the Python logger name for logging handlers)
    resource: dict[str, Any]
    time_unix_nano: int
    observed_time_unix_nano: int


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: decode_any_value(kv.value) for kv in pairs}


def decode_logs_request(body: bytes) -> list[ReceivedLogRecord]:
    """An ``ExportLogsServiceRequest`` protobuf body (already decompressed) as
    :class:`ReceivedLogRecord` values; raises ``DecodeError`` on bytes that are not one."""
    request = ExportLogsServiceRequest()
    request.ParseFromString(body)
    records: list[ReceivedLogRecord] = []
    for resource_logs in request.resource_logs:
        resource = _attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                records.append(
                    ReceivedLogRecord(
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        severity_number=int(record.severity_number),
                        severity_text=record.severity_text,
                        body=decode_any_value(record.body),
                        attributes=_attributes(record.attributes),
                        event_name=record.event_name,
                        scope=scope_logs.scope.name,
                        resource=resource,
                        time_unix_nano=record.time_unix_nano,
                        observed_time_unix_nano=record.observed_time_unix_nano,
                    )
                )
    return records


class _LogsHandler(_Handler):
    """The receiver's handler, with ``/v1/logs`` decoded rather than only counted."""

    server: Any  # the receiver's server; its ``receiver`` is an OtlpLogsReceiver

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != LOGS_PATH:
            super().do_POST()
            return
        receiver: OtlpLogsReceiver = self.server.receiver
        try:
            body = self._read_body()
        except Exception as exc:  # _read_body's 4xx (length, encoding): as the base reports it
            self._fail(int(getattr(exc, "status", 400)), f"{LOGS_PATH}: {exc}")
            return
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != _PROTOBUF:
            self._fail(415, f"{LOGS_PATH}: unsupported Content-Type {content_type!r}")
            return
        try:
            records = decode_logs_request(body)
        except DecodeError as exc:
            self._fail(400, f"{LOGS_PATH}: undecodable ExportLogsServiceRequest: {exc}")
            return
        receiver._count_signal("logs")
        receiver._record_logs(records)
        self._reply(200, ExportLogsServiceResponse().SerializeToString(), _PROTOBUF)


class OtlpLogsReceiver(OtlpReceiver):
    """An :class:`OtlpReceiver` that also keeps the log records posted to ``/v1/logs``."""

    def __init__(self) -> None:
        super().__init__()
        self._logs: list[ReceivedLogRecord] = []

    def start(self) -> OtlpLogsReceiver:
        super().start()
        assert self._server is not None
        # Before start() returns nobody knows the port, so no request has been handled yet.
        self._server.RequestHandlerClass = _LogsHandler
        return self

    def __enter__(self) -> OtlpLogsReceiver:
        return self.start()

    @property
    def logs_endpoint(self) -> str:
        """Full URL, as for ``OTLPLogExporter(endpoint=...)`` / ``..._LOGS_ENDPOINT``."""
        return f"{self.endpoint}{LOGS_PATH}"

    def logs(self) -> list[ReceivedLogRecord]:
        with self._cond:
            return list(self._logs)

    def wait_for_logs(
        self,
        predicate: Callable[[ReceivedLogRecord], bool] | None = None,
        count: int = 1,
        timeout: float = 15.0,
    ) -> list[ReceivedLogRecord]:
        """Block until at least ``count`` log records match ``predicate`` (any if None); return
        all the matching ones, or fail listing every record and rejection that did arrive."""
        matches: list[ReceivedLogRecord] = []

        def enough() -> bool:
            nonlocal matches
            matches = [r for r in self._logs if predicate is None or predicate(r)]
            return len(matches) >= count

        with self._cond:
            if self._cond.wait_for(enough, timeout):
                return matches
            got = "\n  ".join(
                f"scope={r.scope!r} severity={r.severity_text or r.severity_number} "
                f"event_name={r.event_name!r} body={r.body!r} trace={r.trace_id} "
                f"span={r.span_id} attrs={sorted(r.attributes)!r}"
                for r in self._logs
            )
            raise AssertionError(
                f"expected {count} matching log record(s) within {timeout}s, {len(matches)} "
                f"matched; {len(self._logs)} record(s) received:\n  {got}\n"
                f"rejections={self._rejections!r}"
            )

    def clear(self) -> None:
        with self._cond:
            self._logs.clear()
        super().clear()

    def _record_logs(self, records: list[ReceivedLogRecord]) -> None:
        with self._cond:
            self._logs.extend(records)
            self._cond.notify_all()


@pytest.fixture
def otlp_logs_receiver() -> Iterator[OtlpLogsReceiver]:
    """A running :class:`OtlpLogsReceiver`, stopped after the test."""
    with OtlpLogsReceiver() as receiver:
        yield receiver

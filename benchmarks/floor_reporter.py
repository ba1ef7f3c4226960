"""The least an in-process error reporter can do, for configuration B-floor: a yardstick for
the bridge's total CPU per error, not a product.

On the request thread: a ``got_request_exception`` receiver and a ``logging.Handler`` at ERROR
put (exception, trace id, span id, time) on a queue. On one background thread: the exception's
frames read straight from its traceback (file, function, line: no source lines, no locals), an
event with the trace context encoded with ``json.dumps``, one envelope written on a keep-alive
socket and the reply read. No scrubbing, no size limits, no request data, no breadcrumbs, no
dedupe, no retry, no spool, no compression: every one of those is work the bridge does and
this does not, so B-floor - B is below what any reporter that sends the error with its stack
and trace context can cost.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

from opentelemetry import trace

from .common import DSN_KEY

Item = tuple[BaseException, int, int, float]


def _frames(tb: TracebackType | None) -> list[dict[str, Any]]:
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append(
            {"filename": code.co_filename, "function": code.co_name, "lineno": tb.tb_lineno}
        )
        tb = tb.tb_next
    return frames


def _event(item: Item) -> dict[str, Any]:
    error, trace_id, span_id, at = item
    values = []
    seen: BaseException | None = error
    while seen is not None and len(values) < 5:
        values.append(
            {
                "type": type(seen).__name__,
                "value": str(seen),
                "stacktrace": {"frames": _frames(seen.__traceback__)},
            }
        )
        seen = seen.__cause__ or seen.__context__
    values.reverse()
    return {
        "event_id": uuid.uuid4().hex,
        "timestamp": at,
        "platform": "python",
        "level": "error",
        "exception": {"values": values},
        "contexts": {"trace": {"trace_id": f"{trace_id:032x}", "span_id": f"{span_id:016x}"}},
    }


class _Sender:
    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port))
        self._head = (
            "POST /api/1/envelope/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-sentry-envelope\r\n"
            f"X-Sentry-Auth: Sentry sentry_version=7, sentry_key={DSN_KEY}\r\n"
            "Content-Length: "
        ).encode()
        self._buffer = b""

    def post(self, body: bytes) -> None:
        self._sock.sendall(b"%s%d\r\n\r\n%s" % (self._head, len(body), body))
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._sock.recv(65536)
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += self._sock.recv(65536)
        self._buffer = rest[length:]


def install(port: int) -> Callable[[float], bool]:
    """Hooks the request thread and starts the sending thread; returns ``flush(timeout)``."""
    from django.core.signals import got_request_exception

    items: queue.SimpleQueue[Item] = queue.SimpleQueue()

    last: list[BaseException | None] = [None]

    def capture(error: BaseException | None) -> None:
        # Django logs the exception its signal reported: one event per exception.
        if error is None or error is last[0]:
            return
        last[0] = error
        context = trace.get_current_span().get_span_context()
        counts["made"] += 1
        items.put((error, context.trace_id, context.span_id, time.time()))

    def on_exception(sender: object, request: object = None, **kwargs: object) -> None:
        import sys

        capture(sys.exc_info()[1])

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info:
                capture(record.exc_info[1])

    got_request_exception.connect(on_exception, weak=False)
    logging.getLogger().addHandler(Handler(logging.ERROR))
    sender = _Sender(port)

    def run() -> None:
        while True:
            event = _event(items.get())
            payload = json.dumps(event, separators=(",", ":")).encode()
            header = b'{"event_id":"%s"}\n{"type":"event","length":%d}\n' % (
                event["event_id"].encode(),
                len(payload),
            )
            sender.post(header + payload + b"\n")
            with done:
                counts["sent"] += 1
                done.notify_all()

    counts = {"made": 0, "sent": 0}
    done = threading.Condition()
    threading.Thread(target=run, name="floor-sender", daemon=True).start()

    def flush(timeout: float) -> bool:
        with done:
            return done.wait_for(lambda: counts["sent"] >= counts["made"], timeout)

    return flush

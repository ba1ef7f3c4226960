"""The least an error reporter can do, for configurations B-floor (in process) and
B-floor-helper (with a helper process): yardsticks for the bridge's total CPU per error, not
products.

On the request thread: a ``got_request_exception`` receiver and a ``logging.Handler`` at ERROR
put (exception, trace id, span id, time) on a queue. On one background thread: the exception's
frames read straight from its traceback (file, function, line: no source lines, no locals), an
event with the trace context encoded with ``json.dumps``, one envelope written on a keep-alive
socket and the reply read. No scrubbing, no size limits, no request data, no breadcrumbs, no
dedupe, no retry, no spool, no compression: every one of those is work the bridge does and
this does not, so B-floor - B is below what any reporter that sends the error with its stack
and trace context can cost.

B-floor-helper does the same with the background thread's work in a spawned helper process
(``python -m benchmarks.floor_reporter PORT``): the request thread reads the exception's
frames (file, function, line) and its trace context into tuples and writes them, ``marshal``-ed
and length-prefixed, to the helper's stdin pipe; the helper encodes and POSTs each, and writes
how many it sent to its stdout. Its CPU counts: it is the least a reporter whose conversion
and delivery leave the application's process can cost.
"""

from __future__ import annotations

import json
import logging
import marshal
import os
import queue
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

from .common import DSN_KEY, ROOT, child_env

Item = tuple[BaseException, int, int, float]
# What the request thread writes to the helper: per exception of the chain (outermost last)
# its type name, message and frames (file, function, line); the trace and span ids, the time.
Plain = tuple[list[tuple[str, str, list[tuple[str, str, int]]]], int, int, float]
_LENGTH = struct.Struct("<I")


def _frames(tb: TracebackType | None) -> list[tuple[str, str, int]]:
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append((code.co_filename, code.co_name, tb.tb_lineno))
        tb = tb.tb_next
    return frames


def _plain(item: Item) -> Plain:
    error, trace_id, span_id, at = item
    chain = []
    seen: BaseException | None = error
    while seen is not None and len(chain) < 5:
        chain.append((type(seen).__name__, str(seen), _frames(seen.__traceback__)))
        seen = seen.__cause__ or seen.__context__
    chain.reverse()
    return chain, trace_id, span_id, at


def _event(plain: Plain) -> dict[str, Any]:
    chain, trace_id, span_id, at = plain
    values = [
        {
            "type": name,
            "value": message,
            "stacktrace": {
                "frames": [
                    {"filename": file, "function": function, "lineno": line}
                    for file, function, line in frames
                ]
            },
        }
        for name, message, frames in chain
    ]
    return {
        "event_id": uuid.uuid4().hex,
        "timestamp": at,
        "platform": "python",
        "level": "error",
        "exception": {"values": values},
        "contexts": {"trace": {"trace_id": f"{trace_id:032x}", "span_id": f"{span_id:016x}"}},
    }


def _envelope(plain: Plain) -> bytes:
    event = _event(plain)
    payload = json.dumps(event, separators=(",", ":")).encode()
    header = b'{"event_id":"%s"}\n{"type":"event","length":%d}\n' % (
        event["event_id"].encode(),
        len(payload),
    )
    return header + payload + b"\n"


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


def _hook(put: Callable[[Item], None]) -> Callable[[], int]:
    """Django's signal and a log handler at ERROR hand each exception to ``put``; returns
    how many were handed over so far."""
    from django.core.signals import got_request_exception
    from opentelemetry import trace

    last: list[BaseException | None] = [None]
    made = [0]

    def capture(error: BaseException | None) -> None:
        # Django logs the exception its signal reported: one event per exception.
        if error is None or error is last[0]:
            return
        last[0] = error
        context = trace.get_current_span().get_span_context()
        made[0] += 1
        put((error, context.trace_id, context.span_id, time.time()))

    def on_exception(sender: object, request: object = None, **kwargs: object) -> None:
        capture(sys.exc_info()[1])

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info:
                capture(record.exc_info[1])

    got_request_exception.connect(on_exception, weak=False)
    logging.getLogger().addHandler(Handler(logging.ERROR))
    return lambda: made[0]


def install(port: int) -> Callable[[float], bool]:
    """Hooks the request thread and starts the sending thread; returns ``flush(timeout)``."""
    items: queue.SimpleQueue[Item] = queue.SimpleQueue()
    made = _hook(items.put)
    sender = _Sender(port)

    def run() -> None:
        while True:
            sender.post(_envelope(_plain(items.get())))
            with done:
                sent[0] += 1
                done.notify_all()

    sent = [0]
    done = threading.Condition()
    threading.Thread(target=run, name="floor-sender", daemon=True).start()

    def flush(timeout: float) -> bool:
        with done:
            return done.wait_for(lambda: sent[0] >= made(), timeout)

    return flush


def install_helper(port: int) -> Callable[[float], bool]:
    """Hooks the request thread and starts the helper process; returns ``flush(timeout)``."""
    helper = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.floor_reporter", str(port)],
        cwd=ROOT,
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert helper.stdin is not None and helper.stdout is not None
    pipe, answers = helper.stdin.fileno(), helper.stdout.fileno()

    def put(item: Item) -> None:
        data = marshal.dumps(_plain(item))
        os.write(pipe, _LENGTH.pack(len(data)) + data)

    made = _hook(put)
    sent = [0]

    def flush(timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while sent[0] < made():
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([answers], [], [], left)[0]:
                return False
            data = os.read(answers, 65536)
            if not data:
                return False
            # The helper writes its running count after each read it handled.
            sent[0] = _LENGTH.unpack(data[-_LENGTH.size :])[0]
        return True

    return flush


def helper_main(port: int) -> None:
    """The helper: length-prefixed marshalled items from stdin, one POST each; after each
    read handled, how many were sent so far to stdout."""
    sender = _Sender(port)
    buffer = b""
    sent = 0
    while data := os.read(0, 1 << 16):
        buffer += data
        while len(buffer) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(buffer)
            if len(buffer) < _LENGTH.size + size:
                break
            plain = marshal.loads(buffer[_LENGTH.size : _LENGTH.size + size])
            buffer = buffer[_LENGTH.size + size :]
            sender.post(_envelope(plain))
            sent += 1
        os.write(1, _LENGTH.pack(sent))


if __name__ == "__main__":
    helper_main(int(sys.argv[1]))

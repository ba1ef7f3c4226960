"""The helper process: ``python -m otel_sentry_bridge.offload.helper``, started by a
:class:`~otel_sentry_bridge.offload.link.HelperLink`.

Reads frames from its standard input until the end of the pipe: first the settings (it
answers ``ready`` once its bridge is made: until then the parent converts errors itself, so a
helper that cannot start loses none), then shipments (errors and transactions, converted and
handed to delivery on this thread, as the worker would: those read together are converted
together, then sent, see ``Pipeline.batch``) and flush requests (answered on
standard output, ``<token> <1|0>``). At the end of the pipe (its parent closed it, exited or
was killed) it shuts its bridge down: what it holds is sent within ``shutdown_timeout``,
spooled or counted. SIGINT and SIGTERM are ignored, so a terminal's Ctrl-C or a service
manager's stop that reaches the whole group does not cut that short: the parent's end of the
pipe decides, and an answer its parent can no longer read does not either.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import sys
import time

from .codec import decode
from .shipment import (
    CONFIG,
    FLUSH,
    FLUSH_BODY,
    HEADER,
    READY,
    SHIPMENT,
    Shipment,
    TransactionShipment,
    parse_header,
)

_log = logging.getLogger("otel_sentry_bridge")


# How long the helper lets frames gather in its pipe before it reads them, once it has
# handled all it read: the frames written meanwhile come in one read and are handled in one
# go, and the application's writes do not each wake the helper. Under sustained errors that
# is ~15 % less CPU per error than reading each frame as it comes (caches stay warm, fewer
# wake-ups of both processes); errors reach Sentry up to 10 ms later.
GATHER_S = 0.01
_READ_SIZE = 1024 * 1024
_BATCH = 100  # shipments converted before any of them is sent


class Frames:
    """The frames of the pipe ``fd``, read in batches."""

    def __init__(self, fd: int, gather_s: float = GATHER_S) -> None:
        self._fd = fd
        self._gather_s = gather_s
        self._buf = bytearray()
        self._pos = 0
        self._ended = False

    def more(self, kind: bytes) -> bytes | None:
        """The payload of the next frame if it is of ``kind`` and read already, else None
        (never waits for the pipe)."""
        got = self._take(kind)
        return None if got is None else got[1]

    def next(self) -> tuple[bytes, bytes] | None:
        """The next frame, or None at the end of the pipe (or at a frame cut short there).
        Raises ValueError when the stream is not made of frames."""
        while True:
            got = self._take(None)
            if got is not None or self._ended:
                return got
            self._fill()

    def _take(self, kind: bytes | None) -> tuple[bytes, bytes] | None:
        """The next frame if it is read whole (and of ``kind``, when given), taken; else None."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos < HEADER.size:
            return None
        found, length = parse_header(bytes(buf[pos : pos + HEADER.size]))
        start = pos + HEADER.size
        if (kind is not None and found != kind) or len(buf) - start < length:
            return None
        self._pos = start + length
        return found, bytes(buf[start : self._pos])

    def _fill(self) -> None:
        del self._buf[: self._pos]
        self._pos = 0
        if not self._buf:  # (the rest of a frame cut by the pipe's size is read at once)
            time.sleep(self._gather_s)
        chunk = os.read(self._fd, _READ_SIZE)
        if chunk:
            self._buf += chunk
        else:
            self._ended = True


def serve(source: Frames, answers: int) -> int:
    """The helper's life: settings, then frames until the end of ``source``."""
    # Not the span processor: its module brings the OpenTelemetry SDK, which a helper (it
    # never sees a span) would pay for at every start.
    from ..setup.opening import open_bridge

    first = source.next()
    if first is None or first[0] != CONFIG:
        return 2
    settings = pickle.loads(first[1])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s (helper process %(process)d)"))
    _log.addHandler(handler)
    _log.setLevel(logging.DEBUG if settings.debug else logging.WARNING)
    _log.propagate = False
    bridge = open_bridge(settings)
    pipeline = bridge.pipeline
    with contextlib.suppress(OSError):  # a parent already gone has still written frames
        os.write(answers, READY)  # from now on the parent ships; nothing before was lost here

    def _shipment(payload: bytes) -> Shipment | TransactionShipment | None:
        try:
            return decode(payload)
        except Exception:  # a bug of ours: counted, and said once
            pipeline.record_loss("internal_sdk_error")
            bridge.warn(
                "unreadable shipment",
                "otel-sentry-bridge: the helper could not read an error it was sent",
                exc_info=True,
            )
            return None

    try:
        while True:
            try:
                got = source.next()
            except ValueError:
                _log.warning("otel-sentry-bridge: the helper's pipe is broken; stopping")
                break
            if got is None:
                break
            kind, payload = got
            if kind == SHIPMENT:
                # With the shipments read already behind it: converted, then sent, together.
                payloads = [payload]
                while len(payloads) < _BATCH and (more := source.more(SHIPMENT)) is not None:
                    payloads.append(more)
                pipeline.batch([s for s in map(_shipment, payloads) if s is not None])
            elif kind == FLUSH:
                token, millis = FLUSH_BODY.unpack(payload)
                done = bridge.flush(millis / 1000.0)
                with contextlib.suppress(OSError):  # the parent is gone: read on to the end
                    os.write(answers, b"%d %d\n" % (token, int(done)))
    finally:
        bridge.shutdown()
    return 0


def main() -> int:
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    # The pipes move to descriptors no child process inherits (a child holding the read end
    # would keep the parent's writes going into a pipe nobody reads once this process is
    # gone): standard input becomes /dev/null, anything printed goes to standard error.
    source_fd, answers = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    try:
        return serve(Frames(source_fd), answers)
    finally:
        os.close(source_fd)


if __name__ == "__main__":
    sys.exit(main())

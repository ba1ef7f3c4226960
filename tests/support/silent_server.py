"""A loopback peer that accepts connections and never answers: a hung Sentry."""

from __future__ import annotations

import socket
import threading


class SilentServer:
    """A loopback peer that accepts connections and never answers: a hung Sentry. Closing it
    closes every connection, which releases the senders still waiting for a reply."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.02)  # accept() polls, so that close() can stop it
        self._connections: list[socket.socket] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        self.dsn = f"http://publickey@127.0.0.1:{self._listener.getsockname()[1]}/42"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self._cond:
                self._connections.append(connection)
                self._cond.notify_all()

    def wait_for_connections(self, n: int, timeout: float = 10.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self._connections) >= n, timeout)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()
        with self._cond:
            for connection in self._connections:
                connection.close()

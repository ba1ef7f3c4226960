"""A real ``redis-server`` (Debian's package) on 127.0.0.1: the Celery broker of the tests.

One server per test session, no persistence; :func:`redis_url` hands each test a flushed
database. Without the binary the tests skip (``make unit`` installs it), but fail under CI.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import free_port

__all__ = ["RedisServer", "redis_server", "redis_url"]


class RedisServer:
    def __init__(self, binary: str, workdir: Path) -> None:
        self.port = free_port()
        self._log = open(workdir / "redis.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def command(self, *words: str) -> bytes:
        """One command in Redis's inline protocol; returns the first reply line."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(" ".join(words).encode() + b"\r\n")
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply.strip()

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited {self.proc.returncode}")
            try:
                if self.command("PING") == b"+PONG":
                    return
            except OSError:
                time.sleep(0.02)  # not listening yet
        raise AssertionError(f"redis-server did not answer PING within {timeout}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def _require_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed (make unit installs it with apt-get)"
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on"):
            pytest.fail(f"redis-server is required in CI: {reason}")
        pytest.skip(reason)
    return binary


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(_require_binary(), tmp_path_factory.mktemp("redis"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The broker URL of an emptied database (queues of earlier tests gone)."""
    assert redis_server.command("FLUSHALL") == b"+OK"
    return f"{redis_server.url}/0"

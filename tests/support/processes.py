"""Start and stop real server subprocesses (gunicorn, runserver, opentelemetry-instrument)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment: no inherited SENTRY_/OTEL_ settings, the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "OTEL_"))}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class ServerProcess:
    """A subprocess in its own process group with its output in a log file."""

    def __init__(
        self, args: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path = REPO
    ) -> None:
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            list(args),
            env=dict(env),
            cwd=cwd,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        """Poll ``url`` until it answers (any status) or fail with the server's output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.output()}")
            try:
                urllib.request.urlopen(url, timeout=1).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.05)  # a port that is not yet listening: poll again
        raise AssertionError(f"{url} did not answer in {timeout}s:\n{self.output()[-4000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        self._out.close()
        return self.proc.returncode


def processes_with(variable: str, value: str) -> list[int]:
    """The processes whose environment has ``variable=value`` (Linux; a test's tag, e.g. to
    find the helper processes a server started and see that none outlives it)."""
    wanted = f"{variable}={value}".encode()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                if wanted in environ.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            continue
    return found


def helpers_with(variable: str, value: str) -> list[int]:
    """The bridge's helper processes among :func:`processes_with`."""
    found = []
    for pid in processes_with(variable, value):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"otel_sentry_bridge.offload.helper" in cmdline.read():
                    found.append(pid)
        except OSError:
            continue
    return found


def wait_until_gone(variable: str, value: str, timeout: float = 20.0) -> None:
    """Wait until no process has ``variable=value`` in its environment (zombies aside)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid in processes_with(variable, value) if not _zombie(pid)]
        if not alive:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"processes still running: {alive}")
        time.sleep(0.05)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def get(url: str, headers: Mapping[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


SHOP = REPO / "examples" / "shop"


def shop_env(dsn: str, traces_endpoint: str, **extra: str) -> dict[str, str]:
    """The environment a user gives the example shop under ``opentelemetry-instrument``:
    errors to ``dsn``, spans over OTLP/HTTP to ``traces_endpoint``, exported quickly."""
    env = base_env(
        SENTRY_DSN=dsn,
        OTEL_SERVICE_NAME="shop",
        DJANGO_SETTINGS_MODULE="shop.settings",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=traces_endpoint,
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_BSP_SCHEDULE_DELAY="100",
        **extra,
    )
    env["PYTHONPATH"] = str(SHOP)
    return env


def start_shop(env: Mapping[str, str], log: Path) -> tuple[ServerProcess, str]:
    """The example shop under ``opentelemetry-instrument ... runserver --noreload``, as a user
    runs it; returns the process and its base URL once it answers."""
    port = free_port()
    server = ServerProcess(
        [
            str(BIN / "opentelemetry-instrument"),
            str(BIN / "python"),
            "manage.py",
            "runserver",
            "--noreload",
            f"127.0.0.1:{port}",
        ],
        env,
        log,
        cwd=SHOP,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        server.wait_http(f"{base}/healthz/", timeout=60)
    except BaseException:
        server.stop()
        raise
    return server, base

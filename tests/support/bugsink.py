"""A real Bugsink server (Sentry-compatible error tracker) on 127.0.0.1 for end-to-end tests.

Usable from pytest (the session-scoped ``bugsink`` fixture below) and from plain scripts::

    with BugsinkServer() as server:   # start() ... stop()
        sentry_sdk.init(dsn=server.dsn)
        ...
        events = server.wait_for_events(1)

Bugsink (2.6.1) lives in its own venv, ``$BUGSINK_VENV`` (default ``<repo>/.venv-bugsink``, made by
``make bugsink-venv``). Each server gets a fresh temporary folder holding its config, SQLite
databases and ``gunicorn.log``; it is removed by ``stop()`` unless ``keep_dir=True``.

Read-back API shapes (Bugsink canonical API, ``Authorization: Bearer <token>``), all verified:

``GET /api/canonical/0/issues/?project=<id>`` (cursor-paginated; ``next`` is an absolute URL)::

    {"next": null, "previous": null, "results": [
        {"id": "<issue uuid, hyphenated>", "friendly_id": "P-1", "project": 1, "digest_order": 1,
         "first_seen": "...Z", "last_seen": "...Z", "digested_event_count": 1,
         "stored_event_count": 1, "calculated_type": "ValueError", "calculated_value": "boom",
         "transaction": "", "is_resolved": false, "is_muted": false, ...}]}

``GET /api/canonical/0/events/?issue=<issue uuid>`` (paginated likewise, newest first, no data)::

    {"next": null, "previous": null, "results": [
        {"id": "<Bugsink-internal event uuid>", "event_id": "<Sentry event_id, hyphenated uuid>",
         "issue": "<issue uuid>", "project": 1, "grouping": 1, "digest_order": 1,
         "ingested_at": "...Z", "digested_at": "...Z", "timestamp": "...Z"}]}

``GET /api/canonical/0/events/<internal id>/`` (only the internal ``id`` works here, the Sentry
``event_id`` gives 404): the list fields plus

- ``data``: the raw event JSON as sent by the SDK, e.g. ``data["event_id"]`` (32-hex, as sent),
  ``data["contexts"]["trace"]["trace_id"|"span_id"]``,
  ``data["exception"]["values"][i]["stacktrace"]["frames"][j]["context_line"|"lineno"|...]``;
- ``stacktrace_md``: the stack trace rendered as Markdown.

UI URLs (they redirect to the login page when not logged in): an issue is
``/issues/issue/<issue uuid>/event/last/`` (``Issue.get_absolute_url``; the bare
``/issues/issue/<uuid>/`` is a 404), an event ``/issues/issue/<issue uuid>/event/<internal id>/``,
and ``/issues/event/<internal id or Sentry event_id>/`` redirects to the latter.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parents[2]
_BINARIES = ("bugsink-create-conf", "bugsink-manage", "gunicorn")
_POLL_INTERVAL = 0.1


def bugsink_venv() -> Path:
    """The Bugsink venv: ``$BUGSINK_VENV`` or ``<repo>/.venv-bugsink``."""
    return Path(os.environ.get("BUGSINK_VENV") or REPO_ROOT / ".venv-bugsink")


def bugsink_available(venv: Path | None = None) -> tuple[bool, str]:
    """Whether the Bugsink venv and its binaries exist; ``(False, reason)`` if not."""
    venv = venv or bugsink_venv()
    if not venv.is_dir():
        return False, f"Bugsink venv {venv} not found (run `make bugsink-venv` or set BUGSINK_VENV)"
    for name in _BINARIES:
        binary = venv / "bin" / name
        if not os.access(binary, os.X_OK):
            return False, f"{binary} is missing or not executable (run `make bugsink-venv`)"
    return True, ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _normalize_uuid(value: str) -> str:
    """32-hex lowercase form of a UUID given with or without hyphens (unchanged if not a UUID)."""
    try:
        return uuid.UUID(value).hex
    except ValueError:
        return value


class BugsinkServer:
    """One Bugsink instance (gunicorn) with one team, one project and one API token.

    After ``start()``: ``dsn`` (``http://<key>@127.0.0.1:<port>/<project_id>``), ``base_url``
    (``http://127.0.0.1:<port>``), ``project_id``, ``token`` (API bearer token), ``log_path``.
    """

    def __init__(
        self, venv: str | Path | None = None, startup_timeout: float = 60.0, keep_dir: bool = False
    ) -> None:
        self.venv = Path(venv) if venv is not None else bugsink_venv()
        self.startup_timeout = startup_timeout
        self.keep_dir = keep_dir
        self.dir: Path | None = None
        self.port = 0
        self.base_url = ""
        self.dsn = ""
        self.project_id = 0
        self.token = ""
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._details: dict[str, dict[str, Any]] = {}  # event details by internal id (immutable)

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> BugsinkServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> BugsinkServer:
        """Configure, migrate, create token + project, serve, and wait until ``/health/ready``."""
        ok, reason = bugsink_available(self.venv)
        if not ok:
            raise RuntimeError(reason)
        if self._proc is not None:
            raise RuntimeError("BugsinkServer already started")
        atexit.register(self.stop)  # safety net for scripts that forget stop()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        d = self.dir = Path(tempfile.mkdtemp(prefix="bugsink-e2e-"))
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = d / "gunicorn.log"

        conf = d / "bugsink_conf.py"
        host_port = ["--host=127.0.0.1", f"--port={self.port}"]
        self._run("bugsink-create-conf", "--template=local", *host_port, "-o", str(conf))
        with conf.open("a") as f:
            f.write(
                "\n# per-run overrides (tests/support/bugsink.py)\n"
                f'DATABASES["default"]["NAME"] = {str(d / "db.sqlite3")!r}\n'
                f'DATABASES["snappea"]["NAME"] = {str(d / "snappea.sqlite3")!r}\n'
                f'BUGSINK["INGEST_STORE_BASE_DIR"] = {str(d / "ingestion")!r}\n'
                'BUGSINK["PHONEHOME"] = False\n'
                f'SNAPPEA["WAKEUP_CALLS_DIR"] = {str(d / "wakeup")!r}\n'
                'SNAPPEA["TASK_ALWAYS_EAGER"] = True\n'  # digest events inside the ingest request
            )
        self._run("bugsink-manage", "migrate", "-v0")
        self._run("bugsink-manage", "migrate", "snappea", "--database=snappea", "-v0")
        self.token = self._run("bugsink-manage", "create_auth_token").split()[-1]
        code = (
            "from teams.models import Team; from projects.models import Project; "
            "t = Team.objects.create(name='t'); p = Project.objects.create(name='p', team=t); "
            "print(p.dsn, p.id)"
        )
        out = self._run("bugsink-manage", "shell", "--no-imports", "-c", code)
        dsn, project_id = out.strip().splitlines()[-1].split()
        self.dsn, self.project_id = dsn, int(project_id)

        self._log_file = self.log_path.open("wb")
        gunicorn = [str(self.venv / "bin" / "gunicorn"), "bugsink.wsgi"]
        bind = ["--bind", f"127.0.0.1:{self.port}", "--no-control-socket", "--workers", "1"]
        extra = ["--graceful-timeout", "5", "--access-logfile", "-"]  # requests show in the log
        self._proc = subprocess.Popen(
            [*gunicorn, *bind, *extra],
            cwd=d,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() signals gunicorn and its worker
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                code = self._proc.returncode
                raise RuntimeError(f"gunicorn exited with {code} at startup:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/health/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Bugsink not ready after {self.startup_timeout}s:\n{self.log_tail()}"
                )
            time.sleep(_POLL_INTERVAL)

    def stop(self) -> None:
        """SIGTERM the gunicorn process group, SIGKILL it if still alive after 10 s; idempotent."""
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is not None:
            for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                try:
                    proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
            # the worker may outlive the master briefly; make sure the group is gone
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.dir is not None and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the gunicorn log (for failure messages)."""
        if self.log_path is None or not self.log_path.exists():
            return "<no log>"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "DJANGO_"))}
        assert self.dir is not None
        env.update(DJANGO_SETTINGS_MODULE="bugsink_conf", PYTHONPATH=str(self.dir))
        env.pop("VIRTUAL_ENV", None)
        return env

    def _run(self, binary: str, *args: str) -> str:
        """Run a Bugsink binary in the run folder; return stdout (raise with output if it fails)."""
        cmd = [str(self.venv / "bin" / binary), *args]
        res = subprocess.run(
            cmd, cwd=self.dir, env=self._env(), capture_output=True, text=True, timeout=120
        )
        if res.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
            )
        return res.stdout

    def create_superuser(self, username: str, password: str) -> None:
        """A login for the web UI (the demo's ``DEMO_KEEP=1`` mode)."""
        self._run(
            "bugsink-manage",
            "shell",
            "--no-imports",
            "-c",
            "from django.contrib.auth import get_user_model; "
            f"get_user_model().objects.create_superuser({username!r}, None, {password!r})",
        )

    # -- read-back API -----------------------------------------------------------------------

    def _get(self, url: str) -> Any:
        if url.startswith("/"):
            url = self.base_url + url
        req = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)

    def _get_all(self, url: str) -> list[dict[str, Any]]:
        """All ``results`` of a cursor-paginated list endpoint (follows ``next``)."""
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            page = self._get(next_url)
            if isinstance(page, list):  # unpaginated
                return items + page
            items.extend(page["results"])
            next_url = page.get("next")
        return items

    def issues(self) -> list[dict[str, Any]]:
        """The project's issues (``id``, ``friendly_id``, ``calculated_type``; see module doc)."""
        return self._get_all(f"/api/canonical/0/issues/?project={self.project_id}")

    def events(self, issue_id: str) -> list[dict[str, Any]]:
        """An issue's events, newest first, without ``data`` (``id``, ``event_id``, ...)."""
        return self._get_all(f"/api/canonical/0/events/?issue={issue_id}")

    def event(self, event_id: str) -> dict[str, Any]:
        """Full event detail (incl. raw ``data``) by internal ``id`` or by Sentry ``event_id``."""
        if event_id in self._details:
            return self._details[event_id]
        try:
            detail: dict[str, Any] = self._get(f"/api/canonical/0/events/{event_id}/")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
            # not an internal id: look the Sentry event_id up among all events
            wanted = _normalize_uuid(event_id)
            for issue in self.issues():
                for ev in self.events(issue["id"]):
                    if _normalize_uuid(ev["event_id"]) == wanted:
                        return self.event(ev["id"])
            raise KeyError(f"no event {event_id!r} in Bugsink") from None
        self._details[detail["id"]] = detail
        return detail

    def wait_for_events(
        self,
        n: int,
        timeout: float = 30,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Poll until at least ``n`` events (across all issues) exist; return their full details.

        Oldest first (by ``ingested_at``, then ``digest_order``). ``where`` filters on the full
        detail, e.g. ``lambda e: e["data"]["contexts"]["trace"]["trace_id"] == tid`` — useful since
        the session-scoped server accumulates events from all tests.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = [
                self.event(ev["id"]) for issue in self.issues() for ev in self.events(issue["id"])
            ]
            if where is not None:
                found = [ev for ev in found if where(ev)]
            if len(found) >= n:
                return sorted(found, key=lambda e: (e["ingested_at"], e["digest_order"]))
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"expected >= {n} events in Bugsink within {timeout}s, found {len(found)}; "
                    f"gunicorn log:\n{self.log_tail()}"
                )
            time.sleep(_POLL_INTERVAL * 2)

    def issue_url(self, issue_id: str) -> str:
        """Human (UI) URL of an issue, showing its latest event."""
        return f"{self.base_url}/issues/issue/{issue_id}/event/last/"


# -- pytest fixture (pytest is optional so that scripts can import this module) ---------------

try:
    import pytest
except ImportError:  # pragma: no cover - outside pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="session")
    def bugsink() -> Iterator[BugsinkServer]:
        """A started Bugsink server shared by the session; skipped if unavailable (fails in CI)."""
        ok, reason = bugsink_available()
        if not ok:
            if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on"):
                pytest.fail(f"Bugsink is required in CI: {reason}")
            pytest.skip(reason)
        server = BugsinkServer()
        try:
            server.start()
            yield server
        finally:
            server.stop()

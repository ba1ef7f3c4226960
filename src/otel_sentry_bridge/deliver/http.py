"""Send one envelope over HTTP(S) to the DSN's envelope endpoint, with ``requests``.

Blocking: :meth:`HttpTransport.send` waits for the network (up to ``timeout`` per connect and
per read), so only the worker thread calls it, never a request thread. It never raises.
Retries, rate limits and spooling are decided by the caller from the :class:`SendResult`,
whose ``body`` and ``error`` are redacted here (they are logged and printed): a server or
proxy may quote the ``X-Sentry-Auth`` header back.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

import requests
from requests.utils import resolve_proxies

from .._version import SDK_NAME, __version__
from ..setup.dsn import Dsn
from .compress import GZIP_MAGIC, gzip_body

__all__ = ["HttpTransport", "SendResult", "Transport"]

_CLIENT = f"{SDK_NAME}/{__version__}"
_BODY_CHARS = 500
_ERROR_CHARS = 500
_REDACTED = "***"
# The value of any sentry_key= or sentry_secret= (an auth header, a query string, JSON text):
# up to a separator. Linear time: a literal prefix, then one greedy class, nothing after it.
_AUTH_FIELD = re.compile(r"(sentry_(?:key|secret)=)[^\s,;&\"'<>]+", re.IGNORECASE)


@dataclass(frozen=True)
class SendResult:
    """What happened to one envelope. ``status`` is None when no HTTP response arrived."""

    status: int | None
    error: str | None = None
    rate_limits: str | None = None  # the X-Sentry-Rate-Limits header, unparsed
    retry_after: str | None = None  # the Retry-After header, unparsed
    body: str = ""  # the start of the response body, redacted, for diagnostics

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Transport(Protocol):
    """Something that delivers envelopes. Tests inject fakes through this."""

    def send(self, envelope: bytes) -> SendResult:
        """Deliver one encoded envelope; block until done; never raise."""
        ...

    def close(self) -> None:
        """Release connections. Idempotent."""
        ...


def _suppress_fallback() -> AbstractContextManager[None]:
    from opentelemetry import context

    @contextmanager
    def suppressed() -> Iterator[None]:
        ctx = context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True)
        ctx = context.set_value("suppress_instrumentation", True, ctx)  # older instrumentations
        token = context.attach(ctx)
        try:
            yield
        finally:
            context.detach(token)

    return suppressed()


_suppress_instrumentation: Callable[[], AbstractContextManager[None]]
try:
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    _suppress_instrumentation = suppress_instrumentation
except ImportError:  # opentelemetry-instrumentation is optional for hand-configured setups
    _suppress_instrumentation = _suppress_fallback


class HttpTransport:
    """POSTs envelopes over one keep-alive ``requests.Session``.

    ``send`` is for one thread at a time (the worker); ``close`` may be called from any
    thread, after which ``send`` returns an error without connecting. The session is created
    on first use and again in a forked child, which must not share the parent's sockets.
    ``verify`` is passed to requests: True (default), False, or a CA bundle path.
    """

    def __init__(
        self,
        dsn: Dsn,
        *,
        timeout: float = 5.0,
        gzip: bool = True,
        verify: bool | str = True,
    ) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        self._keys = tuple(key for key in (dsn.public_key, dsn.secret_key) if key)
        # Bytes of the reply read for the body: enough for _BODY_CHARS characters, and for a
        # key that starts in them to be read (and redacted) whole.
        longest_key = max((len(key.encode()) for key in self._keys), default=0)
        self._body_bytes = _BODY_CHARS * 4 + longest_key
        self._url = dsn.envelope_url
        self._timeout = timeout
        self._gzip = gzip
        self._verify = verify
        headers = {
            "X-Sentry-Auth": dsn.auth_header(_CLIENT),
            "Content-Type": "application/x-sentry-envelope",
            "User-Agent": _CLIENT,
        }
        # The URL and headers never change: prepared once (parsing and merging them is a
        # third of the CPU of a send), only the body is set per envelope.
        self._templates = {
            gzipped: requests.Request(
                "POST",
                self._url,
                headers={**headers, **({"Content-Encoding": "gzip"} if gzipped else {})},
            ).prepare()
            for gzipped in (False, True)
        }
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._session_pid = 0
        self._closed = False

    def send(self, envelope: bytes) -> SendResult:
        """POST ``envelope``; blocks up to about ``timeout``; never raises."""
        try:
            session = self._get_session()
            if session is None:
                return SendResult(status=None, error="transport is closed")
            body = envelope
            gzipped = self._gzip
            if envelope[:2] == GZIP_MAGIC:  # compressed by the worker already
                gzipped = True
            elif self._gzip:
                body = gzip_body(envelope)
            request = self._templates[gzipped].copy()
            request.prepare_body(body, None)
            # Straight to the adapter: Session.send would add cookie bookkeeping and a redirect
            # probe (a third of the CPU of a send) for a POST whose redirects we never follow
            # (a redirected POST turns into a GET) and whose cookies we never send back.
            adapter = session.get_adapter(self._url)
            proxies = (
                resolve_proxies(request, dict(session.proxies), True)
                if session.trust_env
                else session.proxies
            )
            # Our own POST must not become a span (or, via logging, another event).
            with _suppress_instrumentation():
                response = adapter.send(
                    request,
                    stream=False,
                    timeout=self._timeout,
                    verify=self._verify,
                    cert=None,
                    proxies=proxies,
                )
            with response:
                text = response.content[: self._body_bytes].decode("utf-8", "replace")
                return SendResult(
                    status=response.status_code,
                    rate_limits=response.headers.get("X-Sentry-Rate-Limits"),
                    retry_after=response.headers.get("Retry-After"),
                    body=_redact(text, self._keys)[:_BODY_CHARS],
                )
        except Exception as exc:  # the caller counts the loss; it must never see a raise
            return SendResult(status=None, error=self._describe(exc))

    def close(self) -> None:
        """Close the session's connections. Idempotent; safe from any thread."""
        with self._lock:
            self._closed = True
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def _get_session(self) -> requests.Session | None:
        with self._lock:
            if self._closed:
                return None
            pid = os.getpid()
            if self._session is None or self._session_pid != pid:
                # After a fork the inherited session is dropped, not closed: closing would
                # tear down connections the parent is still using.
                self._session = self._new_session()
                self._session_pid = pid
            return self._session

    def _new_session(self) -> requests.Session:
        """A session that resolves the environment (proxies, CA bundle, .netrc) once, not on
        every POST as requests does with ``trust_env``: a third of the cost of a send."""
        session = requests.Session()
        try:
            session.proxies.update(requests.utils.get_environ_proxies(self._url))
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle and self._verify is True:
                self._verify = bundle
        except Exception:  # odd environment: fall back to per-request resolution
            return session
        session.trust_env = False
        return session

    def _describe(self, exc: BaseException) -> str:
        try:
            text = f"{type(exc).__name__}: {exc}"
        except Exception:  # a broken __str__ must not break the no-raise promise
            text = type(exc).__name__
        # requests quotes a refused header value; a proxy's error may quote the header.
        return _redact(text, self._keys)[:_ERROR_CHARS]


def _redact(text: str, keys: Iterable[str]) -> str:
    """``text`` with ``***`` for the value of every ``sentry_key=`` and ``sentry_secret=``
    (any key, in any case) and for each of ``keys`` (the DSN's, as they are) anywhere.

    Linear in ``len(text)``: one regex pass that cannot backtrack, then plain replaces.
    """
    text = _AUTH_FIELD.sub(rf"\1{_REDACTED}", text)
    for key in keys:
        text = text.replace(key, _REDACTED)
    return text

"""Send one envelope over HTTP(S) to the DSN's envelope endpoint.

When no proxy applies to the DSN's URL, envelopes go over one keep-alive connection of
:mod:`.http_conn` (a raw socket: a send costs a fraction of a ``requests`` POST, whose
connection pool and header parsing cost a few hundred microseconds of CPU); through a proxy,
or if that connection cannot be set up, they go with ``requests``.

Blocking: :meth:`HttpTransport.send` waits for the network (up to ``timeout`` per connect and
per read; on the direct route, the whole reply within ``2 * timeout`` too), so only the worker
thread calls it, never a request thread. It never raises.
Retries, rate limits and spooling are decided by the caller from the :class:`SendResult`,
whose ``body`` and ``error`` are redacted here (they are logged and printed): a server or
proxy may quote the ``X-Sentry-Auth`` header back.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .._version import SDK_NAME, __version__
from ..setup.dsn import Dsn
from .compress import GZIP_MAGIC, gzip_body, worth_gzip
from .http_conn import HttpConnection

if TYPE_CHECKING:
    import requests

    _Route = HttpConnection | requests.Session

__all__ = ["HttpTransport", "SendResult", "Transport"]

_CLIENT = f"{SDK_NAME}/{__version__}"
_BODY_CHARS = 500
_ERROR_CHARS = 500
_REDACTED = "***"
# The value of any sentry_key= or sentry_secret= (an auth header, a query string, JSON text):
# up to a separator. Linear time: a literal prefix, then one greedy class, nothing after it.
_AUTH_FIELD = re.compile(r"(sentry_(?:key|secret)=)[^\s,;&\"'<>]+", re.IGNORECASE)
# A URL that requests sends as it is (lower-case host of letters, digits, dots and dashes, no
# label starting with a dot or dash, an optional port, a path of unreserved characters) and a
# header value it accepts (no line break, no leading space): checked here without importing
# requests. Anything else is prepared by requests, which encodes it or says why it cannot.
_PLAIN_URL = re.compile(
    r"https?://(?:[a-z0-9][a-z0-9-]*\.)*[a-z0-9][a-z0-9-]*(?::(?P<port>[0-9]{1,5}))?/[A-Za-z0-9._~/-]*"
)
_PLAIN_HEADER = re.compile(r"[^\s][^\r\n]*")


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


def _suppress_instrumentation() -> AbstractContextManager[None]:
    """Our own POST through requests must not become a span (or, via logging, another
    event). Imported here, not with the module: only the route through a proxy needs it."""
    suppress: Callable[[], AbstractContextManager[None]]
    try:
        from opentelemetry.instrumentation.utils import suppress_instrumentation as suppress
    except ImportError:  # opentelemetry-instrumentation is optional for hand-configured setups
        suppress = _suppress_fallback
    return suppress()


def _sendable_url(url: str, headers: Mapping[str, str]) -> str:
    """``url`` as requests will send it, with ``headers``; raises what requests raises for a
    URL or header it cannot send (``Dsn.parse`` refuses those first: this is a backstop)."""
    plain = _PLAIN_URL.fullmatch(url)
    if (
        plain is not None
        and int(plain["port"] or 0) <= 65535
        and all(_PLAIN_HEADER.fullmatch(value) for value in headers.values())
    ):
        return url
    import requests

    return requests.Request("POST", url, headers=dict(headers)).prepare().url or url


class HttpTransport:
    """POSTs envelopes over one keep-alive connection: an :class:`HttpConnection`, or a
    ``requests.Session`` when a proxy applies (the route, chosen once).

    ``send`` is for one thread at a time (the worker); ``close`` may be called from any
    thread, after which ``send`` returns an error without connecting (a send under way ends
    first, then its connection is closed). The route is created on first use and again in a
    forked child, which must not share the parent's sockets. ``verify`` as in requests: True
    (default), False, or a CA bundle path.
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
        self._headers = {
            gzipped: {**headers, **({"Content-Encoding": "gzip"} if gzipped else {})}
            for gzipped in (False, True)
        }
        self._sendable_url = _sendable_url(self._url, self._headers[True])
        # For requests (through a proxy): the URL and headers never change, so they are
        # prepared once (parsing and merging them is a third of the CPU of a send) and only
        # the body is set per envelope.
        self._templates: dict[bool, requests.PreparedRequest] = {}
        self._heads: dict[bool, bytes] = {}  # the same for an HttpConnection, once made
        self._lock = threading.Lock()
        self._route: _Route | None = None
        self._route_pid = 0
        self._busy = False  # a send is using self._route
        self._closed = False

    def send(self, envelope: bytes) -> SendResult:
        """POST ``envelope``; blocks up to about ``timeout``; never raises."""
        return self.send_within(envelope, self._timeout)

    def send_within(self, envelope: bytes, timeout: float) -> SendResult:
        """:meth:`send`, each step (connect, send, reply) within ``timeout`` seconds, or the
        transport's own timeout when that is shorter."""
        timeout = min(timeout, self._timeout)
        try:
            body = envelope
            gzipped = self._gzip
            if envelope[:2] == GZIP_MAGIC:  # compressed by the worker already
                gzipped = True
            elif self._gzip and worth_gzip(envelope):
                body = gzip_body(envelope)
            else:
                gzipped = False  # small: sent as it is (compress.py says why)
            route = self._acquire()
            if route is None:
                return SendResult(status=None, error="transport is closed")
            try:
                if isinstance(route, HttpConnection):
                    reply = route.post(self._heads[gzipped], body, timeout)
                    return SendResult(
                        status=reply.status,
                        rate_limits=reply.rate_limits,
                        retry_after=reply.retry_after,
                        body=self._diagnostic(reply.status, reply.body),
                    )
                return self._send_with_requests(route, body, gzipped, timeout)
            finally:
                self._release(route)
        except Exception as exc:  # the caller counts the loss; it must never see a raise
            return SendResult(status=None, error=self._describe(exc))

    def close(self) -> None:
        """Close the connection. Idempotent; safe from any thread."""
        with self._lock:
            self._closed = True
            route, self._route = self._route, None
            # Inherited over a fork: the parent's, left alone. In use: closed by _release.
            if self._route_pid != os.getpid() or self._busy:
                route = None
        if route is not None:
            route.close()

    def _send_with_requests(
        self, session: requests.Session, body: bytes, gzipped: bool, timeout: float
    ) -> SendResult:
        import requests
        from requests.utils import resolve_proxies

        template = self._templates.get(gzipped)
        if template is None:
            fields = self._headers[gzipped]
            template = requests.Request("POST", self._url, headers=fields).prepare()
            self._templates[gzipped] = template
        request = template.copy()
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
        with _suppress_instrumentation():
            response = adapter.send(
                request,
                stream=False,
                timeout=timeout,
                verify=self._verify,
                cert=None,
                proxies=proxies,
            )
        with response:
            return SendResult(
                status=response.status_code,
                rate_limits=response.headers.get("X-Sentry-Rate-Limits"),
                retry_after=response.headers.get("Retry-After"),
                body=self._diagnostic(response.status_code, response.content[: self._body_bytes]),
            )

    def _acquire(self) -> _Route | None:
        """The route for this send (None once closed), marked busy until :meth:`_release`."""
        with self._lock:
            if self._closed:
                return None
            pid = os.getpid()
            if self._route is None or self._route_pid != pid:
                # After a fork the inherited route is dropped, not closed: closing would
                # tear down connections the parent is still using.
                self._route = self._new_route()
                self._route_pid = pid
            self._busy = True
            return self._route

    def _release(self, route: _Route) -> None:
        with self._lock:
            self._busy = False
            detached = route is not self._route  # by close() during the send
        if detached:
            route.close()

    def _new_route(self) -> _Route:
        """The route for the DSN's URL, with the environment (proxies, CA bundle, .netrc)
        resolved once, not on every POST as requests does with ``trust_env`` (a third of the
        cost of a send): an :class:`HttpConnection` unless a proxy applies."""
        proxies: dict[str, str] = {}  # those of the environment, when one applies
        try:
            if _proxies_possible():
                from requests.utils import get_environ_proxies, select_proxy

                found = get_environ_proxies(self._url)
                if select_proxy(self._url, found) is not None:
                    proxies = dict(found)
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle and self._verify is True:
                self._verify = bundle
        except Exception:  # odd environment: requests resolves it per request
            return _session()
        if not proxies:
            try:
                connection = HttpConnection(
                    self._sendable_url,  # the host IDNA-encoded
                    timeout=self._timeout,
                    verify=self._verify,
                    keep=self._body_bytes,
                )
                self._heads = {
                    gzipped: connection.head(fields) for gzipped, fields in self._headers.items()
                }
                return connection
            except Exception:  # a URL or header it cannot send: requests will say why
                pass
        session = _session()
        session.proxies.update(proxies)
        session.trust_env = False
        return session

    def _diagnostic(self, status: int, body: bytes) -> str:
        """The start of a refusal's body, redacted, for the warning that reports it; nothing
        for a success (its body, the event id, is never shown: redacting it costs a regex
        pass per envelope)."""
        if 200 <= status < 300:
            return ""
        text = _redact(body.decode("utf-8", "replace"), self._keys)[:_BODY_CHARS]
        if 300 <= status < 400:
            # Never followed (the event and its key would go where the DSN does not say):
            # the DSN names an address the server moved, often http:// for https://.
            return f"{_REDIRECT_HINT} {text}".rstrip()
        return text

    def _describe(self, exc: BaseException) -> str:
        try:
            text = f"{type(exc).__name__}: {exc}"
        except Exception:  # a broken __str__ must not break the no-raise promise
            text = type(exc).__name__
        # requests quotes a refused header value; a proxy's error may quote the header.
        return _redact(text, self._keys)[:_ERROR_CHARS]


_REDIRECT_HINT = (
    "(a redirect, not followed: set SENTRY_DSN to the address the server answers at;"
    " an http:// DSN for an https:// server does this)"
)


def _proxies_possible() -> bool:
    """Whether a proxy could apply to any URL: a ``*_proxy`` variable is set (all that
    urllib's ``getproxies``, which requests asks, reads on Linux) or the system has proxy
    settings of its own (macOS, Windows). In the common case, no: neither requests nor
    urllib.request (with http.client and the email package) need be imported to know."""
    if sys.platform in ("darwin", "win32"):
        return True
    return any(value and name.lower().endswith("_proxy") for name, value in os.environ.items())


def _session() -> requests.Session:
    import requests

    return requests.Session()


def _redact(text: str, keys: Iterable[str]) -> str:
    """``text`` with ``***`` for the value of every ``sentry_key=`` and ``sentry_secret=``
    (any key, in any case) and for each of ``keys`` (the DSN's, as they are) anywhere.

    Linear in ``len(text)``: one regex pass that cannot backtrack, then plain replaces.
    """
    text = _AUTH_FIELD.sub(rf"\1{_REDACTED}", text)
    for key in keys:
        text = text.replace(key, _REDACTED)
    return text

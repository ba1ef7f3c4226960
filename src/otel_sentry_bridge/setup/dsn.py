"""Sentry DSN parsing: the envelope URL, the ``X-Sentry-Auth`` header and a safe display form.

Pure and immutable: safe to share between threads, never does I/O. Nothing here ever puts the
public key or the secret into an exception message, ``str()`` or ``repr()``; only
:attr:`Dsn.public_dsn` and :meth:`Dsn.auth_header` (which exist to be sent) contain the key.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from ..errors import InvalidDsn

__all__ = ["Dsn"]

_SCHEMES = ("http", "https")
# str.isdigit() would also accept "²" and other digits; Sentry's ids are 64-bit integers.
_PROJECT_ID = re.compile(r"[0-9]{1,20}")
_QUOTES = "\"'"
_SCHEME_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")  # RFC 3986 scheme, then "//"
_FORMAT_HINT = "expected <scheme>://<public_key>@<host>[:<port>][/<path>]/<project_id>"
# RFC 3986 userinfo (unreserved, sub-delims, ":" and %XX) without ",", which would split the
# X-Sentry-Auth header's fields.
_USERINFO = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+;=:-]|%[0-9A-Fa-f]{2})*")
_USERINFO_HINT = "letters, digits, -._~!$&'()*+;= and %XX"
# Dot-separated labels of letters, digits, "-" and "_", with an optional final dot.
# Labels of 1 to 63 characters (DNS, and Python's IDNA codec, which refuses longer ones at
# send time), 253 characters in all.
_HOST_NAME = re.compile(r"(?=.{1,253}\.?$)[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*\.?")
_IPV4_LIKE = re.compile(r"[0-9.]+")
_HOST_HINT = "expected a host name, an IPv4 address or an IPv6 address in brackets"


@dataclass(frozen=True, repr=False)
class Dsn:
    """A parsed DSN. Build it with :meth:`parse`; the constructor does not validate.

    ``host`` is bare (``::1``, not ``[::1]``); ``path`` is the prefix before the project id,
    either ``""`` or ``"/foo"`` without a trailing slash.
    """

    scheme: str
    public_key: str
    secret_key: str | None = field(repr=False)
    host: str
    port: int | None
    path: str
    project_id: str

    @classmethod
    def parse(cls, raw: object) -> Dsn:
        """Parse ``raw`` or raise :class:`InvalidDsn` with a message that names no key.

        Surrounding whitespace and one pair of matching quotes are dropped. What is left is
        refused when requests could not send to it, or would send elsewhere: whitespace or a
        control character anywhere; a scheme other than http(s); user info (public key and
        secret) with characters outside RFC 3986 user info, or with a ``,`` (which would
        split the ``X-Sentry-Auth`` header); a host that is not a name, an IPv4 address or
        a bracketed IPv6 address (see :func:`_valid_host`); a bad port; a project id that is
        not ASCII digits. A query and a fragment are ignored.
        """
        if not isinstance(raw, str):
            raise InvalidDsn(f"Sentry DSN must be a string, not {type(raw).__name__}")
        text = raw.strip()  # values from env files often carry a trailing newline
        # Docker env files and some shells pass quotes on literally; a DSN never starts with
        # one, so one matching pair around it is unwrapped.
        if len(text) >= 2 and text[0] in _QUOTES and text[-1] == text[0]:
            text = text[1:-1].strip()
        if not text:
            raise InvalidDsn("Sentry DSN is empty")
        if text[0] in _QUOTES or text[-1] in _QUOTES:
            raise InvalidDsn(f"Sentry DSN starts or ends with a stray quote ({_FORMAT_HINT})")
        bad = _first_invisible(text)
        if bad is not None:  # before urlsplit, which silently drops tabs and newlines
            raise InvalidDsn(
                f"Sentry DSN contains whitespace or a control character (U+{ord(bad):04X})"
            )
        if not _SCHEME_PREFIX.match(text):  # else "key@host/1" would get "has no public key"
            raise InvalidDsn(f"Sentry DSN does not start with <scheme>:// ({_FORMAT_HINT})")
        try:
            parts = urlsplit(text)
        except ValueError:  # e.g. an unclosed "[" around an IPv6 address
            raise InvalidDsn(f"Sentry DSN is not a valid URL ({_FORMAT_HINT})") from None
        if "@" not in parts.netloc:
            # Without the "@" we cannot tell key from host, so the DSN is never echoed here.
            raise InvalidDsn(f"Sentry DSN has no public key ({_FORMAT_HINT})")
        shown = _redacted(parts)

        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise InvalidDsn(
                f"Sentry DSN {shown} has unsupported scheme {scheme!r} (use http or https)"
            )
        userinfo = parts.netloc.rpartition("@")[0]
        public_key, _, secret = userinfo.partition(":")
        if not public_key:
            raise InvalidDsn(f"Sentry DSN {shown} has no public key ({_FORMAT_HINT})")
        if not _USERINFO.fullmatch(userinfo):
            raise InvalidDsn(
                f"Sentry DSN {shown} has a public key or secret with characters not allowed"
                f" in a URL's user info (use {_USERINFO_HINT})"
            )
        host = parts.hostname
        if not host:
            raise InvalidDsn(f"Sentry DSN {shown} has no host ({_FORMAT_HINT})")
        if not _valid_host(host, bracketed=parts.netloc.rpartition("@")[2].startswith("[")):
            raise InvalidDsn(f"Sentry DSN {shown} has an invalid host ({_HOST_HINT})")
        try:
            port = parts.port
        except ValueError:  # non-numeric or out of range
            raise InvalidDsn(f"Sentry DSN {shown} has an invalid port") from None
        if port == 0:
            raise InvalidDsn(f"Sentry DSN {shown} has an invalid port")

        path = parts.path
        if path.endswith("/"):  # tolerate ".../42/", a common copy-paste variant
            path = path[:-1]
        prefix, _, project_id = path.rpartition("/")
        if not project_id:
            raise InvalidDsn(f"Sentry DSN {shown} has no project id ({_FORMAT_HINT})")
        if not _PROJECT_ID.fullmatch(project_id):
            if project_id.isascii() and project_id.isdigit():
                raise InvalidDsn(f"Sentry DSN {shown} has a project id of over 20 digits")
            raise InvalidDsn(f"Sentry DSN {shown} has a non-numeric project id")

        return cls(
            scheme=scheme,
            public_key=public_key,
            secret_key=secret or None,
            host=host,
            port=port,
            path=prefix,
            project_id=project_id,
        )

    @property
    def netloc(self) -> str:
        """``host[:port]`` as it appears in a URL, with brackets around an IPv6 address."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def envelope_url(self) -> str:
        """Where envelopes are POSTed: ``{scheme}://{netloc}{path}/api/{project_id}/envelope/``."""
        return f"{self.scheme}://{self.netloc}{self.path}/api/{self.project_id}/envelope/"

    @property
    def public_dsn(self) -> str:
        """The DSN without its secret, as the envelope header's ``dsn`` field wants it."""
        return f"{self.scheme}://{self.public_key}@{self.netloc}{self.path}/{self.project_id}"

    def auth_header(self, client: str) -> str:
        """The ``X-Sentry-Auth`` value; ``client`` is ``<name>/<version>``."""
        value = f"Sentry sentry_key={self.public_key}, sentry_version=7, sentry_client={client}"
        if self.secret_key:  # only legacy DSNs have one; modern Sentry ignores it
            value += f", sentry_secret={self.secret_key}"
        return value

    def __str__(self) -> str:
        return f"{self.scheme}://***@{self.netloc}{self.path}/{self.project_id}"

    def __repr__(self) -> str:
        return f"Dsn({self})"


def _first_invisible(text: str) -> str | None:
    """The first whitespace or control character of ``text``: any Unicode space, and any
    character of category C (controls, format characters such as U+200B, surrogates,
    private-use and unassigned code points). None when there is none."""
    for char in text:
        if char.isspace() or unicodedata.category(char).startswith("C"):
            return char
    return None


def _valid_host(host: str, *, bracketed: bool) -> bool:
    """Whether requests (and urllib3 under it) can send to ``host``, as urlsplit returns it
    (lower case, brackets removed).

    Rules: in brackets, an IPv6 address without a zone id (``[v1.x]``-style IPvFuture would
    be sent as a host name). Otherwise, digits and dots only must be an IPv4 address; a name
    must be dot-separated labels of ASCII letters, digits, ``-`` and ``_`` (the part of the
    RFC 3986 reg-name that resolvers take: no ``%XX``, no sub-delimiters, no empty label,
    an optional final dot). A non-ASCII name must IDNA-encode as both urllib3 (per label,
    strict, STD3 rules) and requests (UTS 46) encode it, to such a name.
    """
    if bracketed:
        return "%" not in host and _is_ip(host, ipaddress.IPv6Address)
    if _IPV4_LIKE.fullmatch(host):
        return _is_ip(host, ipaddress.IPv4Address)
    if not host.isascii():
        encoded = _idna_encoded(host)
        return encoded is not None and _HOST_NAME.fullmatch(encoded) is not None
    return _HOST_NAME.fullmatch(host) is not None


def _is_ip(host: str, kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    try:
        kind(host)
    except ValueError:
        return False
    return True


def _idna_encoded(host: str) -> str | None:
    """``host`` IDNA-encoded as requests will send it, or None when urllib3's per-label
    check or requests' own encoding refuses it (both run before a request is sent)."""
    import idna  # a dependency of requests; only needed for the rare non-ASCII host

    try:
        for label in host.split("."):
            if not label.isascii():
                idna.encode(label, strict=True, std3_rules=True)
        return idna.encode(host, uts46=True).decode("ascii")
    except (UnicodeError, ValueError):  # idna.IDNAError is a UnicodeError
        return None


def _redacted(parts: SplitResult) -> str:
    """The DSN for messages: user info replaced by ``***``, query and fragment dropped."""
    host_port = parts.netloc.rpartition("@")[2]
    shown = f"{parts.scheme}://***@{host_port}{parts.path}"
    return shown if len(shown) <= 200 else f"{shown[:200]}..."  # a message, not a dump

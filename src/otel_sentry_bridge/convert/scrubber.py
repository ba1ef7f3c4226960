"""The text rules of scrubbing: which keys are sensitive, and secrets in free text.

``Scrubber.is_sensitive`` decides by key name (case-insensitive, partial match);
``Scrubber.free_text`` filters ``key=value`` pairs, auth schemes and URL passwords in text,
in linear time, on at most ``MAX_TEXT_CHARS`` characters. Pure and thread-safe. The walk over
a whole event is :mod:`.scrub`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

from ..safe_repr import safe_repr, truncate

__all__ = [
    "DEFAULT_DENYLIST",
    "FILTERED",
    "MAX_TEXT_CHARS",
    "Scrubber",
    "filtered",
    "header_value",
    "is_placeholder",
    "scrubber_for",
    "value_text",
]

_log = logging.getLogger("otel_sentry_bridge")

FILTERED = "[Filtered]"

# Matched as substrings of lower-cased keys: "X-Api-Key", "db_password", "sessionid", ...
DEFAULT_DENYLIST: tuple[str, ...] = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "private_key",
    "authorization",
    "authentication",
    "credential",
    "cookie",
    "session",
    "csrf",
    "xsrf",
    "sentry_dsn",
    "sentry_key",
    "dsn",
    "bearer",
    "jwt",
    # Session cookies of other stacks (PHP's PHPSESSID, Java's JSESSIONID, Express's
    # connect.sid), which a Django proxy or a shared domain may forward.
    "sessid",
    "connect.sid",
)

# Header names that carry credentials whatever the denylist says (normalised: lower case,
# "-" for "_", no WSGI "http-" prefix).
_CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "x-csrftoken",
        "x-csrf-token",
        "x-xsrf-token",
        "x-sentry-auth",
    }
)
# Standard ``user`` fields that identify the user: kept even when a word matches.
USER_IDENTITY = frozenset({"id", "username", "email", "ip_address", "name", "geo", "segment"})

# A header value that is itself a credential: "Bearer abc", "Basic dXNlcjpw".
_AUTH_VALUE = re.compile(r"^\s*['\"]?(bearer|basic|digest|token|negotiate)\s+\S", re.IGNORECASE)
# Every pattern below is linear in its input: a match can only start where a token starts
# (the look-behinds), so the engine never re-reads a long run of letters from each position
# inside it (the old key=value pattern took 1 s of GIL-holding time on an 8 KB header).
# URL credentials: "https://user:secret@host" and Sentry DSNs "https://<32 hex>[:secret]@host".
_URL_USERINFO = re.compile(
    r"(?<![a-zA-Z0-9+.\-])([a-zA-Z][a-zA-Z0-9+.\-]*://)([^\s:/@]+)(?::([^\s/@]*))?@"
)
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
# "key=value" / "key: value" in free text: the key and its separator; the value is read by
# _VALUE from where they end. ":" not before "//" (URLs).
_KEY_SEPARATOR = re.compile(
    r"(?<![\w.\-])(?P<key>[A-Za-z_][\w.\-]*)['\"]?\s*(?:=|:(?!//))\s*",
)
# A value: quoted (an unclosed quote runs to the end: filtered whole), or an optional auth
# scheme and a run up to a separator; values stop at "?" so "next=/a?token=x" finds token.
_VALUE = re.compile(
    r"\"[^\"]*\"?|'[^']*'?|(?:(?:bearer|basic|token)\s+)?[^\s&,;'\"?]+", re.IGNORECASE
)
# A %-style placeholder (logging templates), possibly quoted: "%s", "'%(name)r'".
_PLACEHOLDER = re.compile(r"""(['"]?)%(?:\([^)]{0,100}\))?[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]\1""")
# Text is cut to this before it is matched (the event's own limits are lower).
MAX_TEXT_CHARS = 8192
# A key longer than this is not matched but taken as sensitive: the size limits would cut it,
# and with it the word that made it sensitive.
_MAX_KEY_CHARS = 1024

_CACHE_SIZE = 4096


class Scrubber:
    """Replaces values under sensitive keys with ``[Filtered]``.

    ``denylist`` words are matched case-insensitively as substrings of keys; ``extra`` words
    are added to them. Immutable and thread-safe (the decision cache only ever holds correct
    answers, and dict reads/writes are atomic).
    """

    def __init__(
        self, denylist: Iterable[str] = DEFAULT_DENYLIST, extra: Iterable[str] = ()
    ) -> None:
        words = [str(word).lower() for word in (*denylist, *extra) if word]
        self.words: tuple[str, ...] = tuple(dict.fromkeys(words))
        # One regex search beats a Python-level loop over ~20 words.
        self._pattern = (
            re.compile("|".join(re.escape(word) for word in self.words)) if self.words else None
        )
        self._cache: dict[str, bool] = {}

    def is_sensitive(self, key: object) -> bool:
        if type(key) is str:
            cached = self._cache.get(key)
            if cached is not None:
                return cached
        if self._pattern is None:
            return False
        try:
            text = str.lower(str(key))
        except Exception:  # a key whose __str__ raises cannot be matched: fail closed
            return True
        if len(text) > _MAX_KEY_CHARS:
            return True
        result = self._pattern.search(text) is not None
        if type(key) is str:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()  # keys come from user data: keep memory bounded
            self._cache[key] = result
        return result

    def mapping(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``values`` (one level) with sensitive keys filtered."""
        return {k: (FILTERED if self.is_sensitive(k) else v) for k, v in values.items()}

    def url(self, url: str) -> str:
        """``url`` with sensitive query values and its password (or DSN key) filtered."""
        base, sep, query = url.partition("?")
        if sep:
            query, hash_sep, fragment = query.partition("#")
            scrubbed = self.query_string(query)
            if scrubbed is not query:
                url = f"{base}?{scrubbed}{hash_sep}{fragment}"
        return value_text(url)

    def query_string(self, query: str) -> str:
        """``a=1&token=x`` -> ``a=1&token=[Filtered]``; keeps order and unknown parts."""
        return self._pairs(query, "&")

    def _pairs(self, text: str, separator: str) -> str:
        """Filter the values of ``name=value`` parts; names are checked percent-decoded."""
        if "=" not in text:
            return text
        parts = text.split(separator)
        changed = False
        for index, part in enumerate(parts):
            name, sep, _value = part.partition("=")
            if not sep:
                continue
            if "%" in name or "+" in name:
                name = unquote_plus(name)
            if self.is_sensitive(name.strip()):
                parts[index] = f"{part.partition('=')[0]}={FILTERED}"
                changed = True
        return separator.join(parts) if changed else text

    def is_credential_header(self, name: object) -> bool:
        if not isinstance(name, str):
            return self.is_sensitive(name)
        normalised = str.lower(name).replace("_", "-")
        if normalised.startswith("http-"):
            normalised = normalised[5:]
        return normalised in _CREDENTIAL_HEADERS or self.is_sensitive(name)

    def free_text(self, text: str, limit: int = MAX_TEXT_CHARS) -> str:
        """``password=hunter2 user=bob`` -> ``password=[Filtered] user=bob``; URL passwords.

        ``text`` is first cut to ``limit`` characters: the work is bounded by that, whatever
        the input (a 64 KB header, a 1 MB log line)."""
        text = truncate(text, limit)
        return value_text(filtered(text, self.secret_spans(text)))

    def secret_spans(self, text: str) -> list[tuple[int, int]]:
        """Where the values of sensitive ``key=value`` pairs lie in ``text``, in order. One
        left-to-right scan: a value that was found is not searched again."""
        if "=" not in text and ":" not in text:
            return []
        spans: list[tuple[int, int]] = []
        position = 0
        for match in _KEY_SEPARATOR.finditer(text):
            if match.start() < position:
                continue  # inside a value already filtered
            if not self.is_sensitive(match.group("key")):
                continue
            start = match.end()
            value = _VALUE.match(text, start)
            if value is None or value.end() == start:
                continue
            spans.append((start, value.end()))
            position = value.end()
        return spans

    def log_params(self, params: list[Any], formatted: str) -> list[Any]:
        """The arguments of a log message whose formatted text is ``formatted``: each one that
        lies inside a secret of that text is filtered (``log.error("token=%s", t)``), and
        the text of the others is scrubbed like the message."""
        removed = [formatted[start:end] for start, end in self.secret_spans(formatted)]
        out: list[Any] = []
        for param in params:
            text = param if isinstance(param, str) else safe_repr(param)
            if text and any(text in secret for secret in removed):
                out.append(FILTERED)
            else:
                out.append(self.free_text(text))
        return out


def filtered(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each of ``spans`` (in order, not overlapping) replaced by FILTERED."""
    if not spans:
        return text
    parts: list[str] = []
    position = 0
    for start, end in spans:
        parts += (text[position:start], FILTERED)
        position = end
    parts.append(text[position:])
    return "".join(parts)


def value_text(text: str) -> str:
    """``text`` with URL passwords and Sentry DSN keys filtered (whatever key it is under)."""
    if "@" not in text or "://" not in text:
        return text
    scrubbed = _URL_USERINFO.sub(_userinfo, text)
    return text if scrubbed == text else scrubbed  # unchanged: keep sharing the original


def _userinfo(match: re.Match[str]) -> str:
    scheme, user, password = match.group(1), match.group(2), match.group(3)
    if password:
        return f"{scheme}{user}:{FILTERED}@"
    if _HEX32.fullmatch(user):  # a DSN's key: anyone holding it can send events
        return f"{scheme}{FILTERED}@"
    return match.group(0)


def header_value(value: Any, scrubber: Scrubber) -> Any:
    if not isinstance(value, str):
        return value
    match = _AUTH_VALUE.match(value)
    if match:
        return f"{match.group(1)} {FILTERED}"
    return scrubber.free_text(value)


def is_placeholder(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is a %-style placeholder (``%s``, ``'%(name)r'``)."""
    return _PLACEHOLDER.fullmatch(text, start, end) is not None


@lru_cache(maxsize=8)
def scrubber_for(extra: tuple[str, ...] = ()) -> Scrubber:
    """The process's scrubber for the default words plus ``extra`` (``OTEL_SENTRY_DENYLIST``):
    one per word list, so its compiled pattern and decision cache serve every caller."""
    return Scrubber(extra=extra)

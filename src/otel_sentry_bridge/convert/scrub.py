"""Pure helpers that keep secrets and huge values out of events.

``Scrubber.is_sensitive`` decides by key name (case-insensitive, partial match); ``safe_repr``
turns any object into a short string without ever raising; :func:`scrub_event` filters a whole
Sentry event.

:func:`scrub_event` never mutates its input: it returns a new event that shares every part it
did not need to change with the input (copy-on-write), or the input itself when nothing was
sensitive. Events are built from data other threads still hold (breadcrumbs live in the
capture store), so writing into them would be a data race. It runs on the worker thread for
every event: one pass, no deep copies, key decisions cached, and an object that appears in many
places scrubbed once.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

from ..safe_repr import safe_repr, truncate

__all__ = [
    "DEFAULT_DENYLIST",
    "FILTERED",
    "MAX_TEXT_CHARS",
    "Scrubber",
    "safe_repr",
    "scrub_event",
    "scrubber_for",
    "value_text",
]

_log = logging.getLogger("otel_sentry_bridge")

FILTERED = "[Filtered]"
_CYCLE = "<cycle>"  # same placeholder json_dumps uses

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
_USER_IDENTITY = frozenset({"id", "username", "email", "ip_address", "name", "geo", "segment"})

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

_MAX_DEPTH = 20  # deeper containers are replaced by FILTERED: unscanned data must not leak
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
        return value_text(_filtered(text, self.secret_spans(text)))

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


def _filtered(text: str, spans: list[tuple[int, int]]) -> str:
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


def _header_value(value: Any, scrubber: Scrubber) -> Any:
    if not isinstance(value, str):
        return value
    match = _AUTH_VALUE.match(value)
    if match:
        return f"{match.group(1)} {FILTERED}"
    return scrubber.free_text(value)


# -- the walk ------------------------------------------------------------------------------


class _Walk:
    """One scrub of one event: the scrubber, the containers on the current path, and what
    was already scrubbed."""

    __slots__ = ("done", "on_path", "s")

    def __init__(self, scrubber: Scrubber) -> None:
        self.s = scrubber
        self.on_path: set[int] = set()
        # id -> (object, result): data that holds one object in many places (a DAG: 50 wide
        # and 8 deep is 50**8 paths) is scrubbed, and copied, once. The object is kept so
        # that its id cannot be reused by another one during the walk.
        self.done: dict[int, tuple[Any, Any]] = {}

    def bag(self, value: Any, depth: int = 0) -> Any:
        """Any user data: sensitive keys at any depth filtered, strings checked for URLs."""
        kind = type(value)
        if kind is str:
            return self.once(value, depth, _bag_text) if "@" in value else value
        if kind is dict:
            return self.once(value, depth, _bag_mapping)
        if kind is list or kind is tuple:
            return self.once(value, depth, _bag_sequence)
        if value is None or kind is int or kind is float or kind is bool:
            return value
        if isinstance(value, str):
            return self.once(value, depth, _bag_text)
        if isinstance(value, Mapping):
            return self.once(value, depth, _bag_mapping)
        if isinstance(value, (list, tuple)):
            return self.once(value, depth, _bag_sequence)
        if isinstance(value, (set, frozenset)):
            return self.once(list(value), depth, _bag_sequence)
        if isinstance(value, (int, float)):
            return value
        # Any other object would be sent as its repr (by the size limits, after this): make
        # that text now, and scrub it ("Creds(password='x')").
        return self.s.free_text(safe_repr(value, MAX_TEXT_CHARS))

    def once(self, value: Any, depth: int, scrub: Callable[[_Walk, Any, int], Any]) -> Any:
        entry = self.done.get(id(value))
        if entry is not None and entry[0] is value:
            return entry[1]
        result = scrub(self, value, depth)
        self.done[id(value)] = (value, result)
        return result

    def mapping(
        self,
        value: Mapping[Any, Any],
        depth: int,
        child: Callable[[Any, int], Any],
        *,
        sensitive: Callable[[object], bool] | None = None,
    ) -> Any:
        if depth >= _MAX_DEPTH:
            return FILTERED
        ident = id(value)
        if ident in self.on_path:
            return _CYCLE
        is_sensitive = sensitive or self.s.is_sensitive
        cache = self.s._cache if sensitive is None else {}
        plain = child == self.bag  # its strings only need the "@" check
        self.on_path.add(ident)
        try:
            out: dict[Any, Any] | None = None
            for key, item in list(value.items()):
                hit = cache.get(key) if type(key) is str else None  # the usual case, inline
                if hit if hit is not None else is_sensitive(key):
                    new = FILTERED
                elif plain and type(item) is str and "@" not in item:  # nothing to find
                    continue
                else:
                    new = child(item, depth + 1)
                if new is not item:
                    if out is None:
                        out = dict(value)
                    out[key] = new
        finally:
            self.on_path.discard(ident)
        return value if out is None else out

    def sequence(self, value: Any, depth: int, child: Callable[[Any, int], Any]) -> Any:
        if depth >= _MAX_DEPTH:
            return FILTERED
        ident = id(value)
        if ident in self.on_path:
            return _CYCLE
        self.on_path.add(ident)
        try:
            out: list[Any] | None = None
            for index, item in enumerate(list(value)):
                new = child(item, depth + 1)
                if new is not item:
                    if out is None:
                        out = list(value)
                    out[index] = new
        finally:
            self.on_path.discard(ident)
        return value if out is None else out

    # -- request ----------------------------------------------------------------------------

    def request(self, request: Any) -> Any:
        """Each known part by its own rules; any other key as data (a secret under its own
        name is filtered)."""
        if not isinstance(request, Mapping):
            return self.bag(request)
        out: dict[Any, Any] | None = None
        for key, value in list(request.items()):
            if value is None or key == "method":
                continue
            fix = _REQUEST_PARTS.get(key) if type(key) is str else None
            if fix is not None:
                new = fix(self, value)
            elif self.s.is_sensitive(key):
                new = FILTERED
            else:
                new = self.bag(value, 1)
            if new is not value:
                if out is None:
                    out = dict(request.items())
                out[key] = new
        return request if out is None else out

    def headers(self, headers: Any) -> Any:
        if isinstance(headers, Mapping):
            return self.mapping(
                headers,
                0,
                lambda v, _d: _header_value(v, self.s),
                sensitive=self.s.is_credential_header,
            )
        if isinstance(headers, (list, tuple)):
            return self.pairs(headers, self.s.is_credential_header, _header_value)
        return headers

    def pairs(
        self,
        pairs: Any,
        sensitive: Callable[[object], bool],
        fix: Callable[[Any, Scrubber], Any] | None = None,
    ) -> Any:
        """``[[name, value], ...]`` (Sentry's list form of headers, cookies and queries)."""
        out: list[Any] | None = None
        for index, pair in enumerate(list(pairs)):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                new: Any = self.bag(pair)
            elif sensitive(pair[0]):
                new = [pair[0], FILTERED]
            else:
                value = fix(pair[1], self.s) if fix else self.bag(pair[1])
                new = pair if value is pair[1] else [pair[0], value]
            if new is not pair:
                if out is None:
                    out = list(pairs)
                out[index] = new
        return pairs if out is None else out

    def cookies(self, cookies: Any) -> Any:
        if isinstance(cookies, str):
            return self.s._pairs(cookies, ";")
        if isinstance(cookies, (list, tuple)):
            return self.pairs(cookies, self.s.is_sensitive)
        return self.bag(cookies)

    def query(self, query: Any) -> Any:
        if isinstance(query, str):
            return self.s.query_string(query)
        if isinstance(query, (list, tuple)):
            return self.pairs(query, self.s.is_sensitive)
        return self.bag(query)

    def data(self, data: Any) -> Any:
        if not isinstance(data, str):
            return self.bag(data)
        data = str.__str__(data)
        stripped = data.strip()
        if stripped.startswith(("{", "[")) and stripped.endswith(("}", "]")):
            try:
                parsed = json.loads(stripped)
            except (ValueError, RecursionError):  # not JSON, or nested past Python's stack
                parsed = None
            if isinstance(parsed, (dict, list)):
                new = self.bag(parsed)
                return data if new is parsed else json.dumps(new, ensure_ascii=False)
        if "=" in data and not any(c in data for c in " \n\"'{"):  # form-encoded body
            return value_text(self.s.query_string(data))
        # Anything else (JSON that did not parse, text) is free text: "password": "x" and
        # password=x are found in it as anywhere else.
        return self.s.free_text(data)

    def url(self, url: Any) -> Any:
        return self.s.url(url) if isinstance(url, str) else url

    # -- the other places -------------------------------------------------------------------

    def breadcrumbs(self, crumbs: Any) -> Any:
        if isinstance(crumbs, Mapping):
            values = crumbs.get("values")
            if not isinstance(values, (list, tuple)):
                return crumbs
            new = self.sequence(values, 0, lambda c, _d: self.crumb(c))
            return crumbs if new is values else {**crumbs, "values": new}
        if isinstance(crumbs, (list, tuple)):
            return self.sequence(crumbs, 0, lambda c, _d: self.crumb(c))
        return crumbs

    def crumb(self, crumb: Any) -> Any:
        if not isinstance(crumb, Mapping):
            return crumb
        out: dict[str, Any] | None = None
        data = crumb.get("data")
        if data is not None:
            new = self.bag(data)
            url = new.get("url") if isinstance(new, Mapping) else None
            if isinstance(url, str):  # http crumbs from any source: ?token=... in the query
                clean = self.url(url)
                if clean != url:
                    new = {**new, "url": clean}
            if new is not data:
                out = dict(crumb)
                out["data"] = new
        message = crumb.get("message")
        if isinstance(message, str):
            new_message = self.s.free_text(message)
            if new_message != message:
                out = out if out is not None else dict(crumb)
                out["message"] = new_message
        return crumb if out is None else out

    def exceptions(self, container: Any) -> Any:
        """``exception`` or ``threads``: only frame ``vars`` are touched."""
        if isinstance(container, Mapping):
            values = container.get("values")
            if not isinstance(values, (list, tuple)):
                return container
            new = self.sequence(values, 0, lambda v, _d: self.exception_value(v))
            return container if new is values else {**container, "values": new}
        if isinstance(container, (list, tuple)):
            return self.sequence(container, 0, lambda v, _d: self.exception_value(v))
        return container

    def exception_value(self, value: Any) -> Any:
        """Frame ``vars``, and secrets in the message (``token=...``, URL passwords)."""
        if not isinstance(value, Mapping):
            return value
        out: dict[str, Any] | None = None
        text = value.get("value")
        if isinstance(text, str):
            clean = self.s.free_text(text)
            if clean != text:
                out = {**value, "value": clean}
        stacktrace = value.get("stacktrace")
        frames = stacktrace.get("frames") if isinstance(stacktrace, Mapping) else None
        if isinstance(stacktrace, Mapping) and isinstance(frames, (list, tuple)):
            new = self.sequence(frames, 0, lambda f, _d: self.frame(f))
            if new is not frames:
                out = out if out is not None else dict(value)
                out["stacktrace"] = {**stacktrace, "frames": new}
        return value if out is None else out

    def template(self, template: str) -> str:
        """A log message template: secrets filtered, placeholders (``token=%s``) kept, since
        Sentry groups message events by the template."""
        template = truncate(str.__str__(template), MAX_TEXT_CHARS)
        spans = [
            (start, end)
            for start, end in self.s.secret_spans(template)
            if not _PLACEHOLDER.fullmatch(template, start, end)
        ]
        return value_text(_filtered(template, spans))

    def logentry(self, entry: Any) -> Any:
        """The message and its template scrubbed as free text; each argument that is (part
        of) a secret of the formatted message filtered."""
        if isinstance(entry, str):
            return self.s.free_text(entry)
        if not isinstance(entry, Mapping):
            return self.bag(entry)
        out = dict(entry.items())
        formatted = entry.get("formatted")
        message = entry.get("message")
        if isinstance(message, str):
            out["message"] = self.template(message)
        if isinstance(formatted, str):
            out["formatted"] = self.s.free_text(formatted)
        for key in ("message", "formatted"):
            if out.get(key) is not None and not isinstance(out[key], str):
                out[key] = self.bag(out[key])
        params = entry.get("params")
        if isinstance(params, (list, tuple)):
            text = formatted if isinstance(formatted, str) else message
            out["params"] = self.s.log_params(list(params), text if isinstance(text, str) else "")
        elif params is not None:
            out["params"] = self.bag(params)
        return out

    def frame(self, frame: Any) -> Any:
        if not isinstance(frame, Mapping):
            return frame
        variables = frame.get("vars")
        if variables is None:
            return frame
        new = self.bag(variables)
        return frame if new is variables else {**frame, "vars": new}

    def contexts(self, contexts: Any) -> Any:
        if not isinstance(contexts, Mapping):
            return contexts
        out: dict[Any, Any] | None = None
        for name, context in list(contexts.items()):
            if name == "trace":  # ids and status only, and the link to the trace: keep as is
                continue
            # A context must stay an object for Sentry: filter inside it, never the whole.
            new = self.bag(context)
            if new is not context:
                if out is None:
                    out = dict(contexts)
                out[name] = new
        return contexts if out is None else out

    def user(self, user: Any) -> Any:
        if not isinstance(user, Mapping):
            return user
        return self.mapping(
            user,
            0,
            lambda v, d: v if isinstance(v, (str, int, float)) else self.bag(v, d),
            sensitive=lambda k: k not in _USER_IDENTITY and self.s.is_sensitive(k),
        )


def _bag_text(_walk: _Walk, text: str, _depth: int) -> str:
    return value_text(text)


def _bag_mapping(walk: _Walk, value: Mapping[Any, Any], depth: int) -> Any:
    return walk.mapping(value, depth, walk.bag)


def _bag_sequence(walk: _Walk, value: Any, depth: int) -> Any:
    return walk.sequence(value, depth, walk.bag)


_REQUEST_PARTS: dict[str, Callable[[_Walk, Any], Any]] = {
    "headers": _Walk.headers,
    "cookies": _Walk.cookies,
    "query_string": _Walk.query,
    "data": _Walk.data,
    "env": lambda walk, env: (
        walk.mapping(
            env, 0, lambda v, _d: _header_value(v, walk.s), sensitive=walk.s.is_credential_header
        )
        if isinstance(env, Mapping)
        else walk.bag(env)
    ),
    "url": _Walk.url,
}

# How each top-level key is scrubbed. Keys named here with None are the event's own fields
# (ids, times, names): passed through. Any other key (what a before_send may add) is user
# data, scrubbed by key at any depth.
_SECTIONS: dict[str, Callable[[_Walk, Any], Any] | None] = {
    "request": _Walk.request,
    "extra": _Walk.bag,
    "breadcrumbs": _Walk.breadcrumbs,
    "exception": _Walk.exceptions,
    "threads": _Walk.exceptions,
    "contexts": _Walk.contexts,
    "user": _Walk.user,
    "logentry": _Walk.logentry,
    "message": _Walk.logentry,
    "tags": _Walk.bag,
    **dict.fromkeys(
        (
            "event_id",
            "timestamp",
            "start_timestamp",
            "platform",
            "level",
            "logger",
            "transaction",
            "transaction_info",
            "server_name",
            "release",
            "dist",
            "environment",
            "fingerprint",
            "sdk",
            "type",
            "spans",  # transactions: scrubbed attribute by attribute when built
            "measurements",
        )
    ),
}


@lru_cache(maxsize=8)
def scrubber_for(extra: tuple[str, ...] = ()) -> Scrubber:
    """The process's scrubber for the default words plus ``extra`` (``OTEL_SENTRY_DENYLIST``):
    one per word list, so its compiled pattern and decision cache serve every caller."""
    return Scrubber(extra=extra)


def scrub_event(event: dict[str, Any], scrubber: Scrubber) -> dict[str, Any]:
    """``event`` with values under sensitive keys replaced by ``[Filtered]``.

    Looks at ``request`` (headers, cookies, query string, body, env, url), ``extra``,
    breadcrumb ``data`` and ``key=value`` pairs in breadcrumb messages, the message and
    arguments of ``logentry``, exception messages and frame ``vars``, ``contexts`` (never
    ``contexts.trace``), ``user`` (never id/username/email/ip), ``tags``, and any top-level
    key that is not one of the event's own fields. Header values that are credentials
    (``Bearer …``/``Basic …``) and URL passwords or DSN keys anywhere in those places are
    filtered whatever their key.

    Never mutates ``event``: returns a new dict sharing unchanged parts, or ``event`` itself
    when nothing matched. Never raises, and fails closed: a section that cannot be scrubbed
    (hostile objects, nesting past Python's stack) is not sent as it was; an exception keeps
    only its type and scrubbed message, anything else is removed.
    """
    if not isinstance(event, dict):
        return event
    walk = _Walk(scrubber)
    out: dict[str, Any] | None = None
    for name, value in list(event.items()):
        scrub = _SECTIONS.get(name, _Walk.bag) if type(name) is str else _Walk.bag
        if scrub is None or value is None:
            continue
        try:
            new = scrub(walk, value)
        except Exception:  # RecursionError too: user data can be anything
            _log.debug("otel-sentry-bridge: could not scrub %r; not sent", name, exc_info=True)
            walk.on_path.clear()
            walk.done.clear()
            new = _fallback(name, value, scrubber)
        if new is not value:
            if out is None:
                out = dict(event)
            if new is _REMOVED:
                del out[name]
            else:
                out[name] = new
    return event if out is None else out


_REMOVED: Any = object()


def _fallback(name: object, value: Any, scrubber: Scrubber) -> Any:
    """What is sent of a section whose scrubbing failed: for exceptions, each one's type and
    scrubbed message (what identifies the error); for anything else, nothing."""
    if name not in ("exception", "threads"):
        return _REMOVED
    try:
        values: Any = value.get("values") if isinstance(value, Mapping) else value
        bare = []
        for item in list(values):
            if not isinstance(item, Mapping):
                continue
            kind, text = item.get("type"), item.get("value")
            entry: dict[str, Any] = {"type": kind if isinstance(kind, str) else "Error"}
            if isinstance(text, str):
                entry["value"] = scrubber.free_text(str.__str__(text))
            bare.append(entry)
        return {"values": bare} if bare else _REMOVED
    except Exception:
        return _REMOVED

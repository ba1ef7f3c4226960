"""The text rules of scrubbing: which keys are sensitive, and secrets in free text.

``Scrubber.is_sensitive`` decides by key name: a word of the denylist anywhere in the key,
lower-cased as written or with its words joined by ``_`` (``accessKey`` is ``access_key``,
``X-Api-Key`` is ``x_api_key``), but not in a count (``max_tokens``); one of a few short
words as the key's last word (``auth`` in ``X-Auth`` or ``basic_auth``, not in ``author`` or
``auth_method``); without ``send_default_pii`` also the keys that hold client addresses,
as whole words (``remote_addr``, not ``ship_address``).
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
    "PII_DENYLIST",
    "SAFE_HEADERS",
    "TOKEN_WORDS",
    "Scrubber",
    "filtered",
    "header_value",
    "is_placeholder",
    "scrubber_for",
    "value_text",
]

_log = logging.getLogger("otel_sentry_bridge")

FILTERED = "[Filtered]"

# Matched as substrings of keys, both lower-cased and without "-", "_", "." and spaces:
# "X-Api-Key", "db_password", "sessionid", "privateKey", ...
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
    "auth_key",
    "signature",  # presigned URLs (X-Amz-Signature), webhook signatures
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
    # Payment data.
    "credit_card",
    "card_number",
    "cardnumber",
)
# Matched as a whole part of a key only (split at separators and camelCase): as substrings
# they would filter "author", "classname", "pincode_region".
TOKEN_WORDS: tuple[str, ...] = ("auth", "sig", "ssn", "cvv", "cvc", "pin")
# Keys that hold the client's address: filtered without send_default_pii (sentry-sdk's PII
# list), wherever they appear (a JSON body, ``extra``, a local variable).
PII_DENYLIST: tuple[str, ...] = (
    "remote_addr",
    "ip_address",
    "client_ip",
    "x_forwarded_for",
    "x_real_ip",
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
# Request headers sent without send_default_pii (lower case), as sentry-sdk: none that
# identifies the client or carries a credential.
SAFE_HEADERS = frozenset({"user-agent", "host", "content-type", "accept", "content-length"})
# Standard ``user`` fields that identify the user: kept even when a word matches.
USER_IDENTITY = frozenset({"id", "username", "email", "ip_address", "name", "geo", "segment"})

# A header value that is itself a credential: "Bearer abc", "Basic dXNlcjpw".
_AUTH_VALUE = re.compile(
    r"^\s*['\"]?(bearer|basic|digest|token|negotiate|ntlm|hoba|mutual|oauth|aws4-hmac-sha256)"
    r"\s+\S",
    re.IGNORECASE,
)
# Every pattern below is linear in its input: a match can only start where a token starts
# (the look-behinds), so the engine never re-reads a long run of letters from each position
# inside it (the old key=value pattern took 1 s of GIL-holding time on an 8 KB header).
# URL credentials, "https://user:secret@host" and Sentry DSNs "https://<32 hex>[:secret]@host",
# are found by ``value_text``: a scheme, then the userinfo up to the last "@" before the URL
# ends (a password may hold "/" and "@": libraries take what they are given).
_SCHEME = re.compile(r"(?<![a-zA-Z0-9+.\-])[a-zA-Z][a-zA-Z0-9+.\-]*://")
_URL_END = re.compile(r"[\s'\"<>`]")
_PORT_AND_PATH = re.compile(r"\d{1,5}[/?#]")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
# A user name that is a token: a known token prefix (GitHub, GitLab), 32+ hex digits, or 20+
# characters mixing upper case, lower case and at least three digits, as generated ones do
# ("build-agent-01-production" is a name).
_TOKEN_USER = re.compile(
    r"(?:gh[pousr]_|github_pat_|glpat-)[\w-]{16,}"
    r"|[0-9a-fA-F]{32,}"
    r"|(?=(?:[^\d]*\d){3})(?=[^A-Z]*[A-Z])(?=[^a-z]*[a-z])[A-Za-z0-9_\-]{20,}"
)
# "key=value" / "key: value" / "key => value" in free text, and command-line flags
# ("--password=x", "-Dpassword=x"): the key and its separator; the value is read from where
# they end. ":" not before "//" (URLs).
_KEY_SEPARATOR = re.compile(
    r"(?<![\w.\-])-{0,2}(?P<key>[A-Za-z_][\w.\-]*)['\"]?\s*(?:=>?|:(?!//))\s*",
)
# A sensitive key's value: quoted (an unclosed quote runs to the end: filtered whole), or a
# run up to white space or "&" (a query string's next pair). "?", ";" and "," inside it are
# taken with it: "password=ab;cd" is one secret as far as anyone can tell; only a last
# ",", ";", "." or closing bracket stays (``token=abc; Path=/``, ``f(token=abc)``).
_VALUE = re.compile(r"\"[^\"]*\"?|'[^']*'?|[^\s&'\"]+")
_TRAILING = ",;.)]}"
# Auth schemes whose credential is one token ("Bearer abc") and those whose credential is a
# list of parameters ("Digest username=..., response=..."), which runs to the end of the
# line, as does any value of an "Authorization:" header line.
_ONE_TOKEN_SCHEME = re.compile(r"(?:bearer|basic|token|negotiate|ntlm)\s+", re.IGNORECASE)
_PARAMS_SCHEME = re.compile(
    r"(?:digest|hoba|mutual|oauth|aws4-hmac-sha256|signature)\s+[\w-]{1,64}\s*=", re.IGNORECASE
)
_LINE_KEYS = frozenset({"authorization", "proxyauthorization"})
_OPENERS = frozenset("[{(")
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_BRACKETS = re.compile(r"[\[\]{}()'\"]")
# A bind parameter of the DB-API paramstyles (format %s, pyformat %(name)s, qmark ?, numeric
# :1 and $1, named :name), with what may stick to it in a value: a PostgreSQL cast
# (%s::uuid, $1::text[]), closing brackets and separators.
_BIND_PARAMETER = re.compile(
    r"(?:%s|%\([^()]{1,100}\)s|\?\d{0,5}|\$\d{1,5}|:\d{1,5}|:[A-Za-z_]\w{0,99})"
    r"(?:::[A-Za-z_]\w{0,63}(?:\[\])*)?[)\],;]*"
)
# A SQL literal: '...' with '' or \' inside, a prefix (E'', N'', X'', _binary'', q'[..]');
# "..." (MySQL's strings; PostgreSQL's names, filtered too: fail closed); $$...$$ and
# $tag$...$tag$; numbers of six digits and more (card numbers) and 0x... hex. An unclosed
# string runs to the end. Linear: each quote ends, doubles or is escaped; nothing backtracks.
_SQL_LITERAL = re.compile(
    r"(?<![\w'\"])(?:[EeNnBbXxQq]|_[A-Za-z0-9]{1,20})?'(?:[^'\\]|\\.|'')*'?"
    r"|(?<![\w\"])\"(?:[^\"\\]|\\.|\"\")*\"?"
    r"|\$([A-Za-z_]\w{0,20})?\$[^$]*(?:\$(?:[A-Za-z_]\w{0,20})?\$)?"
    r"|\b0[xX][0-9A-Fa-f]+\b|\b\d{6,}\b"
)
# The names a statement mentions (columns, tables, keywords): one of them sensitive, every
# literal of the statement is filtered.
_SQL_NAME = re.compile(r"[A-Za-z_][\w.]{0,99}")
_ACCOUNT_STATEMENT = re.compile(
    r"\b(?:(?:create|alter)\s+(?:user|role|login)|set\s+password|identified\s+by)\b",
    re.IGNORECASE,
)
# A %-style placeholder (logging templates), possibly quoted: "%s", "'%(name)r'".
_PLACEHOLDER = re.compile(r"""(['"]?)%(?:\([^)]{0,100}\))?[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]\1""")
# Text is cut to this before it is matched (the event's own limits are lower).
MAX_TEXT_CHARS = 8192
# A key longer than this is not matched but taken as sensitive: the size limits would cut it,
# and with it the word that made it sensitive.
_MAX_KEY_CHARS = 1024

_CACHE_SIZE = 4096
# The parts of a key: words split at separators and at camelCase humps ("xAuthKey" -> x,
# Auth, Key; "HTTP_X_AUTH" -> HTTP, X, AUTH).
_KEY_PARTS = re.compile(r"[A-Z]{2,}(?![a-z])|[A-Z]?[a-z]+|[A-Z]|\d+")
_SEPARATORS = str.maketrans("", "", "-_. ")
_TO_UNDERSCORE = str.maketrans("-. ", "___")
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _squeezed(text: str) -> str:
    """``text`` lower-cased without separators: ``X-Api-Key`` -> ``xapikey``."""
    return str.lower(text).translate(_SEPARATORS)


def _normalised(text: str) -> str:
    """``text`` lower-cased with its words joined by ``_``: camelCase humps and ``-``, ``.``,
    spaces all become ``_`` (``privateKey`` -> ``private_key``, ``X-Api-Key`` ->
    ``x_api_key``). Unlike squeezing the separators out, it never joins two words into a
    third (``ids_new`` holds no ``dsn``)."""
    return str.lower(_HUMP.sub("_", text)).translate(_TO_UNDERSCORE)


# Counts that carry a sensitive word but no secret: the usage figures of LLM calls (OpenTelemetry's
# gen_ai.usage.input_tokens, max_tokens, llm.token_count.total, ...) and session counters.
# A key with one of these as a dotted part is not sensitive by a substring of the denylist.
_COUNTS = frozenset(
    {
        "maxtokens",
        "maxnewtokens",
        "maxoutputtokens",
        "maxcompletiontokens",
        "inputtokens",
        "outputtokens",
        "prompttokens",
        "completiontokens",
        "totaltokens",
        "cachedtokens",
        "reasoningtokens",
        "numtokens",
        "tokencount",
        "tokenscount",
        "sessioncount",
    }
)


def _alternation(words: Iterable[str], *, bounded: bool) -> re.Pattern[str] | None:
    unique = [word for word in dict.fromkeys(words) if word]
    if not unique:
        return None
    body = "|".join(re.escape(word) for word in unique)
    return re.compile(rf"(?<![a-z0-9])(?:{body})(?![a-z0-9])" if bounded else body)


class Scrubber:
    """Replaces values under sensitive keys with ``[Filtered]``.

    ``denylist`` words are matched case-insensitively as substrings of keys, separators
    ignored; ``extra`` words are added to them. Without ``send_default_pii`` (the default:
    fail closed) the keys of client addresses are sensitive too. Immutable and thread-safe
    (the decision cache only ever holds correct answers, and dict reads/writes are atomic).
    """

    def __init__(
        self,
        denylist: Iterable[str] = DEFAULT_DENYLIST,
        extra: Iterable[str] = (),
        *,
        send_default_pii: bool = False,
        token_words: Iterable[str] = TOKEN_WORDS,
    ) -> None:
        words = [str(word).lower() for word in (*denylist, *extra) if word]
        self.words: tuple[str, ...] = tuple(dict.fromkeys(words))
        self._tokens = frozenset(str(word).lower() for word in token_words)
        self.send_default_pii = send_default_pii
        # Each word as written and with its words joined by "_" ("api-key" -> "api_key"),
        # searched in the key as written and normalised (see _normalised).
        forms = [form for word in self.words for form in (word, _normalised(word))]
        # One regex search beats a Python-level loop over ~30 words.
        self._pattern = _alternation(forms, bounded=False)
        # The client-address words, as whole words of the normalised key only: "ip_address"
        # is not in "ship_address".
        self._pii = None if send_default_pii else _alternation(PII_DENYLIST, bounded=True)
        self._cache: dict[str, bool] = {}

    def is_sensitive(self, key: object) -> bool:
        if type(key) is str:
            cached = self._cache.get(key)
            if cached is not None:
                return cached
        try:
            text = str(key)
        except Exception:  # a key whose __str__ raises cannot be matched: fail closed
            return True
        if len(text) > _MAX_KEY_CHARS:
            return True
        result = self._matches(text)
        if type(key) is str:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()  # keys come from user data: keep memory bounded
            self._cache[key] = result
        return result

    def _matches(self, text: str) -> bool:
        normalised = _normalised(text)
        if (
            self._pattern is not None
            and (self._pattern.search(str.lower(text)) or self._pattern.search(normalised))
            and not any(_squeezed(part) in _COUNTS for part in text.split("."))
        ):
            return True
        if self._pii is not None and self._pii.search(normalised):
            return True
        # Short words count as the key, or its last word: "x_auth", "card_pin", "ssn", not
        # "auth_method" or "sig_figs".
        parts = _KEY_PARTS.findall(text)
        return bool(parts) and str.lower(parts[-1]) in self._tokens

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
            key = match.group("key")
            if not self.is_sensitive(key):
                continue
            start = match.end()
            header_line = ":" in match.group(0) and _squeezed(key) in _LINE_KEYS
            end = _value_end(text, start, header_line)
            if end == start:
                continue
            spans.append((start, end))
            position = end
        return spans

    def statement(self, statement: str) -> str:
        """A SQL ``statement`` with the values after sensitive names filtered, like
        :meth:`free_text`, except bind parameters: ``WHERE password = %s`` is kept,
        ``WHERE password = 'hunter2'`` becomes ``WHERE password = [Filtered]``. A statement
        that names a sensitive word anywhere (``password = lower('x')``, ``api_token <> 'x'``,
        ``WITH PASSWORD 'x'``), or manages accounts (``CREATE USER ... IDENTIFIED BY 'x'``),
        has every string literal filtered: where a literal sits in SQL says too little."""
        text = truncate(statement, MAX_TEXT_CHARS)
        if _ACCOUNT_STATEMENT.search(text) or any(
            self.is_sensitive(name) for name in dict.fromkeys(_SQL_NAME.findall(text))
        ):
            text = _SQL_LITERAL.sub(FILTERED, text)
        spans = [
            (start, end)
            for start, end in self.secret_spans(text)
            if not _BIND_PARAMETER.fullmatch(text, start, end)
        ]
        return value_text(filtered(text, spans))

    def log_params(self, params: list[Any], formatted: str) -> list[Any]:
        """The arguments of a log message whose formatted text is ``formatted``: each one that
        lies inside a secret of that text is filtered (``log.error("token=%s", t)``), and
        the text of the others is scrubbed like the message."""
        formatted = truncate(formatted, MAX_TEXT_CHARS)  # bounded as every text is
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


def _value_end(text: str, start: int, header_line: bool) -> int:
    """Where the value starting at ``text[start]`` ends: a bracketed value (``[...]``,
    ``{...}``, ``(...)``) at its matching bracket (the end of the text when unclosed), a
    value with a parameter-list auth scheme, or any but a one-token scheme on an
    ``Authorization:`` line (``header_line``), at the end of its line."""
    if start >= len(text):
        return start
    one_token = _ONE_TOKEN_SCHEME.match(text, start)
    if not one_token and (header_line or _PARAMS_SCHEME.match(text, start)):
        end = text.find("\n", start)
        return len(text) if end < 0 else end
    if text[start] in _OPENERS:
        return _bracket_end(text, start)
    value = _VALUE.match(text, one_token.end() if one_token else start)
    if value is None:
        return start
    first, end = value.start(), value.end()
    if text[first] in "'\"" or text[end - 1] not in _TRAILING:
        return end
    # Counted once, then kept up to date: a run of closers is stripped in linear time.
    unmatched = {
        closer: text.count(closer, first, end) - text.count(opener, first, end)
        for closer, opener in _CLOSERS.items()
    }
    while end > first + 1 and text[end - 1] in _TRAILING:
        closer = text[end - 1]
        if closer in unmatched:
            if unmatched[closer] <= 0:
                break  # "crypt(%s)": the bracket is the value's own
            unmatched[closer] -= 1
        end -= 1
    return end


def _bracket_end(text: str, start: int) -> int:
    """The end of the bracketed value at ``text[start]``: one pass, quotes skipped."""
    depth = 0
    quote = ""
    for found in _BRACKETS.finditer(text, start):
        char = found.group()
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
            if depth == 0:
                return found.end()
    return len(text)


def value_text(text: str) -> str:
    """``text`` with URL passwords and Sentry DSN keys filtered (whatever key it is under).
    Linear: each URL is read up to the next ``://`` at most."""
    if "@" not in text or "://" not in text:
        return text
    parts: list[str] = []
    position = 0
    search_from = 0
    length = len(text)
    while True:
        scheme = _SCHEME.search(text, search_from)
        if scheme is None:
            break
        start = search_from = scheme.end()
        following = text.find("://", start)
        bound = length if following < 0 else following
        stop = _URL_END.search(text, start, bound)
        at = text.rfind("@", start, stop.start() if stop else bound)
        if at < 0:
            continue
        shown = _userinfo(text[start:at])
        if shown is not None:
            parts += (text[position:start], shown)
            position = at
        search_from = at + 1
    if not parts:
        return text  # unchanged: keep sharing the original
    parts.append(text[position:])
    return "".join(parts)


def _userinfo(userinfo: str) -> str | None:
    """What is shown of a URL's userinfo (``user:password``), or None to keep it as is."""
    user, colon, password = userinfo.partition(":")
    if not user or any(char in user for char in "/?#[]"):
        return None  # "host/path/@name": a path, not a userinfo
    if colon:
        if not password:
            return None
        if _PORT_AND_PATH.match(password):
            return None  # "host:8080/users/@bob", "registry:4873/@babel/core": port and path
        return f"{user}:{FILTERED}"
    if _HEX32.fullmatch(user) or _TOKEN_USER.fullmatch(user):
        # A DSN's key (anyone holding it can send events), or a token used as the user
        # name ("https://ghp_...@github.com", git's way to pass one).
        return FILTERED
    return None


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
def scrubber_for(extra: tuple[str, ...] = (), send_default_pii: bool = False) -> Scrubber:
    """The process's scrubber for the default words plus ``extra`` (``OTEL_SENTRY_DENYLIST``),
    and the client-address keys unless ``send_default_pii``: one per word list, so its
    compiled pattern and decision cache serve every caller."""
    return Scrubber(extra=extra, send_default_pii=send_default_pii)

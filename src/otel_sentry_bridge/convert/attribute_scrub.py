"""Scrub OpenTelemetry attributes by their names: what leaves for Sentry as span data (the
spans of a transaction) or in OpenTelemetry's own exports to Sentry (:mod:`.otlp_scrub`).
Pure: data in, data out; no SDK object is needed.

- a value under a sensitive key (:meth:`Scrubber.is_sensitive`) is ``[Filtered]``, whatever
  its type (an array too);
- URLs (``url.full``, ``http.url``, ``http.target``): query values under sensitive names and
  URL passwords filtered, then the whole as free text (``#access_token=…``, ``;jsessionid=…``);
  ``url.query`` likewise; ``db.statement`` / ``db.query.text`` as SQL
  (:meth:`Scrubber.statement`: literals after sensitive names, bind parameters
  kept);
- headers (``http.request.header.*``, ``http.response.header.*``, gRPC metadata): credential
  headers filtered, a value that is itself a credential (``Bearer …``) too, the rest free
  text; without ``send_default_pii`` only ``User-Agent``, ``Host``, ``Content-Type``,
  ``Accept`` and ``Content-Length`` are kept, the others removed (as the Django hook does);
- without ``send_default_pii``, who the client is is removed: ``client.*``,
  ``http.client_ip``, ``enduser.*``, ``user.*``, ``geo.*``, the bind parameters of
  statements (``db.query.parameter.*``, ``db.statement.parameters``), and the peer's address
  (``net.peer.ip``/``.port``/``.name``, ``net.sock.peer.*``, ``network.peer.*``) on spans
  whose peer is the client: server and internal spans, and log records (on client, producer
  and consumer spans the peer is the server called, and is kept);
- any other string is free text (:meth:`Scrubber.free_text`: ``key=value`` pairs with a
  sensitive key, auth schemes, URL passwords), cut to ``MAX_TEXT_CHARS``; except
  ``exception.stacktrace`` (and ``code.stacktrace``), scrubbed line-aligned chunk by chunk up
  to ``MAX_LONG_TEXT_CHARS``, so a long chained traceback keeps its last exception;
- numbers and booleans as they are; a nested mapping (log bodies and attributes may hold
  them) by the same rules; bytes and any other object ``[Filtered]``.

Never raises and fails closed: a value that cannot be scrubbed is ``[Filtered]``, an
attribute whose key is not a string is removed, a span or log record that cannot be scrubbed
at all is not sent. Never mutates its input: a result shares what did not change, and is the
input itself when nothing did (copy-on-write). Pure: data in, data out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..safe_repr import truncate
from .scrubber import FILTERED, MAX_TEXT_CHARS, SAFE_HEADERS, Scrubber, header_value

__all__ = ["MAX_LONG_TEXT_CHARS", "AttributeRules", "free_text_rule", "scrub_attributes"]

# ``exception.stacktrace`` is kept up to this many characters (its head: the SDK's own
# attribute length limit cuts the end too), scrubbed in line-aligned chunks of at most
# ``MAX_TEXT_CHARS``; a single longer line is cut.
MAX_LONG_TEXT_CHARS = 8 * MAX_TEXT_CHARS
# Nesting deeper than this (a log body's mappings and arrays) is ``[Filtered]``.
_MAX_DEPTH = 16

# Headers kept without send_default_pii: those the Django hook sends (none identifies the
# client or carries a credential). Names lower-cased, "_" as "-".
_HEADER_PREFIXES = (
    "http.request.header.",
    "http.response.header.",
    "rpc.request.metadata.",
    "rpc.response.metadata.",
    "rpc.grpc.request.metadata.",
    "rpc.grpc.response.metadata.",
)
# Who the client is: removed without send_default_pii, on every span and log record.
_CLIENT_PREFIXES = ("client.", "enduser.", "user.", "geo.", "db.query.parameter.")
_CLIENT_KEYS = frozenset({"http.client_ip", "db.statement.parameters"})
# The peer's address: the client's on server (and internal) spans and in log records.
_PEER_KEYS = frozenset(
    {
        "net.peer.ip",
        "net.peer.port",
        "net.peer.name",
        "net.sock.peer.addr",
        "net.sock.peer.port",
        "net.sock.peer.name",
        "network.peer.address",
        "network.peer.port",
    }
)
_DROP: Any = object()  # an attribute removed


# -- the text rules: (scrubber, text) -> text ----------------------------------------------


def free_text_rule(scrubber: Scrubber, text: str) -> str:
    return scrubber.free_text(text)


def _url(scrubber: Scrubber, text: str) -> str:
    return scrubber.free_text(scrubber.url(text))


def _query(scrubber: Scrubber, text: str) -> str:
    return scrubber.free_text(scrubber.query_string(text))


def _statement(scrubber: Scrubber, text: str) -> str:
    return scrubber.statement(text)


def _header_text(scrubber: Scrubber, text: str) -> str:
    return str(header_value(text, scrubber))


def _long_text(scrubber: Scrubber, text: str) -> str:
    """Free text over line-aligned chunks of at most ``MAX_TEXT_CHARS`` (the scrubber's own
    bound), up to ``MAX_LONG_TEXT_CHARS`` in all."""
    if len(text) <= MAX_TEXT_CHARS:
        return scrubber.free_text(text)
    text = truncate(text, MAX_LONG_TEXT_CHARS)
    out: list[str] = []
    chunk: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        if size + len(line) > MAX_TEXT_CHARS and chunk:
            out.append(scrubber.free_text("".join(chunk)))
            chunk, size = [], 0
        if len(line) > MAX_TEXT_CHARS:  # cut (free_text would), keeping the line break
            ending = line[len(line.rstrip("\r\n")) :]
            out.append(scrubber.free_text(line) + ending)
            continue
        chunk.append(line)
        size += len(line)
    if chunk:
        out.append(scrubber.free_text("".join(chunk)))
    return "".join(out)


_TextRule = Callable[[Scrubber, str], str]
_TEXT_RULES: dict[str, _TextRule] = {
    "url.full": _url,
    "http.url": _url,
    "http.target": _url,
    "url.query": _query,
    "db.statement": _statement,
    "db.query.text": _statement,
    "exception.stacktrace": _long_text,
    "code.stacktrace": _long_text,
}


def _header_name(key: str) -> str | None:
    """``http.request.header.x_api_key`` -> ``x-api-key``; None: not a header."""
    if not key.startswith(_HEADER_PREFIXES):
        return None
    for prefix in _HEADER_PREFIXES:
        if key.startswith(prefix):
            return str.lower(key[len(prefix) :]).replace("_", "-")
    return None  # pragma: no cover - startswith(tuple) matched one of them


# -- attributes ----------------------------------------------------------------------------


class AttributeRules:
    """The rules for one span or log record."""

    __slots__ = ("peer_is_client", "scrubber", "send_default_pii")

    def __init__(self, scrubber: Scrubber, send_default_pii: bool, peer_is_client: bool) -> None:
        self.scrubber = scrubber
        self.send_default_pii = send_default_pii
        self.peer_is_client = peer_is_client

    def attributes(self, attributes: Mapping[str, Any], depth: int) -> Mapping[str, Any]:
        try:
            items = list(attributes.items())
        except Exception:  # a mapping that cannot be read: nothing of it is sent
            return {}
        out: dict[str, Any] | None = None
        for index, (key, value) in enumerate(items):
            new = self._entry(key, value, depth)
            if out is None:
                if new is value:
                    continue
                out = dict(items[:index])
            if new is not _DROP:
                out[key] = new
        return attributes if out is None else out

    def _entry(self, key: object, value: Any, depth: int) -> Any:
        if type(key) is not str:  # OpenTelemetry's keys are strings; run no code of others
            return _DROP
        try:
            if not self.send_default_pii and self._identifies_client(key):
                return _DROP
            header = _header_name(key)
            if header is not None:
                return self._header(key, header, value)
            if self.scrubber.is_sensitive(key):
                return FILTERED
            return self.value(value, _TEXT_RULES.get(key, free_text_rule), depth)
        except Exception:  # RecursionError too: whatever it was, it is not sent as it was
            return FILTERED

    def _identifies_client(self, key: str) -> bool:
        if key in _CLIENT_KEYS or key.startswith(_CLIENT_PREFIXES):
            return True
        return self.peer_is_client and key in _PEER_KEYS

    def _header(self, key: str, name: str, value: Any) -> Any:
        if not self.send_default_pii and name not in SAFE_HEADERS:
            return _DROP
        if self.scrubber.is_credential_header(name) or self.scrubber.is_sensitive(key):
            return FILTERED
        return self.value(value, _header_text, 0)

    def value(self, value: Any, rule: _TextRule, depth: int) -> Any:
        """``value`` scrubbed: strings by ``rule``, arrays item by item, mappings as
        attributes; numbers as they are; anything else ``[Filtered]``."""
        if type(value) is str:
            clean = rule(self.scrubber, value)
            return value if clean == value else clean
        if value is None or type(value) in (bool, int, float):
            return value
        if depth >= _MAX_DEPTH:
            return FILTERED
        if isinstance(value, str):  # a subclass: its own methods are not run
            return rule(self.scrubber, str.__str__(value))
        if isinstance(value, int):  # a subclass (an IntEnum): as the plain number
            return int.__int__(value)
        if isinstance(value, float):
            return float.__float__(value)
        if isinstance(value, (list, tuple)):
            return self._sequence(value, rule, depth + 1)
        if isinstance(value, Mapping):
            return self.attributes(value, depth + 1)
        return FILTERED  # bytes (cannot be read as text reliably), objects of any kind

    def _sequence(self, values: Sequence[Any], rule: _TextRule, depth: int) -> Any:
        items = list(values)
        out: list[Any] | None = None
        for index, item in enumerate(items):
            new = self.value(item, rule, depth)
            if new is not item:
                if out is None:
                    out = list(items)
                out[index] = new
        return values if out is None else tuple(out)


def scrub_attributes(
    attributes: Mapping[str, Any],
    scrubber: Scrubber,
    send_default_pii: bool,
    *,
    peer_is_client: bool = True,
) -> Mapping[str, Any]:
    """``attributes`` (OpenTelemetry's) scrubbed by the module's rules; ``attributes`` itself
    when nothing changed. ``peer_is_client``: the ``net.peer.*`` / ``network.peer.*``
    attributes describe the client (server spans, log records), removed without
    ``send_default_pii``; False for client, producer and consumer spans. Never raises."""
    if not isinstance(attributes, Mapping):
        return {}
    return AttributeRules(scrubber, send_default_pii, peer_is_client).attributes(attributes, 0)

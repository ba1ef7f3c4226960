"""The Sentry envelope wire format: encode and decode as a pair, plus JSON that cannot fail.

Envelope = header line, then per item an item-header line and a payload, newline separated
(https://develop.sentry.dev/sdk/envelopes/). Every function here is pure, thread-safe and
non-blocking. Encoding never raises on odd data (the event came from user code); decoding is
for our own spool and for tests, and raises :class:`MalformedEnvelope` on bad input.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from ..setup.dsn import Dsn
from .compress import GZIP_MAGIC

__all__ = [
    "MalformedEnvelope",
    "client_report_item",
    "decode_envelope",
    "decode_events",
    "encode_envelope",
    "event_envelope",
    "iso_utc",
    "json_dumps",
]

Headers = dict[str, Any]
Item = tuple[Headers, bytes]

_MAX_DEPTH = 100  # deeper data is cut; also keeps the fallback walk clear of RecursionError
_CYCLE = "<cycle>"
_TOO_DEEP = "<max depth>"


class MalformedEnvelope(ValueError):
    """``decode_envelope`` was given bytes that are not an envelope."""


def json_dumps(obj: object) -> bytes:
    """Compact UTF-8 JSON of ``obj``. Never raises; the result is always valid JSON and UTF-8.

    Plain JSON data takes the fast path. Anything else goes through a sanitising copy where
    unknown objects become their ``repr()``, sets and tuples become lists, non-string keys
    become strings, cycles and over-deep nesting become placeholders, NaN and infinities
    become ``"nan"``/``"inf"``/``"-inf"`` and lone surrogates become U+FFFD.
    """
    try:
        return _dumps(obj)
    except Exception:  # anything from user data: TypeError, ValueError, ...
        pass
    try:
        return _dumps(_sanitise(obj, (), 0))
    except Exception:  # a last resort; _sanitise output should always dump
        return _dumps(f"<unserialisable {_type_name(obj)}>")


# allow_nan=False: NaN is not JSON, and relay rejects it; .encode fails on lone surrogates.
# Made once: json.dumps with these options builds an encoder per call (1-2 µs of the ~4 a
# small header takes).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _dumps(obj: object) -> bytes:
    return _ENCODER.encode(obj).encode("utf-8")


def _sanitise(value: object, parents: tuple[int, ...], depth: int) -> object:
    """A copy of ``value`` made only of str, int, float, bool, None, list and dict."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, int):
        try:
            int.__repr__(value)  # ints past sys.get_int_max_str_digits() cannot be printed
        except ValueError:
            return f"<int with {value.bit_length()} bits>"
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else repr(float(value))
    if not isinstance(value, (dict, list, tuple, set, frozenset)):
        return _safe_repr(value)

    # Only ancestors count as a cycle: the same list twice side by side is fine.
    if id(value) in parents:
        return _CYCLE
    if depth >= _MAX_DEPTH:
        return _TOO_DEEP
    try:  # a subclass may override iteration; snapshot first so a resize cannot bite
        entries = list(value.items()) if isinstance(value, dict) else list(value)
    except Exception:  # user code
        return _safe_repr(value)
    inner = (*parents, id(value))
    if isinstance(value, dict):
        return {_key(k): _sanitise(v, inner, depth + 1) for k, v in entries}
    return [_sanitise(v, inner, depth + 1) for v in entries]


def _key(key: object) -> str:
    # Same spelling as json.dumps for the key types it accepts itself.
    if isinstance(key, str):
        return _clean_str(key)
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, (int, float)):
        sanitised = _sanitise(key, (), 0)
        return sanitised if isinstance(sanitised, str) else repr(sanitised)
    return _safe_repr(key)


def _clean_str(text: str) -> str:
    """``text`` as a plain str that encodes to UTF-8: lone surrogates become U+FFFD."""
    text = str.__str__(text)  # a plain str: subclasses may override encode()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Via UTF-16, a pair of surrogate code points (from UTF-16 data) joins into one
        # character; lone halves (e.g. from surrogateescape) become U+FFFD.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _safe_repr(value: object) -> str:
    try:
        text = repr(value)
        if not isinstance(text, str):  # a broken __repr__ can return anything via __class__
            raise TypeError("repr() did not return str")
        return _clean_str(text)
    except Exception:  # a failing __repr__ is user code
        return f"<unrepresentable {_type_name(value)}>"


def _type_name(value: object) -> str:
    try:
        return _clean_str(str(type(value).__name__))
    except Exception:  # a metaclass can make even this fail
        return "object"


def encode_envelope(
    headers: Mapping[str, Any], items: Iterable[tuple[Mapping[str, Any], bytes]]
) -> bytes:
    """Serialise an envelope; each item header gets ``length`` = its payload's byte length."""
    out = [json_dumps(dict(headers)), b"\n"]
    for item_headers, payload in items:
        framed = {**item_headers, "length": len(payload)}
        out += (json_dumps(framed), b"\n", payload, b"\n")
    return b"".join(out)


def decode_envelope(data: bytes) -> tuple[Headers, list[Item]]:
    """Parse an envelope (items with or without ``length``); raise :class:`MalformedEnvelope`."""
    headers, pos = _read_json_line(data, 0, "envelope header")
    items: list[Item] = []
    while pos < len(data):
        item_headers, pos = _read_json_line(data, pos, f"item {len(items)} header")
        length = item_headers.get("length")
        if length is None:
            # Without a length, the payload runs to the next newline (or the end).
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end
            payload, pos = data[pos:end], end + 1
        else:
            if type(length) is not int or length < 0:
                raise MalformedEnvelope(f"item {len(items)} has an invalid length {length!r}")
            end = pos + length
            if end > len(data):
                raise MalformedEnvelope(
                    f"item {len(items)} declares {length} bytes but only {len(data) - pos} remain"
                )
            if end < len(data) and data[end : end + 1] != b"\n":
                raise MalformedEnvelope(f"item {len(items)} payload is not followed by a newline")
            payload, pos = data[pos:end], end + 1
        items.append((item_headers, payload))
    return headers, items


def _read_json_line(data: bytes, pos: int, what: str) -> tuple[Headers, int]:
    end = data.find(b"\n", pos)
    end = len(data) if end < 0 else end
    try:
        value = json.loads(data[pos:end])
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise MalformedEnvelope(f"{what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MalformedEnvelope(f"{what} is not a JSON object")
    return value, end + 1


def event_envelope(
    event: Mapping[str, Any],
    *,
    dsn: Dsn | None,
    sent_at: datetime,
    sdk: Mapping[str, Any],
    trace: Mapping[str, Any] | None,
    encode: Callable[[Mapping[str, Any]], bytes] = json_dumps,
) -> bytes:
    """One ``event`` item with its envelope header. ``event["event_id"]`` must exist;
    ``encode`` gives its JSON (:func:`json_dumps`, or a faster one that gives the same).

    An event of ``"type": "transaction"`` goes as a ``transaction`` item (Sentry counts and
    rate-limits it under that category). ``sent_at`` is when the envelope leaves (relay uses
    it to correct clock drift); a naive datetime is taken as UTC.
    """
    headers: Headers = {"event_id": event["event_id"], "sent_at": iso_utc(sent_at)}
    if dsn is not None:
        headers["dsn"] = dsn.public_dsn
    headers["sdk"] = dict(sdk)
    if trace is not None:
        headers["trace"] = dict(trace)
    item_type = "transaction" if event.get("type") == "transaction" else "event"
    item = {"type": item_type, "content_type": "application/json"}
    return encode_envelope(headers, [(item, encode(event))])


def client_report_item(
    discarded: Mapping[tuple[str, str], int], timestamp: datetime
) -> tuple[Headers, bytes]:
    """A ``client_report`` item; ``discarded`` maps ``(reason, category)`` to a count.

    Zero counts are left out. ``timestamp`` is sent as Unix seconds, as sentry-python does.
    """
    report = {
        "timestamp": _as_utc(timestamp).timestamp(),
        "discarded_events": [
            {"reason": reason, "category": category, "quantity": quantity}
            for (reason, category), quantity in discarded.items()
            if quantity > 0
        ],
    }
    return {"type": "client_report"}, json_dumps(report)


def decode_events(data: bytes, item_type: str = "event") -> list[dict[str, Any]]:
    """The JSON payloads of the ``event`` items (or those of ``item_type``, e.g.
    ``"transaction"``) in ``data``, gzip-compressed or not."""
    if data[:2] == GZIP_MAGIC:
        data = gzip.decompress(data)
    _, items = decode_envelope(data)
    events: list[dict[str, Any]] = []
    for item_headers, payload in items:
        if item_headers.get("type") == item_type:
            events.append(json.loads(payload))
    return events


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def iso_utc(moment: datetime) -> str:
    # isoformat of the naive UTC time: the same text as strftime("...%S.%fZ"), a third faster
    return _as_utc(moment).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"

"""Give up parts of a bounded event, least valuable first, until its JSON fits the byte
budget; and the bare skeleton sent when an event cannot be bounded at all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..deliver.envelope import json_dumps
from ..safe_repr import truncate
from .bound import MAX_MESSAGE_CHARS
from .schema import IDENTITY_KEYS

__all__ = ["skeleton", "trim"]


def _size(value: Any) -> int:
    return len(json_dumps(value))


def _entry(key: str, value: Any) -> int:
    """Bytes saved by removing ``"key":value,`` from an object."""
    return _size(key) + _size(value) + 2


def _own_dict(parent: dict[str, Any], key: str) -> dict[str, Any] | None:
    """``parent[key]`` as a dict private to this call (copied once), or None."""
    value = parent.get(key)
    if not isinstance(value, dict):
        return None
    value = dict(value)
    parent[key] = value
    return value


def _own_list(parent: dict[str, Any], key: str) -> list[Any] | None:
    value = parent.get(key)
    if not isinstance(value, list):
        return None
    value = list(value)
    parent[key] = value
    return value


def _own_dicts(items: list[Any]) -> list[dict[str, Any]]:
    """Replace the dicts in ``items`` by private copies; return those copies."""
    owned = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            items[index] = item = dict(item)
            owned.append(item)
    return owned


def _own_frames(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Private copies of every frame (threads first, then exceptions root cause first),
    outermost first: the order their details are given up in."""
    frames: list[dict[str, Any]] = []
    for section in ("threads", "exception"):
        container = _own_dict(event, section)
        values = _own_list(container, "values") if container is not None else None
        for value in _own_dicts(values or []):
            stacktrace = _own_dict(value, "stacktrace")
            own = _own_list(stacktrace, "frames") if stacktrace is not None else None
            frames.extend(_own_dicts(own or []))
    return frames


def _largest_first(container: dict[str, Any], keep: frozenset[str] = frozenset()) -> Iterator[int]:
    sizes = sorted(
        ((_entry(k, v), k) for k, v in container.items() if k not in keep),
        key=lambda pair: pair[0],
        reverse=True,
    )
    for saved, key in sizes:
        del container[key]
        yield saved


def _removals(event: dict[str, Any]) -> Iterator[int]:
    """Give up parts of ``event`` in order of least value, yielding the bytes each saved."""
    frames = _own_frames(event)
    # 1. local variables, innermost frames last
    for frame in frames:
        if "vars" in frame:
            yield _entry("vars", frame.pop("vars"))
    # 2. breadcrumbs, oldest first
    crumbs = _own_dict(event, "breadcrumbs")
    values = _own_list(crumbs, "values") if crumbs is not None else _own_list(event, "breadcrumbs")
    if values is not None:
        while values:
            yield _size(values.pop(0)) + 1
        yield _entry("breadcrumbs", event.pop("breadcrumbs"))
    # 3. source context
    for frame in frames:
        for key in ("pre_context", "post_context", "context_line"):
            if key in frame:
                yield _entry(key, frame.pop(key))
    # 4. extra, the biggest entries first
    extra = _own_dict(event, "extra")
    if extra is not None:
        yield from _largest_first(extra)
        yield _entry("extra", event.pop("extra"))
    # 5. the request body
    request = _own_dict(event, "request")
    if request is not None and "data" in request:
        yield _entry("data", request.pop("data"))
    # 6. contexts other than the trace
    contexts = _own_dict(event, "contexts")
    if contexts is not None:
        yield from _largest_first(contexts, frozenset({"trace"}))
    # 7. a transaction's spans, the last ones first: the waterfall keeps its beginning
    spans = _own_list(event, "spans")
    if spans is not None:
        while spans:
            yield _size(spans.pop()) + 1
    # 8. Beyond Sentry's order, for events made of odd data: everything that is not the
    # event's identity, its exceptions or its trace; then all but the exceptions' type/value.
    yield from _largest_first(event, IDENTITY_KEYS | {"exception", "contexts"})
    container = event.get("exception")
    values = container.get("values") if isinstance(container, dict) else None
    if isinstance(values, list):  # a private copy since _own_frames
        for index in reversed(range(len(values))):
            if not isinstance(values[index], dict):  # junk: it has no type or value
                yield _size(values.pop(index)) + 1
    for exception in _exception_values(event):
        for key in [k for k in exception if k not in ("type", "value")]:
            yield _entry(key, exception.pop(key))


def _exception_values(event: dict[str, Any]) -> list[dict[str, Any]]:
    container = event.get("exception")
    values = container.get("values") if isinstance(container, dict) else None
    return [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []


def trim(event: dict[str, Any], size: int, max_bytes: int) -> dict[str, Any]:
    event = dict(event)
    excess = size - max_bytes
    for saved in _removals(event):
        excess -= saved
        if excess <= 0:
            # The savings are exact per part, up to separators: confirm with a real encode.
            excess = _size(event) - max_bytes
            if excess <= 0:
                break
    return event


def skeleton(event: dict[str, Any]) -> dict[str, Any]:
    """The parts that identify the error, for when the full bounding failed: its identity,
    its exceptions' type and message, its log message and its trace."""
    try:
        out = {key: event[key] for key in IDENTITY_KEYS if key in event}
        logentry = event.get("logentry")
        if isinstance(logentry, dict):
            entry = {
                key: truncate(str.__str__(logentry[key]), MAX_MESSAGE_CHARS)
                for key in ("message", "formatted")
                if isinstance(logentry.get(key), str)
            }
            if entry:
                out["logentry"] = entry
        if isinstance(event.get("message"), str):
            out["message"] = truncate(str.__str__(event["message"]), MAX_MESSAGE_CHARS)
        values = _exception_values(event)
        if values:
            out["exception"] = {
                "values": [
                    {"type": v.get("type"), "value": truncate(str(v.get("value")), 8192)}
                    for v in values
                ]
            }
        contexts = event.get("contexts")
        if isinstance(contexts, dict) and isinstance(contexts.get("trace"), dict):
            out["contexts"] = {"trace": contexts["trace"]}
        return out
    except Exception:
        return event

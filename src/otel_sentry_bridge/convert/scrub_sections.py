"""How each section of an event is scrubbed (the walk itself is :class:`.scrub.Walk`).

One function per part of the Sentry protocol: ``(walk, value) -> value``, returning the value
itself when nothing in it is sensitive, else a new one sharing every unchanged part.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from ..safe_repr import truncate
from .scrub_walk import Walk
from .scrubber import (
    FILTERED,
    MAX_TEXT_CHARS,
    USER_IDENTITY,
    Scrubber,
    filtered,
    header_value,
    is_placeholder,
    value_text,
)
from .sealed import SealedFrame

__all__ = ["breadcrumbs", "contexts", "exceptions", "logentry", "request", "user"]


# -- request


def request(walk: Walk, request: Any) -> Any:
    """Each known part by its own rules; any other key as data (a secret under its own
    name is filtered)."""
    if not isinstance(request, Mapping):
        return walk.bag(request)
    out: dict[Any, Any] | None = None
    for key, value in list(request.items()):
        if value is None or key == "method":
            continue
        fix = _REQUEST_PARTS.get(key) if type(key) is str else None
        if fix is not None:
            new = fix(walk, value)
        elif walk.s.is_sensitive(key):
            new = FILTERED
        else:
            new = walk.bag(value, 1)
        if new is not value:
            if out is None:
                out = dict(request.items())
            out[key] = new
    return request if out is None else out


def headers(walk: Walk, headers: Any) -> Any:
    if isinstance(headers, Mapping):
        return walk.mapping(
            headers,
            0,
            lambda v, _d: header_value(v, walk.s),
            sensitive=walk.s.is_credential_header,
        )
    if isinstance(headers, (list, tuple)):
        return pairs(walk, headers, walk.s.is_credential_header, header_value)
    return headers


def pairs(
    walk: Walk,
    pairs: Any,
    sensitive: Callable[[object], bool],
    fix: Callable[[Any, Scrubber], Any] | None = None,
) -> Any:
    """``[[name, value], ...]`` (Sentry's list form of headers, cookies and queries)."""
    out: list[Any] | None = None
    for index, pair in enumerate(list(pairs)):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            new: Any = walk.bag(pair)
        elif sensitive(pair[0]):
            new = [pair[0], FILTERED]
        else:
            value = fix(pair[1], walk.s) if fix else walk.bag(pair[1])
            new = pair if value is pair[1] else [pair[0], value]
        if new is not pair:
            if out is None:
                out = list(pairs)
            out[index] = new
    return pairs if out is None else out


def cookies(walk: Walk, cookies: Any) -> Any:
    if isinstance(cookies, str):
        return walk.s._pairs(cookies, ";")
    if isinstance(cookies, (list, tuple)):
        return pairs(walk, cookies, walk.s.is_sensitive)
    return walk.bag(cookies)


def query(walk: Walk, query: Any) -> Any:
    if isinstance(query, str):
        return walk.s.query_string(query)
    if isinstance(query, (list, tuple)):
        return pairs(walk, query, walk.s.is_sensitive)
    return walk.bag(query)


def data(walk: Walk, data: Any) -> Any:
    if not isinstance(data, str):
        return walk.bag(data)
    data = str.__str__(data)
    stripped = data.strip()
    if stripped.startswith(("{", "[")) and stripped.endswith(("}", "]")):
        try:
            parsed = json.loads(stripped)
        except (ValueError, RecursionError):  # not JSON, or nested past Python's stack
            parsed = None
        if isinstance(parsed, (dict, list)):
            new = walk.bag(parsed)
            return data if new is parsed else json.dumps(new, ensure_ascii=False)
    if "=" in data and not any(c in data for c in " \n\"'{"):  # form-encoded body
        return value_text(walk.s.query_string(data))
    # Anything else (JSON that did not parse, text) is free text: "password": "x" and
    # password=x are found in it as anywhere else.
    return walk.s.free_text(data)


def request_url(walk: Walk, url: Any) -> Any:
    return walk.s.url(url) if isinstance(url, str) else url


# -- the other places


def _values(walk: Walk, container: Any, each: Callable[[Walk, Any], Any]) -> Any:
    """``{"values": [...]}`` or a bare list: ``each`` per item; anything else as it is."""
    if isinstance(container, Mapping):
        values = container.get("values")
        if not isinstance(values, (list, tuple)):
            return container
        new = walk.sequence(values, 0, lambda v, _d: each(walk, v))
        return container if new is values else {**container, "values": new}
    if isinstance(container, (list, tuple)):
        return walk.sequence(container, 0, lambda v, _d: each(walk, v))
    return container


def breadcrumbs(walk: Walk, crumbs: Any) -> Any:
    return _values(walk, crumbs, crumb)


def crumb(walk: Walk, crumb: Any) -> Any:
    if not isinstance(crumb, Mapping):
        return crumb
    out: dict[str, Any] | None = None
    data = crumb.get("data")
    if data is not None:
        new = walk.bag(data)
        url = new.get("url") if isinstance(new, Mapping) else None
        if isinstance(url, str):  # http crumbs from any source: ?token=... in the query
            clean = request_url(walk, url)
            if clean != url:
                new = {**new, "url": clean}
        if new is not data:
            out = dict(crumb)
            out["data"] = new
    message = crumb.get("message")
    if isinstance(message, str):
        # A query crumb's message is its statement: bind parameters are not secrets.
        query = crumb.get("category") == "query"
        new_message = walk.s.statement(message) if query else walk.s.free_text(message)
        if new_message != message:
            out = out if out is not None else dict(crumb)
            out["message"] = new_message
    return crumb if out is None else out


def exceptions(walk: Walk, container: Any) -> Any:
    """``exception`` or ``threads``: messages and frame ``vars``."""
    return _values(walk, container, exception_value)


def exception_value(walk: Walk, value: Any) -> Any:
    """Frame ``vars``, and secrets in the message (``token=...``, URL passwords)."""
    if not isinstance(value, Mapping):
        return value
    out: dict[str, Any] | None = None
    text = value.get("value")
    if isinstance(text, str):
        clean = walk.s.free_text(text)
        if clean != text:
            out = {**value, "value": clean}
    mechanism = value.get("mechanism")
    data = mechanism.get("data") if isinstance(mechanism, Mapping) else None
    if data is not None and isinstance(mechanism, Mapping):
        new_data = walk.bag(data)
        if new_data is not data:
            out = out if out is not None else dict(value)
            out["mechanism"] = {**mechanism, "data": new_data}
    stacktrace = value.get("stacktrace")
    frames = stacktrace.get("frames") if isinstance(stacktrace, Mapping) else None
    if isinstance(stacktrace, Mapping) and isinstance(frames, (list, tuple)):
        new = walk.sequence(frames, 0, lambda f, _d: frame(walk, f))
        if new is not frames:
            out = out if out is not None else dict(value)
            out["stacktrace"] = {**stacktrace, "frames": new}
    return value if out is None else out


def template(walk: Walk, template: str) -> str:
    """A log message template: secrets filtered, placeholders (``token=%s``) kept, since
    Sentry groups message events by the template."""
    template = truncate(str.__str__(template), MAX_TEXT_CHARS)
    spans = [
        (start, end)
        for start, end in walk.s.secret_spans(template)
        if not is_placeholder(template, start, end)
    ]
    return value_text(filtered(template, spans))


def logentry(walk: Walk, entry: Any) -> Any:
    """The message and its template scrubbed as free text; each argument that is (part
    of) a secret of the formatted message filtered."""
    if isinstance(entry, str):
        return walk.s.free_text(entry)
    if not isinstance(entry, Mapping):
        return walk.bag(entry)
    out = dict(entry.items())
    formatted = entry.get("formatted")
    message = entry.get("message")
    if isinstance(message, str):
        out["message"] = template(walk, message)
    if isinstance(formatted, str):
        out["formatted"] = walk.s.free_text(formatted)
    for key in ("message", "formatted"):
        if out.get(key) is not None and not isinstance(out[key], str):
            out[key] = walk.bag(out[key])
    params = entry.get("params")
    if isinstance(params, (list, tuple)):
        text = formatted if isinstance(formatted, str) else message
        out["params"] = walk.s.log_params(list(params), text if isinstance(text, str) else "")
    elif params is not None:
        out["params"] = walk.bag(params)
    return out


def frame(walk: Walk, frame: Any) -> Any:
    if not isinstance(frame, Mapping):
        return frame
    variables = frame.get("vars")
    if variables is None:
        return frame
    new = walk.bag(variables)
    if new is variables:
        return frame
    if isinstance(frame, SealedFrame):  # shared with other events: a copy, still sealed
        return frame.with_vars(new)
    return {**frame, "vars": new}


def contexts(walk: Walk, contexts: Any) -> Any:
    if not isinstance(contexts, Mapping):
        return contexts
    out: dict[Any, Any] | None = None
    for name, context in list(contexts.items()):
        # A context must stay an object for Sentry: filter inside it, never the whole. The
        # trace context's ids, op and status are the link to the trace: kept as they are;
        # anything else in it (``data``, what a before_send adds) is data like any other.
        new = trace_context(walk, context) if name == "trace" else walk.bag(context)
        if new is not context:
            if out is None:
                out = dict(contexts)
            out[name] = new
    return contexts if out is None else out


_TRACE_IDS = frozenset({"trace_id", "span_id", "parent_span_id", "op", "status", "origin", "type"})


def trace_context(walk: Walk, context: Any) -> Any:
    if not isinstance(context, Mapping) or _TRACE_IDS.issuperset(context):
        return context  # the usual case: ids, op and status only
    out: dict[Any, Any] | None = None
    for key, item in list(context.items()):
        if key in _TRACE_IDS:
            continue
        new = FILTERED if walk.s.is_sensitive(key) else walk.bag(item)
        if new is not item:
            if out is None:
                out = dict(context)
            out[key] = new
    return context if out is None else out


def spans(walk: Walk, spans: Any) -> Any:
    """A ``spans`` list: each span's ``data`` by key, its description as free text. A
    transaction's spans were scrubbed when built; these are what a before_send adds."""
    if not isinstance(spans, (list, tuple)):
        return walk.bag(spans)
    return walk.sequence(spans, 0, lambda span, _d: _span(walk, span))


def _span(walk: Walk, span: Any) -> Any:
    if not isinstance(span, Mapping):
        return walk.bag(span)
    out: dict[str, Any] | None = None
    data = span.get("data")
    if data is not None:
        new = walk.bag(data)
        if new is not data:
            out = {**span, "data": new}
    description = span.get("description")
    if isinstance(description, str):
        op = span.get("op")
        query = isinstance(op, str) and op.startswith("db")  # a statement: "= %s" is kept
        clean = walk.s.statement(description) if query else walk.s.free_text(description)
        if clean != description:
            out = out if out is not None else dict(span)
            out["description"] = clean
    return span if out is None else out


def user(walk: Walk, user: Any) -> Any:
    if not isinstance(user, Mapping):
        return user
    return walk.mapping(
        user,
        0,
        lambda v, d: v if isinstance(v, (str, int, float)) else walk.bag(v, d),
        sensitive=lambda k: k not in USER_IDENTITY and walk.s.is_sensitive(k),
    )


def environ(walk: Walk, env: Any) -> Any:
    """The WSGI environment: credential headers by name, credential values by shape."""
    if not isinstance(env, Mapping):
        return walk.bag(env)
    scrubber: Scrubber = walk.s
    return walk.mapping(
        env, 0, lambda v, _d: header_value(v, scrubber), sensitive=scrubber.is_credential_header
    )


_REQUEST_PARTS: dict[str, Callable[[Walk, Any], Any]] = {
    "headers": headers,
    "cookies": cookies,
    "query_string": query,
    "data": data,
    "env": environ,
    "url": request_url,
}

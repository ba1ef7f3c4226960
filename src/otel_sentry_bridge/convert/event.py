"""A span and its events -> Sentry error events. The functional core: no I/O, no globals.

Everything that varies by process (layout, source reader, host name, out-of-band data) comes
in through :class:`ConvertContext`, so the same inputs always give the same output.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .. import attributes as attr
from .._version import SDK_NAME, __version__
from ..setup.config import Settings
from .breadcrumbs import merge_breadcrumbs
from .frames import CodeLayout, SourceReader, sentry_frames
from .model import EventView, SpanView
from .semantics import request_interface, span_op, span_status, transaction_name
from .sentry_names import environment_problem, release_problem
from .stacktrace import ParsedException, parse_stacktrace, split_type

__all__ = [
    "ConvertContext",
    "Identity",
    "Signature",
    "build_events",
    "common_fields",
    "exception_values",
    "sdk_info",
    "select_events",
]

# (exception type, message, innermost frame) identifies "the same exception" across the
# copies different recorders make of it, on one span or on a child and its parent.
Signature = tuple[str, str, str]


class Identity(NamedTuple):
    """Which error an event is. ``capture_id`` is the event id one of our captures (signal
    hook, log handler, Celery hook) gave it: two captures are two errors even when their
    signatures match (a loop logging the same template, the same exception type raised and
    caught twice). Copies recorded by other instrumentations carry no id: those are matched
    by ``signature`` to what was already reported."""

    signature: Signature
    capture_id: str | None


_RESOURCE_TAGS = (
    "service.name",
    "service.namespace",
    "service.version",
    "service.instance.id",
    "k8s.namespace.name",
    "k8s.pod.name",
    "cloud.region",
)
_LEVELS = {"critical": "fatal", "fatal": "fatal", "error": "error", "warning": "warning"}
_ENVIRONMENT_KEYS = ("deployment.environment.name", "deployment.environment")
_NAME_CHECKS_SIZE = 64  # distinct resource values remembered; a process usually has one

_log = logging.getLogger("otel_sentry_bridge")


def sdk_info() -> dict[str, Any]:
    return {
        "name": SDK_NAME,
        "version": __version__,
        "packages": [{"name": f"pypi:{SDK_NAME}", "version": __version__}],
    }


def _no_extras(_event_id: str) -> Mapping[str, Any] | None:
    return None


def _no_breadcrumbs(_trace_id: int, until: float) -> list[dict[str, Any]] | None:
    return None


def _no_span_breadcrumbs(_trace_id: int, until_ns: int) -> list[dict[str, Any]]:
    return []


@dataclass(frozen=True)
class ConvertContext:
    """What the conversion needs from the world, passed in so it stays pure."""

    settings: Settings
    layout: CodeLayout
    read_source: SourceReader
    hostname: str = "localhost"
    runtime: Mapping[str, str] = field(default_factory=dict)
    # Out-of-band data captured with an event (user, request details, locals), by event id.
    extras_for: Callable[[str], Mapping[str, Any] | None] = _no_extras
    # Log breadcrumbs of a trace up to a time (seconds), from all its spans; None: unknown.
    breadcrumbs_for: Callable[[int, float], list[dict[str, Any]] | None] = _no_breadcrumbs
    # Breadcrumbs of the trace's client spans (HTTP, database, cache) that ended up to a time
    # (ns), oldest first.
    span_breadcrumbs_for: Callable[[int, int], list[dict[str, Any]]] = _no_span_breadcrumbs
    new_event_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)
    # Where a resource environment/release Sentry would drop is reported (once per value).
    warn: Callable[[str], None] = _log.warning
    # (attribute, value) -> the value to send, None when Sentry would drop it: the resource
    # is the same for every span of a process, so each value is checked and reported once.
    name_checks: dict[tuple[str, str], str | None] = field(
        default_factory=dict, compare=False, repr=False
    )


@dataclass(frozen=True)
class _Selected:
    event: EventView
    parsed: list[ParsedException]
    identity: Identity


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _innermost(parsed: list[ParsedException]) -> str:
    last = parsed[-1] if parsed else None
    if last is None or not last.frames:
        return ""
    frame = last.frames[-1]
    return f"{frame.path}:{frame.lineno}:{frame.function}"


def _signature(event: EventView, parsed: list[ParsedException]) -> Signature:
    if event.name == attr.LOG_EVENT:
        message = _text(event.attributes.get(attr.LOGENTRY_MESSAGE)) or _text(
            event.attributes.get(attr.LOG_MESSAGE)
        )
        return ("log", _text(event.attributes.get(attr.LOGGER)), message)
    return (
        _text(event.attributes.get(attr.EXCEPTION_TYPE)),
        _text(event.attributes.get(attr.EXCEPTION_MESSAGE)),
        _innermost(parsed),
    )


def select_events(span: SpanView) -> list[tuple[EventView, Identity]]:
    """The span's events that become Sentry events: one per capture of ours, and one per
    distinct exception recorded by anything else.

    The same exception recorded twice on one span (say our hook's copy and another
    instrumentation's ``record_exception``) is kept once, preferring the copy that carries our
    event id, so the id shown to the user is the one Sentry gets.
    """
    return [(s.event, s.identity) for s in _select(span)]


def _select(span: SpanView) -> list[_Selected]:
    chosen: dict[object, _Selected] = {}
    anonymous: dict[Signature, Signature] = {}  # copies without our id, by signature
    captured: set[Signature] = set()  # signatures of the captures chosen
    for event in span.events:
        if event.name == "exception":
            if event.attributes.get(attr.SEND) is False:
                continue  # recorded for tracing only (e.g. an expected Celery task error)
            parsed = parse_stacktrace(_text(event.attributes.get(attr.EXCEPTION_STACKTRACE)))
        elif event.name == attr.LOG_EVENT and event.attributes.get(attr.SEND):
            parsed = []
        else:
            continue
        signature = _signature(event, parsed)
        capture_id = _text(event.attributes.get(attr.EVENT_ID)) or None
        selected = _Selected(event, parsed, Identity(signature, capture_id))
        if capture_id is None:
            if signature not in anonymous and signature not in captured:
                chosen[signature] = selected
                anonymous[signature] = signature
        elif capture_id not in chosen:
            if anonymous.pop(signature, None) is not None:
                del chosen[signature]  # our copy of the same exception replaces the other one
            chosen[capture_id] = selected
            captured.add(signature)
    return sorted(chosen.values(), key=lambda s: s.event.timestamp_ns)


def _same_type(printed: str, qualified: str) -> bool:
    return bool(printed) and split_type(printed)[1] == split_type(qualified)[1]


def _value(
    exc: ParsedException, ctx: ConvertContext, *, exc_type: str | None = None
) -> dict[str, Any]:
    module, name = split_type(exc_type or exc.type or "Exception")
    value: dict[str, Any] = {"type": name, "value": exc.message}
    if module and module not in ("builtins", "__main__"):
        value["module"] = module
    if exc.frames:
        value["stacktrace"] = {
            "frames": sentry_frames(
                exc.frames, ctx.layout, ctx.read_source, ctx.settings.context_lines
            )
        }
    return value


def _flatten_group(
    group: ParsedException, ctx: ConvertContext, parent: int | None, source: str | None
) -> list[dict[str, Any]]:
    """A group and its members, each with ``exception_id``/``parent_id`` links."""
    out: list[dict[str, Any]] = []

    def visit(exc: ParsedException, parent_id: int | None, src: str | None) -> None:
        value = _value(exc, ctx)
        my_id = len(out)
        mechanism: dict[str, Any] = {"type": "chained", "handled": True, "exception_id": my_id}
        if parent_id is not None:
            mechanism["parent_id"] = parent_id
        if src is not None:
            mechanism["source"] = src
        if exc.is_group:
            mechanism["is_exception_group"] = True
        value["mechanism"] = mechanism
        out.append(value)
        for index, child in enumerate(exc.children):
            visit(child, my_id, f"exceptions[{index}]")

    visit(group, parent, source)
    return out


def exception_values(
    parsed: list[ParsedException],
    attributes: Mapping[str, Any],
    ctx: ConvertContext,
) -> list[dict[str, Any]]:
    """Sentry ``exception.values``: root cause first, the raised exception last, the raised
    one's type and message taken from the event attributes (they are never truncated)."""
    exc_type = _text(attributes.get(attr.EXCEPTION_TYPE)) or "Exception"
    exc_message = _text(attributes.get(attr.EXCEPTION_MESSAGE))
    chain = list(parsed)
    if chain and not chain[-1].type:
        chain[-1].type = exc_type  # stacktrace cut short before its last line
    if not chain or not _same_type(chain[-1].type, exc_type):
        chain.append(ParsedException(type=exc_type, message=exc_message))
    printed = chain[-1].message
    # The printed message goes on with the exception's notes (add_note), which the attribute
    # lacks: keep them, as Python shows them under the message.
    with_notes = printed.startswith(exc_message + "\n") or (printed and not exc_message)
    chain[-1].message = printed if with_notes else exc_message

    raised = chain[-1]
    values: list[dict[str, Any]] = [_value(exc, ctx) for exc in chain[:-1]]
    if raised.is_group:
        group_values = _flatten_group(raised, ctx, None, None)
        group_values[0].update(_value(raised, ctx, exc_type=exc_type))
        group_values[0]["mechanism"]["is_exception_group"] = True
        # Sentry reads the last value as the main one: members first, the group last.
        values.extend(reversed(group_values))
    else:
        values.append(_value(raised, ctx, exc_type=exc_type))
    return values


def _hex(number: int, width: int) -> str:
    return format(number, f"0{width}x")


def _trace_context(span: SpanView) -> dict[str, Any]:
    context: dict[str, Any] = {
        "trace_id": _hex(span.trace_id, 32),
        "span_id": _hex(span.span_id, 16),
        "op": span_op(span),
        "status": span_status(span),
    }
    if span.parent_span_id:
        context["parent_span_id"] = _hex(span.parent_span_id, 16)
    return context


def _level(attributes: Mapping[str, Any]) -> str:
    return _LEVELS.get(_text(attributes.get(attr.LEVEL)).lower(), "error")


def _breadcrumbs(span: SpanView, before_ns: int) -> list[dict[str, Any]]:
    """Log events recorded on the span before the error, oldest first."""
    crumbs: list[dict[str, Any]] = []
    for event in span.events:
        if event.name != attr.LOG_EVENT or event.timestamp_ns > before_ns:
            continue
        attributes = event.attributes
        if attributes.get(attr.SEND):
            continue
        crumb: dict[str, Any] = {
            "type": "default",
            "timestamp": event.timestamp_ns / 1e9,
            "message": _text(attributes.get(attr.LOG_MESSAGE)),
            "level": _LEVELS.get(_text(attributes.get(attr.LEVEL)).lower(), "info"),
        }
        logger = attributes.get(attr.LOGGER)
        if logger:
            crumb["category"] = _text(logger)
        crumbs.append(crumb)
    return crumbs


def _resource_str(resource: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = resource.get(key)
        if value:
            return _text(value)
    return None


def _resource_name(
    resource: Mapping[str, Any],
    keys: Sequence[str],
    problem: Callable[[str], str | None],
    ctx: ConvertContext,
) -> str | None:
    """The first of ``keys`` whose value Sentry keeps; a value it would drop (losing the
    field) is reported once and skipped, as if the attribute were absent."""
    for key in keys:
        value = resource.get(key)
        if value:
            text = _text(value)
            cache_key = (key, text)
            if cache_key not in ctx.name_checks:
                if len(ctx.name_checks) >= _NAME_CHECKS_SIZE:
                    ctx.name_checks.clear()
                ctx.name_checks[cache_key] = _checked_name(key, text, problem, ctx)
            checked = ctx.name_checks[cache_key]
            if checked:
                return checked
    return None


def _checked_name(
    key: str, text: str, problem: Callable[[str], str | None], ctx: ConvertContext
) -> str | None:
    """``text`` trimmed (as relay does), or None, reported, when Sentry would drop it."""
    checked = text.strip() or None
    reason = problem(checked) if checked else None
    if reason:
        ctx.warn(
            f"otel-sentry-bridge: resource attribute {key}: invalid value {text!r}: "
            f"{reason}; ignored"
        )
        return None
    return checked


def _merge(event: dict[str, Any], extras: Mapping[str, Any]) -> None:
    """Fold out-of-band data into the event: dicts are merged one level deep."""
    for key, value in extras.items():
        if key in ("frame_vars", "mechanism"):
            continue
        current = event.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            current.update(value)
        else:
            event[key] = value
    values = event.get("exception", {}).get("values") or []
    mechanism = extras.get("mechanism")
    if isinstance(mechanism, Mapping) and values:
        values[-1].setdefault("mechanism", {}).update(mechanism)
    frame_vars = extras.get("frame_vars")
    frames = values[-1].get("stacktrace", {}).get("frames", []) if values else []
    if isinstance(frame_vars, Sequence) and frames:
        # Aligned from the innermost frame outwards: both lists end at the raise.
        for frame, variables in zip(reversed(frames), reversed(frame_vars), strict=False):
            if variables:
                frame["vars"] = variables


def common_fields(span: SpanView, ctx: ConvertContext) -> dict[str, Any]:
    """What error events and transactions both take from the span holding them: transaction
    name, server, environment, release, SDK, trace and OTel contexts, tags, request."""
    settings = ctx.settings
    resource = span.resource
    fields: dict[str, Any] = {
        "transaction": transaction_name(span),
        "server_name": settings.server_name or _resource_str(resource, "host.name") or ctx.hostname,
        # Settings values were checked by load_settings; resource values are checked here.
        "environment": settings.environment
        or _resource_name(resource, _ENVIRONMENT_KEYS, environment_problem, ctx)
        or "production",
        "sdk": sdk_info(),
        "contexts": {
            "trace": _trace_context(span),
            "otel": {
                "span_name": span.name,
                "span_kind": span.kind,
                "resource": {k: _text(v) for k, v in resource.items()},
            },
        },
    }
    release = settings.release or _resource_name(
        resource, ("service.version",), release_problem, ctx
    )
    if release:
        fields["release"] = release
    if ctx.runtime:
        fields["contexts"]["runtime"] = dict(ctx.runtime)
    tags = {key: _text(resource[key]) for key in _RESOURCE_TAGS if resource.get(key)}
    if span.scope_name:
        tags["otel.scope"] = span.scope_name
    if tags:
        fields["tags"] = tags
    if settings.trace_url_template:
        trace_url = settings.trace_url_template.replace(
            "{trace_id}", fields["contexts"]["trace"]["trace_id"]
        )
        fields["contexts"]["trace"]["data"] = {"trace_url": trace_url}
        fields["extra"] = {"trace_url": trace_url}

    request = request_interface(span, send_default_pii=settings.send_default_pii)
    if request:
        fields["request"] = request
    return fields


def _build_one(span: SpanView, selected: _Selected, ctx: ConvertContext) -> dict[str, Any]:
    settings = ctx.settings
    event_view = selected.event
    attributes = event_view.attributes
    event_id = _text(attributes.get(attr.EVENT_ID)).replace("-", "").lower()
    if len(event_id) != 32 or any(c not in "0123456789abcdef" for c in event_id):
        event_id = ctx.new_event_id()

    event: dict[str, Any] = {
        "event_id": event_id,
        "timestamp": event_view.timestamp_ns / 1e9,
        "platform": "python",
        "level": _level(attributes),
        **common_fields(span, ctx),
    }

    logger = attributes.get(attr.LOGGER)
    if logger:
        event["logger"] = _text(logger)
    template = attributes.get(attr.LOGENTRY_MESSAGE)
    formatted = attributes.get(attr.LOG_MESSAGE)
    if template is not None or formatted is not None:
        logentry: dict[str, Any] = {
            "message": _text(template if template is not None else formatted)
        }
        params = attributes.get(attr.LOGENTRY_PARAMS)
        if params:
            logentry["params"] = [_text(p) for p in params]
        if formatted is not None:
            logentry["formatted"] = _text(formatted)
        event["logentry"] = logentry

    if event_view.name == "exception":
        values = exception_values(selected.parsed, attributes, ctx)
        mechanism = values[-1].setdefault("mechanism", {})
        mechanism["type"] = _text(attributes.get(attr.MECHANISM_TYPE)) or "generic"
        handled = attributes.get(attr.MECHANISM_HANDLED)
        mechanism["handled"] = handled if isinstance(handled, bool) else True
        event["exception"] = {"values": values}

    crumbs = ctx.breadcrumbs_for(span.trace_id, event_view.timestamp_ns / 1e9)
    if crumbs is None:
        crumbs = _breadcrumbs(span, event_view.timestamp_ns)
    if settings.max_breadcrumbs:
        span_crumbs = ctx.span_breadcrumbs_for(span.trace_id, event_view.timestamp_ns)
        crumbs = merge_breadcrumbs(crumbs, span_crumbs)[-settings.max_breadcrumbs :]
    else:
        crumbs = []
    if crumbs:
        event["breadcrumbs"] = {"values": crumbs}

    extras = ctx.extras_for(event_id)
    if extras:
        _merge(event, extras)
    return event


def build_events(span: SpanView, ctx: ConvertContext) -> list[tuple[Identity, dict[str, Any]]]:
    """One Sentry event per capture, and per distinct exception recorded by anything else
    (see :func:`select_events`)."""
    return [(selected.identity, _build_one(span, selected, ctx)) for selected in _select(span)]

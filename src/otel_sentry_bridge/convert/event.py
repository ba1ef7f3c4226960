"""A span, a selected event of it and the capture record of that event -> one Sentry error
event. The functional core: no I/O, no globals, nothing consumed.

Everything that varies by process (layout, source reader, host name) comes in through
:class:`~.context.ConvertContext`; everything that varies by event (the record, the
breadcrumbs) as arguments, so the same inputs always give the same output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import attributes as attr
from ..capture.record import CaptureRecord, Details
from .breadcrumbs import merge_breadcrumbs
from .context import ConvertContext, sdk_info
from .exceptions import exception_values
from .model import SpanView
from .sealed import SealedFrame
from .select import Identity, Selected, select_events
from .select import text as _text
from .semantics import (
    request_interface,
    span_op,
    span_status,
    transaction_name,
    transaction_source,
)
from .sentry_names import environment_problem, release_problem

__all__ = ["ENVIRONMENT_KEYS", "build_event", "build_events", "common_fields"]

_RESOURCE_TAGS = (
    "service.name",
    "service.namespace",
    "service.version",
    "k8s.namespace.name",
    "k8s.pod.name",
    "cloud.region",
)
_LEVELS = {"critical": "fatal", "fatal": "fatal", "error": "error", "warning": "warning"}
ENVIRONMENT_KEYS = ("deployment.environment.name", "deployment.environment")
_NAME_CHECKS_SIZE = 64  # distinct resource values remembered; a process usually has one


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


def common_fields(span: SpanView, ctx: ConvertContext) -> dict[str, Any]:
    """What error events and transactions both take from the span holding them: transaction
    name, server, environment, release, SDK, trace and OTel contexts, tags, request."""
    settings = ctx.settings
    resource = span.resource
    fields: dict[str, Any] = {
        "transaction": transaction_name(span),
        "transaction_info": {"source": transaction_source(span)},
        "server_name": settings.server_name or _resource_str(resource, "host.name") or ctx.hostname,
        # Settings values were checked by load_settings; resource values are checked here.
        "environment": settings.environment
        or _resource_name(resource, ENVIRONMENT_KEYS, environment_problem, ctx)
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


def _apply_record(event: dict[str, Any], record: CaptureRecord) -> None:
    """What the hook knew: level, logger, log entry, mechanism, request, user, task, locals."""
    event["level"] = _LEVELS.get(record.level.lower(), record.level.lower() or "error")
    if record.logger:
        event["logger"] = record.logger
    entry = record.logentry
    if entry is not None:
        logentry: dict[str, Any] = {"message": entry.template}
        if entry.params:
            logentry["params"] = list(entry.params)
        if entry.formatted:
            logentry["formatted"] = entry.formatted
        event["logentry"] = logentry
    details = record.details or Details()
    if details.request is not None:
        event["request"] = dict(details.request)
    if details.user is not None:
        event["user"] = dict(details.user)
    if details.transaction:
        event["transaction"] = details.transaction
        if details.request is not None:  # a Django route, read by the request hook
            event["transaction_info"] = {"source": "route"}
    trace_context = event.get("contexts", {}).get("trace")
    if details.request is not None and trace_context and trace_context.get("op") == "function":
        # Captured with the request's ids after its span ended (a streaming response's
        # iterator, a sampled-out trace): the span they name is the request's.
        trace_context["op"] = "http.server"
    for key, value in (
        ("tags", details.tags),
        ("contexts", details.contexts),
        ("extra", details.extra),
    ):
        if value:
            event[key] = {**event.get(key, {}), **value}
    if details.fingerprint:
        event["fingerprint"] = list(details.fingerprint)
    values = event.get("exception", {}).get("values") or []
    if values:
        values[-1]["mechanism"] = {
            **values[-1].get("mechanism", {}),
            "type": record.mechanism.type,
            "handled": record.mechanism.handled,
        }
        frames = values[-1].get("stacktrace", {}).get("frames", [])
        # Aligned from the innermost frame outwards: both lists end at the raise. Frames may
        # be shared with other events (a SealedFrame): each gets a copy with its variables.
        for index, variables in zip(
            range(len(frames) - 1, -1, -1), reversed(record.frame_vars), strict=False
        ):
            if variables:
                frames[index] = with_vars(frames[index], variables)
        if record.template_frame:
            _add_template_frame(values[-1], record.template_frame)


def _add_template_frame(value: dict[str, Any], template: Mapping[str, Any]) -> None:
    """The frame of the template the exception was raised in, as sentry-sdk adds it: just
    inside the innermost frame of Django's template engine (the parser or renderer that was
    at that template line), so it is the innermost frame for a syntax error and sits above
    the application code a template line called (a property that raised). Added after the
    local variables, which are aligned on the Python frames."""
    frame = {k: list(v) if isinstance(v, list) else v for k, v in template.items()}
    stacktrace = value.setdefault("stacktrace", {})
    frames = stacktrace.setdefault("frames", [])
    position = len(frames)
    for index in range(len(frames) - 1, -1, -1):
        if _in_template_engine(frames[index]):
            position = index + 1
            break
    frames.insert(position, frame)


def _in_template_engine(frame: Mapping[str, Any]) -> bool:
    module = frame.get("module")
    if isinstance(module, str):
        return module == "django.template" or module.startswith("django.template.")
    path = str(frame.get("abs_path") or "").replace("\\", "/")
    return "/django/template/" in path


_HEX = frozenset("0123456789abcdef")


def build_event(
    span: SpanView,
    selected: Selected,
    ctx: ConvertContext,
    *,
    record: CaptureRecord | None = None,
    log_crumbs: Sequence[Mapping[str, Any]] | None = None,
    span_crumbs: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The Sentry event of one selected event of ``span``.

    ``record``: what our hook left for it (None for an exception another instrumentation
    recorded: its ``sentry.mechanism.*`` attributes are read instead). ``log_crumbs``: the log
    breadcrumbs of its trace up to the error (None: unknown, the span's own log events are
    used); ``span_crumbs``: those of the trace's client spans. Never mutates its inputs.
    """
    settings = ctx.settings
    event_view = selected.event
    attributes = event_view.attributes
    event_id = _text(attributes.get(attr.EVENT_ID)).replace("-", "").lower()
    if len(event_id) != 32 or not _HEX.issuperset(event_id):
        event_id = ctx.new_event_id()

    event: dict[str, Any] = {
        "event_id": event_id,
        "timestamp": event_view.timestamp_ns / 1e9,
        "platform": "python",
        "level": "error",
        **common_fields(span, ctx),
    }
    if event_view.name == "exception":
        values = exception_values(selected.parsed, attributes, ctx)
        handled = attributes.get(attr.MECHANISM_HANDLED)
        values[-1]["mechanism"] = {
            **values[-1].get("mechanism", {}),
            "type": _text(attributes.get(attr.MECHANISM_TYPE)) or "generic",
            "handled": handled if isinstance(handled, bool) else True,
        }
        event["exception"] = {"values": values}
    elif attributes.get(attr.LOG_MESSAGE) is not None:  # a message without its record
        message = _text(attributes.get(attr.LOG_MESSAGE))
        event["logentry"] = {"message": message, "formatted": message}

    crumbs: Sequence[Mapping[str, Any]]
    if record is not None and record.breadcrumbs is not None:
        crumbs = record.breadcrumbs
    elif log_crumbs is not None:
        crumbs = log_crumbs
    else:
        crumbs = _breadcrumbs(span, event_view.timestamp_ns)
    if settings.max_breadcrumbs:
        merged = merge_breadcrumbs([dict(c) for c in crumbs], [dict(c) for c in span_crumbs])
        if merged:
            event["breadcrumbs"] = {"values": merged[-settings.max_breadcrumbs :]}

    if record is not None:
        _apply_record(event, record)
    return event


def build_events(
    span: SpanView,
    ctx: ConvertContext,
    records: Mapping[str, CaptureRecord] | None = None,
) -> list[tuple[Identity, dict[str, Any]]]:
    """One Sentry event per capture, and per distinct exception recorded by anything else
    (see :func:`~.select.select_events`), with the records of our captures by event id and
    the span's own log events as breadcrumbs."""
    records = records or {}
    out = []
    for selected in select_events(span, ctx.parse_cache):
        record = records.get(selected.identity.capture_id or "")
        out.append((selected.identity, build_event(span, selected, ctx, record=record)))
    return out


def with_vars(frame: Mapping[str, Any], variables: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``frame`` with ``vars``; the frame itself is never changed."""
    if isinstance(frame, SealedFrame):
        return frame.with_vars(variables)
    return {**frame, "vars": dict(variables)}

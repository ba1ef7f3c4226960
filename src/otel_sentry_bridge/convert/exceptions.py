"""Parsed exceptions -> Sentry ``exception.values``: chains root cause first, groups as
linked values, frames with source context. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import attributes as attr
from .context import ConvertContext
from .select import text as _text
from .stacktrace import ParsedException, group_message, split_type

__all__ = ["exception_values"]


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
            "frames": ctx.frame_cache.stack(
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


def _own_copy(parsed: ParsedException) -> ParsedException:
    """A shallow copy (``dataclasses.replace`` without changes, in a fifth of the time)."""
    copy: ParsedException = object.__new__(ParsedException)
    copy.__dict__.update(parsed.__dict__)
    return copy


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
    if chain:  # parsed exceptions may be shared (ParseCache): the raised one is changed below
        chain[-1] = _own_copy(chain[-1])
    if chain and not chain[-1].type:
        chain[-1].type = exc_type  # stacktrace cut short before its last line
    if not chain or not _same_type(chain[-1].type, exc_type):
        chain.append(ParsedException(type=exc_type, message=exc_message))
    printed = chain[-1].message
    # The printed message goes on with the exception's notes (add_note), which the attribute
    # lacks: keep them, as Python shows them under the message.
    with_notes = printed.startswith(exc_message + "\n") or (printed and not exc_message)
    chain[-1].message = printed if with_notes else exc_message
    if chain[-1].is_group:  # str() of a group ends with " (2 sub-exceptions)"
        chain[-1].message = group_message(exc_message, printed)

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

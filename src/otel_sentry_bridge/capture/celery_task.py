"""What a failed Celery task adds to its Sentry event: pure functions, no Celery import.

The task's arguments are copied at capture time into small JSON values (bounded in count,
depth and length), because the capture store hands them to the worker thread later: it must
hold neither large objects nor objects whose ``repr`` could run application code on another
thread. A positional argument is filtered when the *parameter* it binds to has a sensitive
name (``charge(order_id, card_token)``), which key-based scrubbing alone could not see;
keyword arguments and nested dict keys are scrubbed by the pipeline like any other context.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from itertools import islice
from typing import Any

from ..convert.scrub import FILTERED
from ..safe_repr import safe_repr

__all__ = [
    "MAX_ITEMS",
    "MAX_TEXT",
    "bounded",
    "parameter_names",
    "soft_time_limit_fingerprint",
    "task_extras",
]

MAX_ITEMS = 20  # arguments, keyword arguments and items per nested container
MAX_TEXT = 512  # characters per string
_MAX_DEPTH = 3


def bounded(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON data of bounded size; anything else becomes its safe ``repr``."""
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is float:
        return value
    if kind is str:
        return value if len(value) <= MAX_TEXT else safe_repr(value, MAX_TEXT)
    if depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            return {
                (k if type(k) is str else safe_repr(k, 100)): bounded(v, depth + 1)
                for k, v in _first(value.items())
            }
        if isinstance(value, (list, tuple)):
            return [bounded(item, depth + 1) for item in _first(value)]
    return safe_repr(value, MAX_TEXT)


def _first(items: Any) -> list[Any]:
    return list(islice(items, MAX_ITEMS))


def parameter_names(func: Callable[..., Any]) -> list[str]:
    """Names of the positional parameters of ``func`` (``self`` excluded when bound); empty
    when they cannot be known. ``*args`` ends the list: what binds to it has no name."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return []
    names = []
    for parameter in parameters:
        if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            break
        names.append(parameter.name)
    return names


def _args(
    args: Sequence[Any], names: Sequence[str], is_sensitive: Callable[[str], bool]
) -> list[Any]:
    out = []
    for index, value in enumerate(_first(args)):
        name = names[index] if index < len(names) else None
        out.append(FILTERED if name is not None and is_sensitive(name) else bounded(value, 1))
    return out


def task_extras(
    *,
    task_name: str,
    task_id: str | None,
    retries: int | None,
    args: Any,
    kwargs: Any,
    names: Sequence[str],
    is_sensitive: Callable[[str], bool],
    fingerprint: list[str] | None = None,
) -> dict[str, Any]:
    """The out-of-band data of one task failure: ``tags.celery_task_name``, ``contexts.celery``
    (id, name, retries, arguments), the transaction (the task name) and a fingerprint."""
    context: dict[str, Any] = {"task_name": task_name}
    if task_id:
        context["task_id"] = str(task_id)
    if isinstance(retries, int):
        context["retries"] = retries
    if isinstance(args, (list, tuple)):
        context["args"] = _args(args, names, is_sensitive)
    if isinstance(kwargs, Mapping):
        context["kwargs"] = bounded(kwargs)
    extras: dict[str, Any] = {
        "transaction": task_name,
        "tags": {"celery_task_name": task_name},
        "contexts": {"celery": context},
    }
    if fingerprint:
        extras["fingerprint"] = fingerprint
    return extras


def soft_time_limit_fingerprint(task_name: str) -> list[str]:
    """One Sentry issue per task for soft time limits (raven's grouping): their stack traces
    point wherever the task happened to be, which would scatter them over many issues."""
    return ["celery", "SoftTimeLimitExceeded", task_name]

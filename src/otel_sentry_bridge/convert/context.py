"""``ConvertContext``: what the conversion needs from the world, passed in so it stays pure."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._version import SDK_NAME, __version__
from ..setup.config import Settings
from .frame_cache import FrameCache
from .frames import CodeLayout, SourceReader
from .stacktrace import ParseCache

__all__ = ["ConvertContext", "sdk_info"]

_log = logging.getLogger("otel_sentry_bridge")


def sdk_info() -> dict[str, Any]:
    return {
        "name": SDK_NAME,
        "version": __version__,
        "packages": [{"name": f"pypi:{SDK_NAME}", "version": __version__}],
    }


@dataclass(frozen=True)
class ConvertContext:
    """The process as the conversion sees it: settings, code layout, a source reader, host
    name and runtime. Everything per event (the span, its capture records, breadcrumbs) is
    passed to the builders as arguments."""

    settings: Settings
    layout: CodeLayout
    read_source: SourceReader
    hostname: str = "localhost"
    runtime: Mapping[str, str] = field(default_factory=dict)
    new_event_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)
    # Where a resource environment/release Sentry would drop is reported (once per value).
    warn: Callable[[str], None] = _log.warning
    # (attribute, value) -> the value to send, None when Sentry would drop it: the resource
    # is the same for every span of a process, so each value is checked and reported once.
    name_checks: dict[tuple[str, str], str | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    # Frames made once per code location (and source file version), shared by events.
    frame_cache: FrameCache = field(default_factory=FrameCache, compare=False, repr=False)
    # Stack trace texts parsed once: an error that happens again prints the same text.
    parse_cache: ParseCache = field(default_factory=ParseCache, compare=False, repr=False)

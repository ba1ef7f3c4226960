"""Pure helpers that keep secrets and huge values out of events.

``is_sensitive`` decides by key name (case-insensitive, partial match); ``safe_repr`` turns any
object into a short string without ever raising.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "DEFAULT_DENYLIST",
    "FILTERED",
    "Scrubber",
    "safe_repr",
]

FILTERED = "[Filtered]"

# Matched as substrings of lower-cased keys: "X-Api-Key", "db_password", "sessionid", ...
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
    "authorization",
    "authentication",
    "credential",
    "cookie",
    "session",
    "csrf",
    "xsrf",
    "sentry_dsn",
    "dsn",
    "bearer",
    "jwt",
)

_repr = reprlib.Repr()
_repr.maxstring = 400
_repr.maxother = 400
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxdict = 20
_repr.maxlevel = 3


def safe_repr(value: Any, limit: int = 512) -> str:
    """A bounded ``repr`` that never raises (a broken ``__repr__`` gives a placeholder)."""
    try:
        text = value if isinstance(value, str) else _repr.repr(value)
    except Exception:
        try:
            text = f"<{type(value).__name__} object (repr failed)>"
        except Exception:
            text = "<unrepresentable>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


class Scrubber:
    """Replaces values under sensitive keys with ``[Filtered]``."""

    def __init__(self, denylist: Iterable[str] = DEFAULT_DENYLIST) -> None:
        self._words = tuple(word.lower() for word in denylist if word)

    def is_sensitive(self, key: object) -> bool:
        lowered = str(key).lower()
        return any(word in lowered for word in self._words)

    def mapping(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``values`` (one level) with sensitive keys filtered."""
        return {k: (FILTERED if self.is_sensitive(k) else v) for k, v in values.items()}

    def query_string(self, query: str) -> str:
        """``a=1&token=x`` -> ``a=1&token=[Filtered]``; keeps order and unknown parts."""
        parts = []
        for part in query.split("&"):
            name, sep, _value = part.partition("=")
            parts.append(f"{name}={FILTERED}" if sep and self.is_sensitive(name) else part)
        return "&".join(parts)

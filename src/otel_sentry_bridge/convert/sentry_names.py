"""Which environment and release names Sentry keeps.

Sentry's normaliser (relay) drops an event's ``environment`` or ``release`` that breaks these
rules (``invalid_data``: the event arrives without it). They are sentry-release-parser's
``validate_environment`` / ``validate_release``, which relay applies after trimming the value,
and were checked against ``sentry_relay.processing.StoreNormalizer`` (see the tests). Note that
spaces and non-ASCII letters are fine, and lengths count UTF-8 bytes, not characters.
"""

from __future__ import annotations

import re

__all__ = ["environment_problem", "release_problem"]

# Backslash, slash and the ASCII control characters (newline, tab, NUL, DEL...).
_BAD_CHARACTERS = re.compile(r"[\\/\x00-\x1f\x7f]")
_RESERVED_ENVIRONMENTS = frozenset({".", "..", "none"})
_RESERVED_RELEASES = frozenset({".", "..", "latest"})


def _problem(value: str, max_bytes: int, reserved: frozenset[str]) -> str | None:
    if not value:
        return "empty"
    if len(value.encode("utf-8", "surrogatepass")) > max_bytes:
        return f"Sentry accepts at most {max_bytes} bytes (UTF-8)"
    if value.isascii() and value.lower() in reserved:  # relay's eq_ignore_ascii_case
        return "reserved by Sentry"
    if _BAD_CHARACTERS.search(value):
        return "Sentry rejects '/', '\\', tabs, newlines and other control characters"
    return None


def environment_problem(value: str) -> str | None:
    """Why Sentry would drop ``value`` (already stripped) as an environment, or None."""
    return _problem(value, 64, _RESERVED_ENVIRONMENTS)


def release_problem(value: str) -> str | None:
    """Why Sentry would drop ``value`` (already stripped) as a release, or None."""
    return _problem(value, 200, _RESERVED_RELEASES)

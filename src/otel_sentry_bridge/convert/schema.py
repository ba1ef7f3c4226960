"""The Sentry event's sections, declared once: what each top-level key holds.

Scrubbing (:mod:`.scrub`) and the size limits (:mod:`.bound`, :mod:`.trim`) walk the same
event; each maps a :class:`Kind` to its own handling, so a new section is declared here once
and both see it. A key not declared here (what a ``before_send`` may add) is user data.
"""

from __future__ import annotations

import enum

__all__ = ["IDENTITY_KEYS", "SECTIONS", "Kind", "kind_of"]


class Kind(enum.Enum):
    IDENTITY = "identity"  # the event's identity: never changed, never removed
    STRUCTURE = "structure"  # names, ids and structure written by the SDK
    LOGGER = "logger"  # a logger name
    MESSAGE = "message"  # the legacy message: text, or a log entry
    LOGENTRY = "logentry"  # a log message, its template and arguments
    EXCEPTIONS = "exceptions"  # {"values": [exception, ...]} with frames
    BREADCRUMBS = "breadcrumbs"  # {"values": [crumb, ...]}
    REQUEST = "request"  # the request interface: headers, cookies, query, body, env, URL
    CONTEXTS = "contexts"  # named contexts; "trace" is the link to the trace
    USER = "user"  # the user interface: identity fields and data
    TAGS = "tags"  # short key/value strings
    DATA = "data"  # anything: scrubbed by key at any depth, bounded as a databag


SECTIONS: dict[str, Kind] = {
    **dict.fromkeys(("event_id", "timestamp", "level", "platform"), Kind.IDENTITY),
    **dict.fromkeys(
        (
            "start_timestamp",
            "transaction",
            "transaction_info",
            "server_name",
            "release",
            "dist",
            "environment",
            "fingerprint",
            "sdk",
            "type",
            "spans",  # transactions: scrubbed attribute by attribute when built
            "measurements",
            "modules",
        ),
        Kind.STRUCTURE,
    ),
    "logger": Kind.LOGGER,
    "message": Kind.MESSAGE,
    "logentry": Kind.LOGENTRY,
    "exception": Kind.EXCEPTIONS,
    "threads": Kind.EXCEPTIONS,
    "breadcrumbs": Kind.BREADCRUMBS,
    "request": Kind.REQUEST,
    "contexts": Kind.CONTEXTS,
    "user": Kind.USER,
    "tags": Kind.TAGS,
    "extra": Kind.DATA,
}

# Never changed or removed by any step: what identifies the event to Sentry.
IDENTITY_KEYS = frozenset(key for key, kind in SECTIONS.items() if kind is Kind.IDENTITY)


def kind_of(key: object) -> Kind:
    """What the top-level ``key`` holds; user data when it is not a known section."""
    return SECTIONS.get(key, Kind.DATA) if isinstance(key, str) else Kind.DATA

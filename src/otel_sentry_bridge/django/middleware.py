"""Optional middleware: expose the Sentry event id of a failed request as a response header.

Enabled with ``response_header`` (``OTEL_SENTRY_RESPONSE_HEADER=true``). The zero-code
instrumentor inserts it; with the AppConfig, add
``"otel_sentry_bridge.django.middleware.SentryEventIdMiddleware"`` to ``MIDDLEWARE``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..capture import current_settings

__all__ = ["HEADER", "SentryEventIdMiddleware"]

HEADER = "X-Sentry-Event-Id"


class SentryEventIdMiddleware:
    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        event_id = getattr(request, "sentry_event_id", None)
        if event_id and current_settings().response_header:
            response[HEADER] = event_id
        return response

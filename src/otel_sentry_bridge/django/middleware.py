"""Optional middleware: expose the Sentry event id of a failed request as a response header.

Enabled with ``response_header`` (``OTEL_SENTRY_RESPONSE_HEADER=true``). The zero-code
instrumentor inserts it; with the AppConfig, add
``"otel_sentry_bridge.django.middleware.SentryEventIdMiddleware"`` to ``MIDDLEWARE``.

It is sync and async capable: under ASGI Django calls it on the event loop instead of moving
each request to a thread and back for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from ..capture import current_settings

__all__ = ["HEADER", "SentryEventIdMiddleware"]

HEADER = "X-Sentry-Event-Id"


class SentryEventIdMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)  # Django then awaits __call__

    def __call__(self, request: Any) -> Any:
        if self._is_async:
            return self._acall(request)
        return _stamp(request, self.get_response(request))

    async def _acall(self, request: Any) -> Any:
        response_awaitable: Awaitable[Any] = self.get_response(request)
        return _stamp(request, await response_awaitable)


def _stamp(request: Any, response: Any) -> Any:
    event_id = getattr(request, "sentry_event_id", None)
    if event_id and current_settings().response_header:
        response[HEADER] = event_id
    return response

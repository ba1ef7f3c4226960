"""``SentryEventIdMiddleware``: the event id header, and errors of streaming responses.

- With ``response_header`` (``OTEL_SENTRY_RESPONSE_HEADER=true``) it adds the Sentry event id
  of a failed request to the response as ``X-Sentry-Event-Id``.
- While the request is served, it tells captures that have no recording span to read the
  request from (a sampled-out trace) how to get the request's URL, route and headers.
- A ``StreamingHttpResponse`` is sent after the view returned, outside Django's exception
  handling: an exception raised by its iterator mid-stream sends no signal, and the request's
  span has already ended. The middleware wraps the iterator so that such an exception is
  captured (mechanism ``django``, unhandled) with the request's details and trace, then
  re-raised for the server to handle as before.

The zero-code instrumentor inserts it just inside the OTel Django middleware (whose span must
be current when a request starts here); with the AppConfig, add
``"otel_sentry_bridge.django.middleware.SentryEventIdMiddleware"`` yourself, anywhere: the OTel
instrumentation puts its own first. It is sync and
async capable: under ASGI Django calls it on the event loop instead of moving each request to
a thread and back for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from opentelemetry import trace

from ..bridge import active_bridges
from ..setup.config import Settings
from .api import REQUEST_DETAILS, capture_exception
from .django_hooks import request_details, route_of
from .record import Details

__all__ = ["HEADER", "SentryEventIdMiddleware"]

HEADER = "X-Sentry-Event-Id"
# Where opentelemetry-instrumentation-django keeps the request's span.
_OTEL_SPAN_KEY = "opentelemetry-instrumentor-django.span_key"


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
        context = trace.get_current_span().get_span_context()
        token = REQUEST_DETAILS.set(_details_of(request))
        try:
            response = self.get_response(request)
        finally:
            REQUEST_DETAILS.reset(token)
        return _finish(request, response, context)

    async def _acall(self, request: Any) -> Any:
        context = trace.get_current_span().get_span_context()
        token = REQUEST_DETAILS.set(_details_of(request))
        try:
            response_awaitable: Awaitable[Any] = self.get_response(request)
            response = await response_awaitable
        finally:
            REQUEST_DETAILS.reset(token)
        return _finish(request, response, context)


def _details_of(request: Any) -> Callable[[Settings], Details]:
    """The request's Sentry details (``request``, ``user``, ``transaction``) for a bridge's
    settings, computed only when a capture asks for them."""
    return lambda settings: request_details(request, settings)


def _finish(request: Any, response: Any, context: trace.SpanContext) -> Any:
    event_id = getattr(request, "sentry_event_id", None)
    if event_id and any(b.settings.response_header for b in active_bridges()):
        response[HEADER] = event_id
    # A FileResponse is left alone: wrapping its file would disable the server's sendfile.
    if getattr(response, "streaming", False) and getattr(response, "file_to_stream", None) is None:
        try:
            _watch_stream(request, response, _request_span_context(request, context))
        except Exception:  # never into the response
            pass
    return response


def _request_span_context(request: Any, fallback: trace.SpanContext) -> trace.SpanContext:
    """The request span's context: the OTel Django middleware may run inside this one (its
    span is then not current here), and it keeps the span on the request."""
    span = (getattr(request, "META", None) or {}).get(_OTEL_SPAN_KEY)
    context = span.get_span_context() if isinstance(span, trace.Span) else None
    return context if context is not None and context.is_valid else fallback


def _watch_stream(request: Any, response: Any, context: trace.SpanContext) -> None:
    content = response.streaming_content
    if getattr(response, "is_async", False):
        response.streaming_content = _watched_async(content, request, context)
    else:
        response.streaming_content = _watched(content, request, context)


def _watched(chunks: Iterator[Any], request: Any, context: trace.SpanContext) -> Iterator[Any]:
    try:
        yield from chunks
    except Exception as exc:
        _capture_stream_error(exc, request, context)
        raise


async def _watched_async(
    chunks: AsyncIterator[Any], request: Any, context: trace.SpanContext
) -> AsyncIterator[Any]:
    try:
        async for chunk in chunks:
            yield chunk
    except Exception as exc:
        _capture_stream_error(exc, request, context)
        raise


def _capture_stream_error(exc: BaseException, request: Any, context: trace.SpanContext) -> None:
    """Captured as a failure of the request that streamed: its trace and span (ended by now:
    the event goes straight to the queue), its URL, route and headers."""
    try:
        span = trace.NonRecordingSpan(context) if context.is_valid else trace.INVALID_SPAN
        with trace.use_span(span, end_on_exit=False):
            capture_exception(
                exc,
                mechanism="django",
                handled=False,
                details=_details_of(request),
                name=route_of(request) or "django.request",
            )
    except Exception:  # the stream's own exception is what the server must see
        pass

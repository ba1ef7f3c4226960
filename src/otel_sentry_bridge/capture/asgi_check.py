"""Say once why errors of an ASGI Django app carry no trace of their own.

Under ASGI, opentelemetry-instrumentation-django makes its request span only when
opentelemetry-instrumentation-asgi is importable; without it every request is silently
untraced. Errors still reach Sentry (each with a fresh trace id), but nothing in Jaeger
matches them, which is worth a warning naming the missing package.
"""

from __future__ import annotations

import sys
from typing import Any

from opentelemetry import trace

from ..bridge import active_bridges

__all__ = ["is_asgi_request", "warn_if_untraced_asgi"]

_KEY = "untraced-asgi"


def warn_if_untraced_asgi(request: Any) -> None:
    """Called with the failed request; warns once per bridge. Never raises."""
    bridges = active_bridges()
    if not bridges or bridges[0].warn.seen(_KEY) or not is_asgi_request(request):
        return
    if trace.get_current_span().get_span_context().is_valid:
        return  # some instrumentation traces this request: nothing to say
    try:
        import opentelemetry.instrumentation.asgi  # noqa: F401
    except ImportError:
        bridges[0].warn(
            _KEY,
            "otel-sentry-bridge: this ASGI request has no OpenTelemetry span, so its errors go "
            "to Sentry without a trace that Jaeger knows. The Django instrumentation traces "
            "ASGI requests only with `pip install opentelemetry-instrumentation-asgi`.",
        )
    except Exception:
        pass


def is_asgi_request(request: Any) -> bool:
    """Whether ``request`` is Django's ``ASGIRequest``. No import here (this runs for every
    failed request): without Django's ASGI handler loaded, no request is one."""
    handler = sys.modules.get("django.core.handlers.asgi")
    request_class = getattr(handler, "ASGIRequest", None)
    return isinstance(request_class, type) and isinstance(request, request_class)

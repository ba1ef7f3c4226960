"""Opening a :class:`~otel_sentry_bridge.bridge.Bridge` from settings: the DSN parsed, the
transport made, and whether errors go to a helper process.

What :class:`~otel_sentry_bridge.SentrySpanProcessor` does when it is made, without the
OpenTelemetry SDK: a helper process opens its bridge here too, and never imports the SDK.
"""

from __future__ import annotations

import logging
import os
from typing import Literal

from ..bridge import Bridge
from ..deliver.http import HttpTransport, Transport
from ..deliver.retry import Backoff
from ..errors import InvalidDsn
from ..offload.link import HELPER_MARKER
from .config import Settings
from .dsn import Dsn

__all__ = ["open_bridge"]

_log = logging.getLogger("otel_sentry_bridge")


def open_bridge(
    settings: Settings,
    transport: Transport | None = None,
    *,
    backoff: Backoff | None = None,
    dsn_given: bool = False,
) -> Bridge:
    """The bridge for ``settings``. ``transport`` replaces the HTTP transport; ``dsn_given``:
    the DSN was an argument of the application's code, so a malformed one raises
    :class:`~otel_sentry_bridge.InvalidDsn` (one from ``SENTRY_DSN`` is logged, and the bridge
    stays off)."""
    offload = _offload(settings, custom_transport=transport is not None)
    parsed, transport = _open(settings, transport, dsn_given=dsn_given)
    if transport is None and not settings.dsn:
        _log.info("otel-sentry-bridge: no SENTRY_DSN; errors are not sent to Sentry")
    return Bridge(settings, parsed, transport, backoff=backoff, offload=offload)


def _offload(settings: Settings, *, custom_transport: bool) -> bool | Literal["auto"]:
    """Whether conversion and delivery go to a helper process (``helper_process``: True,
    False or "auto", at storms only): not with a transport or a ``before_send`` of the
    application's, which run in this process (said only when it was asked for explicitly)."""
    mode = settings.helper_process
    if not mode:
        return False
    if os.environ.get(HELPER_MARKER):  # this is a helper: it never starts one of its own
        return False
    if custom_transport or settings.before_send is not None:
        if mode is True:
            _log.warning(
                "otel-sentry-bridge: helper_process is ignored with %s (it runs in this "
                "process); errors are converted here",
                "a custom transport" if custom_transport else "before_send",
            )
        return False
    return mode


def _open(
    settings: Settings, transport: Transport | None, *, dsn_given: bool
) -> tuple[Dsn | None, Transport | None]:
    """The parsed DSN and the transport to send with. A bad DSN given as an argument raises
    InvalidDsn; one from SENTRY_DSN is logged, and the bridge stays off (no transport)."""
    parsed: Dsn | None = None
    if settings.dsn:
        try:
            parsed = Dsn.parse(settings.dsn)
        except InvalidDsn as exc:
            if dsn_given:
                raise
            _log.error("otel-sentry-bridge: SENTRY_DSN is invalid (%s); disabled", exc)
    if transport is None and parsed is not None:
        try:
            transport = HttpTransport(parsed, timeout=settings.http_timeout, gzip=settings.gzip)
        except Exception as exc:
            # Defence in depth (Dsn.parse refuses what requests refuses): only the type is
            # named, as requests quotes a refused header, the key, in its message.
            problem = f"requests cannot send to {parsed}: {type(exc).__name__}"
            if dsn_given:
                raise InvalidDsn(f"Sentry DSN is unusable ({problem})") from None
            _log.error("otel-sentry-bridge: SENTRY_DSN is invalid (%s); disabled", problem)
    return parsed, transport

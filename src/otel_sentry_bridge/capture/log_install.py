"""``HandlerInstaller``: keeps one :class:`~.log_handler.SpanEventHandler` attached where the
zero-code mode wants it, without patching logging.

The handler goes on the root logger and on every logger that does not propagate: loggers with
``propagate=False`` (common in Django ``LOGGING``) never hand their records to the root
logger, and attaching to them is the least invasive way to see their errors. A
``logging.config.dictConfig`` (Django's setup, Celery's worker) may remove it again:
:meth:`HandlerInstaller.ensure` puts it back, cheaply when nothing changed, and is called at
every request start and by the Celery hooks. The zero-code instrumentor owns the installer
and hands it to its bridge, where the Celery hooks find it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .log_handler import ignored_logger

__all__ = ["HandlerInstaller"]


class HandlerInstaller:
    """Attaches ``handler``; thread-safe; idempotent. ``skip(name)`` tells the loggers that
    must never get it (feedback loops: the bridge's own, OpenTelemetry's, the HTTP stack's)."""

    def __init__(
        self, handler: logging.Handler, skip: Callable[[str], bool] = ignored_logger
    ) -> None:
        self.handler = handler
        self._skip = skip
        self._lock = threading.Lock()
        self._seen_loggers = -1  # loggers known at the last full pass

    def install(self) -> None:
        with self._lock:
            self._seen_loggers = -1
        self.ensure()

    def ensure(self) -> None:
        """Re-attach where logging configuration removed the handler; a dict lookup and a
        list check when nothing changed."""
        handler = self.handler
        root = logging.getLogger()
        count = len(logging.Logger.manager.loggerDict)
        if handler in root.handlers and count == self._seen_loggers:
            return
        with self._lock:
            if handler not in root.handlers:
                root.addHandler(handler)
            for logger in _loggers():
                attach = not logger.propagate and not self._skip(logger.name)
                if attach and handler not in logger.handlers:
                    logger.addHandler(handler)
            self._seen_loggers = count

    def uninstall(self) -> None:
        for logger in [logging.getLogger(), *_loggers()]:
            logger.removeHandler(self.handler)


def _loggers() -> list[logging.Logger]:
    return [
        logger
        for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]

"""What a hook knows about one error, typed, on one channel from the hook to the converter.

A hook (the Django signal, the log handler, the Celery hook, ``capture_exception``) makes one
:class:`CaptureRecord` per bridge and leaves it in that bridge's capture store under its event
id; the span event (or the :class:`DirectCapture` for an error outside any recording span)
carries only OpenTelemetry's ``exception.*`` attributes and the event id. The converter gets
the span view and the record as arguments.

Records are made on the capturing thread and only read after that (by the worker): treat
them as immutable. They are not frozen dataclasses because those cost the request thread
about 4 µs more per record (``object.__setattr__`` per field); slots keep them small.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..setup.config import Settings

__all__ = [
    "CaptureRecord",
    "Details",
    "DetailsSource",
    "DirectCapture",
    "LogEntry",
    "Mechanism",
    "resolve_details",
]


@dataclass(slots=True)
class Mechanism:
    """How the error was caught: ``django``/unhandled, ``logging``/handled, ..."""

    type: str = "generic"
    handled: bool = True


@dataclass(slots=True)
class LogEntry:
    """A log message: its template (Sentry groups by it), arguments, and the formatted text."""

    template: str
    params: tuple[str, ...] = ()
    formatted: str = ""


@dataclass(slots=True)
class Details:
    """What the framework knows about the work that failed (Sentry-only, never on a span):
    the request and its user, the transaction name, a task's tags and context, a log record's
    ``extra=`` values, a fingerprint."""

    request: Mapping[str, Any] | None = None
    user: Mapping[str, Any] | None = None
    transaction: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    contexts: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    fingerprint: tuple[str, ...] | None = None

    def over(self, base: Details) -> Details:
        """These details, with ``base`` filling what they lack (e.g. the request a middleware
        lends to a log capture that knows none)."""
        return Details(
            request=self.request if self.request is not None else base.request,
            user=self.user if self.user is not None else base.user,
            transaction=self.transaction or base.transaction,
            tags={**base.tags, **self.tags},
            contexts={**base.contexts, **self.contexts},
            extra={**base.extra, **self.extra},
            fingerprint=self.fingerprint or base.fingerprint,
        )


# Details are often a function of the bridge's settings (PII allowed, the denylist): a hook
# passes such a function, called once per bridge.
DetailsSource = Details | Callable[[Settings], Details] | None


def resolve_details(source: DetailsSource, settings: Settings) -> Details:
    """The details for one bridge. A failing source gives none: the error still goes."""
    if source is None:
        return Details()
    if isinstance(source, Details):
        return source
    try:
        return source(settings)
    except Exception:
        return Details()


@dataclass(slots=True)
class CaptureRecord:
    """One capture of ours, as the hook saw it. ``send=False``: the exception is recorded on
    the span for tracing only (an expected Celery error, Celery's stand-in of an exception)."""

    event_id: str
    mechanism: Mechanism = field(default_factory=Mechanism)
    level: str = "error"
    logger: str | None = None
    logentry: LogEntry | None = None
    # None: nothing known beyond the span (most captures: no copy made for nothing).
    details: Details | None = None
    # Local variables per frame, outermost first, aligned on the innermost frame.
    frame_vars: tuple[Mapping[str, Any], ...] = ()
    # The log breadcrumbs at capture time, for an error outside any trace (a trace's own are
    # looked up by trace id when the error is converted).
    breadcrumbs: tuple[Mapping[str, Any], ...] | None = None
    send: bool = True
    # The frame of the template the error was raised in (Django's ``template_debug``): the
    # converter adds it to the stack trace (capture/template_frames.py).
    template_frame: Mapping[str, Any] | None = None

    def completed(
        self, details: Details, frame_vars: tuple[Mapping[str, Any], ...]
    ) -> CaptureRecord:
        """This record with a bridge's details and local variables. (``dataclasses.replace``
        costs several microseconds on the request thread: every field is listed here.)"""
        return CaptureRecord(
            self.event_id,
            mechanism=self.mechanism,
            level=self.level,
            logger=self.logger,
            logentry=self.logentry,
            details=details,
            frame_vars=frame_vars,
            breadcrumbs=self.breadcrumbs,
            send=self.send,
            template_frame=self.template_frame,
        )


@dataclass
class DirectCapture:
    """An error outside any recording span (sampled out, no span at all, or the span's log
    event budget is spent): what the worker needs to make the span view of it. Its record is
    in the store under ``attributes[EVENT_ID]``."""

    trace_id: int
    span_id: int
    timestamp_ns: int
    attributes: dict[str, Any]
    # Kept so that its traceback is formatted on the worker, not on the request thread.
    exception: BaseException | None = None
    name: str = "capture"
    # The tracer provider's resource (environment, release, service tags), which a sampled-out
    # span does not carry, and what a recording span already holds (route, URL, kind).
    resource: Mapping[str, Any] | None = None
    span_attributes: Mapping[str, Any] | None = None
    span_kind: str = "INTERNAL"

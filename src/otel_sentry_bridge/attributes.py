"""Names of the span-event attributes this package writes and reads.

The ``exception.*`` keys are OpenTelemetry's; the ``sentry.*`` keys are ours and carry what
OTel has no name for. Everything here may reach the tracing backend, so nothing secret goes
into them (local variables and user data travel out of band, see ``capture``).
"""

__all__ = [
    "EVENT_ID",
    "EXCEPTION_MESSAGE",
    "EXCEPTION_STACKTRACE",
    "EXCEPTION_TYPE",
    "LEVEL",
    "LOGENTRY_MESSAGE",
    "LOGENTRY_PARAMS",
    "LOGGER",
    "LOG_EVENT",
    "LOG_MESSAGE",
    "MECHANISM_HANDLED",
    "MECHANISM_TYPE",
    "SEND",
]

EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_STACKTRACE = "exception.stacktrace"

EVENT_ID = "sentry.event_id"  # stamped at capture time, reused as the Sentry event id
MECHANISM_TYPE = "sentry.mechanism.type"  # "django", "logging", "generic", ...
MECHANISM_HANDLED = "sentry.mechanism.handled"  # bool
LEVEL = "sentry.level"  # Sentry level name: "error", "warning", "info", ...
LOGGER = "sentry.logger"  # logger name of a captured log record
LOGENTRY_MESSAGE = "sentry.logentry.message"  # the unformatted template (for grouping)
LOGENTRY_PARAMS = "sentry.logentry.params"  # its arguments, as strings

# A log record recorded as a span event (not an exception).
LOG_EVENT = "log"
LOG_MESSAGE = "log.message"  # formatted message
SEND = "sentry.send"  # True on a log event that must become a Sentry event of its own

"""``otel-sentry-bridge test``: send one test error with a real trace context to the DSN.

Like raven's ``raven test``: it proves the DSN, the network path and the server's acceptance
in one step, and prints the event id and trace id to look up in Sentry and in the tracing
backend. Exit status: 0 when the server accepted the event (2xx), 1 when it refused or could
not be reached, 2 for a bad DSN or usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from .._version import __version__
from ..convert.event import build_events
from ..convert.spans import span_view
from ..deliver.http import HttpTransport
from ..deliver.pipeline import convert_context, envelope_for
from ..errors import ConfigError
from .config import Settings, load_settings
from .dsn import Dsn

__all__ = ["main"]


class BridgeTestError(Exception):
    """Raised on purpose by ``otel-sentry-bridge test``."""


def _raise_test_error(message: str) -> None:
    raise BridgeTestError(message)


def _test(dsn_arg: str | None, message: str, timeout: float) -> int:
    try:
        settings = load_settings({"dsn": dsn_arg} if dsn_arg else {})
        if not settings.dsn:
            print("error: no DSN: pass --dsn or set SENTRY_DSN", file=sys.stderr)
            return 2
        dsn = Dsn.parse(settings.dsn)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        transport = HttpTransport(dsn, timeout=timeout, gzip=settings.gzip)
    except Exception as exc:  # Dsn.parse refuses what requests refuses; this is a backstop
        # Only the type: requests quotes a refused header, the key, in its message.
        print(f"error: Sentry DSN {dsn} is unusable ({type(exc).__name__})", file=sys.stderr)
        return 2
    try:
        return _send_test_event(transport, dsn, settings, message)
    finally:
        transport.close()


def _send_test_event(transport: HttpTransport, dsn: Dsn, settings: Settings, message: str) -> int:
    """Record the test error on a span, send it, and print the outcome; the exit status.
    ``body`` and ``error`` of the result come redacted from the transport."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-sentry-bridge"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("otel_sentry_bridge.setup.cli")
    with tracer.start_as_current_span("otel-sentry-bridge test", kind=SpanKind.INTERNAL) as span:
        try:
            _raise_test_error(message)
        except BridgeTestError as exc:
            span.record_exception(exc, attributes={"sentry.mechanism.type": "cli"})
    (finished,) = exporter.get_finished_spans()
    (_, event), *_ = build_events(span_view(finished), convert_context(settings))
    event["tags"] = {**event.get("tags", {}), "otel_sentry_bridge.test": "true"}
    trace_id = event["contexts"]["trace"]["trace_id"]

    print(f"Sending a test event to {dsn} (project {dsn.project_id})")
    print(f"  event id: {event['event_id']}")
    print(f"  trace id: {trace_id}")
    result = transport.send(envelope_for(event, dsn))
    if result.ok:
        print(f"OK: the server accepted the event (HTTP {result.status}).")
        if settings.trace_url_template:
            print(f"  trace: {settings.trace_url_template.replace('{trace_id}', trace_id)}")
        return 0
    if result.status is None:
        print(f"error: could not reach the server: {result.error}", file=sys.stderr)
    else:
        reason = result.body.strip() or "(no reason given)"
        print(
            f"error: the server refused the event: HTTP {result.status}: {reason}", file=sys.stderr
        )
    return 1


def _seconds(text: str) -> float:
    """A positive, finite number of seconds; argparse turns the error into usage (exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="otel-sentry-bridge", description="OpenTelemetry -> Sentry bridge tools"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    test = commands.add_parser("test", help="send a test error event to the DSN")
    test.add_argument("--dsn", help="Sentry DSN (default: $SENTRY_DSN)")
    test.add_argument(
        "--message", default="This is a test error from otel-sentry-bridge", help="error text"
    )
    test.add_argument(
        "--timeout",
        type=_seconds,
        default=10.0,
        help=(
            "seconds (over 0) for each step of the exchange: connecting and sending, then"
            " the reply; the whole test can take about twice as long"
        ),
    )
    args = parser.parse_args(argv)
    if args.command == "test":
        return _test(args.dsn, args.message, args.timeout)
    return 2  # pragma: no cover - argparse enforces a command


if __name__ == "__main__":
    sys.exit(main())

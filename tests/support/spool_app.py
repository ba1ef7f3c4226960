"""A process that records errors while Sentry is down, with a spool, then waits to be killed.

python -m tests.support.spool_app DSN SPOOL_DIR COUNT   # records COUNT errors
python -m tests.support.spool_app DSN SPOOL_DIR 0       # only starts (and drains the spool)
"""

import sys
import threading

from opentelemetry.sdk.trace import TracerProvider

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.deliver.retry import Backoff


def main() -> None:
    dsn, spool_dir, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    provider = TracerProvider()
    backoff = Backoff(initial=0.05, maximum=0.2)
    processor = SentrySpanProcessor(dsn=dsn, spool_dir=spool_dir, backoff=backoff)
    provider.add_span_processor(processor)
    link = processor.bridge.link  # OTEL_SENTRY_HELPER_PROCESS=true: the helper spools them
    if link is not None and not link.start(30):
        raise SystemExit("the helper process did not start")
    tracer = provider.get_tracer("spool_app")
    for n in range(count):
        with tracer.start_as_current_span(f"job {n}") as span:
            try:
                raise RuntimeError(f"failure {n}")
            except RuntimeError as exc:
                span.record_exception(exc)
    processor.force_flush(10_000)
    print("ready", flush=True)
    threading.Event().wait()  # until killed


if __name__ == "__main__":
    main()

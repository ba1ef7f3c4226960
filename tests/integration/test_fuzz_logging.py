"""Fuzzing SpanEventHandler with hostile log records, through the real processor pipeline.

Records are made with ``Logger.makeRecord`` and handed to ``handler.handle`` directly (other
handlers, pytest's included, would raise on some of them). Each example checks that handling
never raises, that the processor flushes, that an ERROR record of a logger we do not ignore
gives exactly one event, and that every event on the wire passes sentry-relay.
"""

from __future__ import annotations

import datetime
import logging
import os
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.capture.log_handler import IGNORED_LOGGERS, SpanEventHandler
from otel_sentry_bridge.convert.scrub import safe_repr
from otel_sentry_bridge.testing import CapturingTransport
from tests.support.relay import assert_valid_event


@dataclass
class Rig:
    provider: TracerProvider
    processor: SentrySpanProcessor
    transport: CapturingTransport
    handler: SpanEventHandler
    failures: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    failures: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        # Runs on the sender thread: collect, so that one bad event cannot hide others.
        try:
            assert_valid_event(event)
        except Exception as exc:  # AssertionError, or relay refusing the JSON itself
            failures.append(f"{event.get('event_id')}: {exc}")

    transport = CapturingTransport(observe=observe)
    processor = SentrySpanProcessor(transport=transport, include_local_variables=True)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    handler = SpanEventHandler(settings=processor.settings)
    try:
        yield Rig(provider, processor, transport, handler, failures)
    finally:
        provider.shutdown()


@pytest.fixture(autouse=True)
def every_event_passes_relay() -> None:
    """Replaces the conftest check for this module: it validates the events as the pipeline
    hands them to the encoder, where strings may still hold lone surrogates that
    ``json.dumps`` writes as escapes relay cannot parse. Here every event is validated as
    decoded from the wire instead (``observe`` above)."""


# -- hostile values -------------------------------------------------------------------------


class BadStr:
    """Raises from ``__str__``, ``__repr__`` and ``__format__``."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ failed")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ failed")

    def __format__(self, spec: str) -> str:
        raise RuntimeError("__format__ failed")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("BadStr()")  # how Hypothesis prints a failing example; repr() would raise


class WrongStr:
    """``__str__`` returns something that is not a str."""

    def __str__(self) -> str:
        return 42  # type: ignore[return-value]

    __repr__ = __str__

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("WrongStr()")


class LookupOnly(Mapping[Any, Any]):
    """``%``-arguments that can be looked up (``%(name)s``) but not listed."""

    def __init__(self, values: dict[Any, Any]) -> None:
        self.values_ = values

    def __getitem__(self, key: Any) -> Any:
        return self.values_[key]

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("listing not supported")

    def __len__(self) -> int:
        return len(self.values_)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(f"LookupOnly({self.values_!r})")


class BadStrError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("exception __str__ failed")


class BadReprError(ValueError):
    def __repr__(self) -> str:
        raise RuntimeError("exception __repr__ failed")


text = st.text(st.characters(exclude_categories=()), max_size=40)  # surrogates included
huge = st.builds(
    lambda s, n: s * n,
    st.text(st.characters(exclude_categories=()), min_size=1, max_size=3),
    st.integers(1000, 200_000),
)
multiline = st.lists(text, min_size=2, max_size=30).map("\n".join)
messages = st.one_of(text, huge, multiline)

odd_objects = st.one_of(
    st.builds(BadStr),
    st.builds(WrongStr),
    st.builds(object),
    st.just(float("nan")),
    st.integers(-(10**30), 10**30),
    st.binary(max_size=20),
    st.lists(text, max_size=3),
)
arg_values = st.one_of(text, huge, st.integers(), st.floats(), st.none(), odd_objects)

placeholders = st.sampled_from(
    ["%s", "%d", "%r", "%(name)s", "%(user)d", "%%", "%", "%5.2f", "{}", "%(", "%z"]
)
templates = st.one_of(
    st.lists(st.one_of(text, placeholders), max_size=8).map("".join),
    messages,
    odd_objects,  # msg need not be a str
)
args = st.one_of(
    st.none(),
    st.tuples(),
    st.lists(arg_values, min_size=1, max_size=4).map(tuple),
    st.dictionaries(st.sampled_from(["name", "user", "x"]) | text, arg_values, max_size=4).map(
        lambda d: (d,)  # makeRecord unwraps a one-dict tuple into a mapping, as logging does
    ),
    odd_objects.map(lambda o: (o,)),
    st.dictionaries(st.sampled_from(["name", "user", "x"]), arg_values, min_size=1, max_size=3).map(
        lambda d: (LookupOnly(d),)
    ),
)
# Names that LogRecord itself owns make makeRecord raise KeyError: leave them out.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
extra_keys = st.one_of(
    text,
    st.integers(),  # logging takes any key in extra=
    st.tuples(text, text),
    st.sampled_from(["password", "user_token", "request", "data", "_private", "tags", "extra"]),
).filter(lambda k: k not in _RESERVED)
extras = st.none() | st.dictionaries(extra_keys, arg_values, max_size=6)
# What a filter or makeLogRecord may leave in LogRecord.created (wrapped: () keeps the real one).
created_times = st.one_of(
    st.just(()),
    st.just(()),
    st.one_of(
        st.datetimes(timezones=st.none() | st.just(datetime.timezone.utc)),
        text,
        st.floats(),
        st.integers(-(10**30), 10**30),
        st.none(),
    ).map(lambda value: (value,)),
)

exception_types = st.sampled_from(
    [ValueError, KeyError, RuntimeError, BadStrError, BadReprError, UnicodeError]
)
logger_names = st.one_of(
    text,
    st.sampled_from(
        [
            "",
            "root",
            "app.views",
            "django.request",
            "django.server",
            "requests.x",
            "urllib3",
            "opentelemetry.sdk",
            "otel_sentry_bridge.deliver.worker",
            "a.b.c",
        ]
    ),
)
# Mostly levels that make events: those go through the whole pipeline.
_event_levels = st.sampled_from([logging.ERROR, logging.CRITICAL, logging.ERROR + 1])
levels = st.one_of(
    _event_levels,
    _event_levels,
    _event_levels,
    st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING]),
    st.integers(0, 60),
)


def raised(kind: type[Exception], message: str, chained: bool) -> BaseException:
    """An exception with a real traceback (and a cause, if ``chained``)."""

    def inner() -> None:
        if chained:
            try:
                {}["missing"]
            except KeyError as cause:
                raise kind(message) from cause
        raise kind(message)

    try:
        inner()
    except Exception as exc:
        return exc
    raise AssertionError("unreachable")


_exc_info = st.builds(raised, exception_types, messages, st.booleans()).map(
    lambda e: (type(e), e, e.__traceback__)
)
exc_infos = st.one_of(
    _exc_info,
    st.none(),
    _exc_info,
    st.just((None, None, None)),  # what sys.exc_info() gives outside an except block
)


def expects_event(rig: Rig, record: logging.LogRecord) -> bool:
    name = record.name
    if record.levelno < rig.handler.event_level:
        return False
    if name.partition(".")[0] in IGNORED_LOGGERS or name == "django.server":
        return False
    return not (name == "django.request" and not record.exc_info)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    name=logger_names,
    level=levels,
    msg=templates,
    args=args,
    exc_info=exc_infos,
    extra=extras,
    sinfo=st.none() | text,
    created=created_times,
    in_span=st.booleans(),
)
def test_any_log_record_is_handled_without_raising_and_gives_valid_events(
    rig: Rig,
    name: str,
    level: int,
    msg: Any,
    args: Any,
    exc_info: Any,
    extra: dict[str, Any] | None,
    sinfo: str | None,
    created: tuple[Any, ...],
    in_span: bool,
) -> None:
    # Hypothesis makes ``random`` repeat itself in every example; OTel's span ids and the
    # bridge's ids for span-less captures come from it, and the pipeline drops an error
    # already sent for the same trace as a duplicate. Real processes never reseed like that.
    random.seed(os.urandom(16))
    logger = logging.getLogger("tests.fuzz")
    record = logger.makeRecord(name, level, __file__, 1, msg, args, exc_info, "func", extra, sinfo)
    if created:
        record.created = created[0]
    before = len(rig.transport.events)
    if in_span:
        with rig.provider.get_tracer("fuzz").start_as_current_span("request"):
            rig.handler.handle(record)
    else:
        rig.handler.handle(record)
    assert rig.processor.force_flush(10_000)
    produced = len(rig.transport.events) - before
    expected = 1 if expects_event(rig, record) else 0
    assert produced == expected, safe_repr(
        (name, level, msg, args, exc_info, extra, created, in_span), 2000
    )
    assert rig.failures == []


def test_a_message_whose_str_raises_still_gives_an_event(rig: Rig) -> None:
    try:
        raise BadStrError()
    except BadStrError as exc:
        record = logging.getLogger("tests.fuzz").makeRecord(
            "app", logging.ERROR, __file__, 1, exc, None, (type(exc), exc, exc.__traceback__)
        )
    before = len(rig.transport.events)
    rig.handler.handle(record)  # logger.exception(exc) does exactly this
    assert rig.processor.force_flush(10_000)
    assert len(rig.transport.events) - before == 1

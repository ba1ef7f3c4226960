"""Capturing a Django view's locals runs no database query: a real ORM (sqlite in memory), the
real middleware (``request.user`` is a ``SimpleLazyObject``), the real OTel instrumentation and
``got_request_exception`` hook, and a query counter around the whole request.

What the view left lazy (a queryset, the user) stays lazy and is shown as a placeholder; what
it evaluated is shown from what it already holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.template import Context, Template
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import path

from otel_sentry_bridge import SentrySpanProcessor
from otel_sentry_bridge.testing import CapturingTransport
from tests.support.otel_django import InstrumentedDjango


def _user_model() -> Any:
    from django.contrib.auth.models import User  # once Django is set up (by the fixture)

    return User


def lazy_locals(request: HttpRequest) -> HttpResponse:
    User = _user_model()
    user = request.user  # noqa: F841  (locals to capture)
    users = User.objects.filter(is_active=True)  # noqa: F841
    raw = User.objects.raw("SELECT * FROM auth_user")  # noqa: F841
    raise RuntimeError("failed before using them")


def evaluated_locals(request: HttpRequest) -> HttpResponse:
    User = _user_model()
    user = request.user
    assert user.is_authenticated  # evaluates the user (the session, then the user row)
    users = User.objects.filter(username="ada")
    assert len(users) == 1  # evaluates the queryset
    queries_so_far = len(connection.queries_log)  # noqa: F841
    raise RuntimeError("failed after using them")


class _Boom:
    @property
    def explode(self) -> str:
        raise RuntimeError("failed while rendering")


def template_context(request: HttpRequest) -> HttpResponse:
    # Every frame of the template engine holds the Context, whose repr prints its querysets.
    context = Context({"users": _user_model().objects.all(), "boom": _Boom()})
    return HttpResponse(Template("{{ boom.explode }}").render(context))


urlpatterns = [
    path("lazy/", lazy_locals),
    path("evaluated/", evaluated_locals),
    path("template/", template_context),
]


class App:
    def __init__(self) -> None:
        self.transport = CapturingTransport()
        self.processor = SentrySpanProcessor(
            transport=self.transport, include_local_variables=True, send_default_pii=False
        )
        self.client = Client(raise_request_exception=False)

    def event(self) -> dict[str, Any]:
        assert self.processor.force_flush(10_000)
        (event,) = self.transport.events
        return event


@pytest.fixture
def app(instrumented_django: InstrumentedDjango) -> Iterator[App]:
    call_command("migrate", verbosity=0)
    ada, _ = _user_model().objects.get_or_create(username="ada")
    app = App()
    app.client.force_login(ada)  # so that evaluating request.user would query
    with override_settings(ROOT_URLCONF=__name__), instrumented_django.processor(app.processor):
        yield app


def _vars(event: dict[str, Any], function: str) -> dict[str, Any]:
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    frame = next(f for f in frames if f["function"] == function)
    variables: dict[str, Any] = frame["vars"]
    return variables


def test_an_unevaluated_queryset_and_user_stay_unevaluated(app: App) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert app.client.get("/lazy/").status_code == 500
    assert [q["sql"] for q in queries] == []
    variables = _vars(app.event(), "lazy_locals")
    assert variables["users"] == "<QuerySet of User (not evaluated)>"
    assert variables["raw"] == "<RawQuerySet of User (not evaluated)>"
    assert variables["user"] == "<SimpleLazyObject (not evaluated)>"


def test_an_evaluated_queryset_and_user_show_what_they_hold(app: App) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert app.client.get("/evaluated/").status_code == 500
    variables = _vars(app.event(), "evaluated_locals")
    assert queries.final_queries == variables["queries_so_far"]  # none after the view's own
    assert variables["users"] == ["<User: ada>"]
    assert variables["user"] == "<User: ada>"


def test_a_template_context_is_shown_without_running_its_querysets(app: App) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert app.client.get("/template/").status_code == 500
    assert [q["sql"] for q in queries] == []
    variables = _vars(app.event(), "template_context")
    dicts = variables["context"]
    assert dicts[-1]["users"] == "<QuerySet of User (not evaluated)>"

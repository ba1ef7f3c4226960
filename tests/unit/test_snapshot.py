"""snapshot: live values copied as bounded, scrubbed data on the capturing thread."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from otel_sentry_bridge.capture.snapshot import (
    MAX_FRAMES,
    MAX_ITEMS,
    MAX_VARIABLES,
    frame_variables,
    snapshot,
    snapshot_mapping,
)
from otel_sentry_bridge.convert.scrub import FILTERED, Scrubber

SECRET = "hunter2"
S = Scrubber()


def _django() -> None:
    """The tests' Django project, as the Django tests set it up (settings are per process)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.djangoapp.settings")
    import django

    django.setup()


def test_secrets_nested_in_mappings_and_sequences_are_filtered_by_their_own_key() -> None:
    value = {"user": "bob", "creds": {"password": SECRET}, "list": [{"api_key": SECRET}, 3]}
    assert snapshot(value, S) == {
        "user": "bob",
        "creds": {"password": FILTERED},
        "list": [{"api_key": FILTERED}, 3],
    }


def test_strings_and_object_reprs_are_scrubbed_as_free_text() -> None:
    class Creds:
        def __repr__(self) -> str:
            return f"Creds(user='bob', token='{SECRET}')"

    assert snapshot(f"password={SECRET}", S) == f"password={FILTERED}"
    assert snapshot(f"https://u:{SECRET}@db/x", S) == f"https://u:{FILTERED}@db/x"
    assert snapshot(Creds(), S) == f"Creds(user='bob', token={FILTERED})"


def test_a_json_decoded_body_keeps_its_shape() -> None:
    body = json.loads(json.dumps({"order": 7, "card": {"brand": "visa", "secret": SECRET}}))
    assert snapshot(body, S) == {"order": 7, "card": {"brand": "visa", "secret": FILTERED}}


def test_a_django_querydict_shows_every_value_and_filters_by_key() -> None:
    _django()
    from django.http import QueryDict

    form = QueryDict(f"password={SECRET}&tag=a&tag=b")
    assert snapshot(form, S) == {"password": FILTERED, "tag": ["a", "b"]}


def test_a_django_request_shows_method_and_path_without_its_query() -> None:
    _django()
    from django.test import RequestFactory

    request = RequestFactory().get(f"/boom?password={SECRET}")
    assert snapshot(request, S) == "<WSGIRequest: GET '/boom'>"


def test_containers_are_cut_never_sorted_or_copied_whole() -> None:
    huge = {index: index for index in range(500_000)}
    out = snapshot({"huge": huge, "set": set(range(500_000)), "blob": b"x" * 20_000_000}, S)
    assert len(out["huge"]) == MAX_ITEMS
    assert len(out["set"]) == MAX_ITEMS
    assert len(out["blob"]) <= 256


def test_deep_data_becomes_a_short_scrubbed_repr() -> None:
    deep = {"a": {"b": {"c": {"password": SECRET}}}}
    out = snapshot(deep, S)
    assert SECRET not in json.dumps(out)


def test_each_snapshot_looks_at_a_bounded_number_of_values() -> None:
    wide = [[list(range(20)) for _ in range(20)] for _ in range(20)]  # 8,000 values
    out = snapshot(wide, S, budget=50)
    assert json.dumps(out).count("<...>") > 0
    assert sum(isinstance(v, int) for row in out for cell in row for v in cell) < 50


def test_values_whose_iteration_fails_are_filtered_not_sent() -> None:
    class Broken(dict[str, Any]):
        def items(self) -> Any:
            raise RuntimeError("no")

        def lists(self) -> Any:
            raise RuntimeError("no")

    assert snapshot(Broken(a=1), S) == FILTERED


def test_snapshot_mapping_filters_sensitive_names_and_keeps_a_bounded_number() -> None:
    values = {f"v{i}": i for i in range(100)}
    values["db_password"] = SECRET
    out = snapshot_mapping({"db_password": SECRET, **values}, S)
    assert out["db_password"] == FILTERED
    assert len(out) == MAX_VARIABLES


def test_frame_variables_keep_the_innermost_frames_only() -> None:
    def recurse(depth: int) -> None:
        token = SECRET  # noqa: F841  (a local to find)
        if depth:
            recurse(depth - 1)
        raise ValueError("bottom")

    try:
        recurse(MAX_FRAMES + 20)
    except ValueError:
        tb = sys.exc_info()[2]
    frames = frame_variables(tb, S)
    assert len(frames) == MAX_FRAMES
    assert frames[-1]["depth"] == 0
    assert frames[-1]["token"] == FILTERED


def test_a_lazy_object_left_unevaluated_is_never_evaluated() -> None:
    _django()
    from django.utils.functional import SimpleLazyObject

    evaluations: list[str] = []

    def load_user() -> dict[str, str]:
        evaluations.append("user")
        return {"name": "bob"}

    user = SimpleLazyObject(load_user)
    placeholder = "<SimpleLazyObject (not evaluated)>"
    assert snapshot(user, S) == placeholder
    assert snapshot_mapping({"user": user, "users": [user]}, S) == {
        "user": placeholder,
        "users": [placeholder],
    }
    deep = snapshot({"a": {"b": {"c": {"user": user}}}}, S)  # the deepest level is a repr
    assert deep == {"a": {"b": {"c": f"{{'user': {placeholder}}}"}}}
    assert evaluations == []


def test_a_lazy_object_the_application_evaluated_shows_what_it_holds() -> None:
    _django()
    from django.utils.functional import SimpleLazyObject

    creds = SimpleLazyObject(lambda: {"user": "bob", "password": SECRET})
    assert creds["user"] == "bob"  # the application evaluates it
    assert snapshot(creds, S) == {"user": "bob", "password": FILTERED}
    deep = snapshot({"a": {"b": {"c": {"creds": creds}}}}, S)  # the deepest level is a repr
    assert deep["a"]["b"]["c"].startswith("{'creds': <SimpleLazyObject: {'user': 'bob', ")
    assert SECRET not in json.dumps(deep)


def test_an_unevaluated_queryset_is_a_placeholder_not_its_query() -> None:
    _django()
    from django.contrib.auth.models import User

    users = User.objects.filter(is_active=True)  # the test database has no table: a query fails
    raw = User.objects.raw("SELECT * FROM auth_user")
    assert snapshot(users, S) == "<QuerySet of User (not evaluated)>"
    assert snapshot(raw, S) == "<RawQuerySet of User (not evaluated)>"
    deep = snapshot({"a": {"b": {"c": [users]}}}, S)
    assert deep == {"a": {"b": {"c": "[<QuerySet of User (not evaluated)>]"}}}
    assert users._result_cache is None


def test_a_template_context_shows_its_dicts_without_their_querysets() -> None:
    _django()
    from django.contrib.auth.models import User
    from django.template import Context

    context = Context({"users": User.objects.all(), "password": SECRET})
    assert snapshot(context, S) == [
        {"True": True, "False": False, "None": None},
        {"users": "<QuerySet of User (not evaluated)>", "password": FILTERED},
    ]


def test_types_are_read_from_type_never_from_a_proxied_class() -> None:
    reads: list[str] = []

    class Proxy:  # as a lazy proxy does: reading __class__ evaluates it
        @property  # type: ignore[misc]
        def __class__(self) -> type:
            reads.append("__class__")
            return dict

    assert snapshot(Proxy(), S).startswith("<")
    assert snapshot({"a": {"b": {"c": [Proxy()]}}}, S)
    assert reads == []

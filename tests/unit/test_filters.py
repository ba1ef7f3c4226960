from __future__ import annotations

import sys
import types

import django.core.exceptions
import django.http
import pytest

from otel_sentry_bridge.convert.filters import IgnoredTypes
from otel_sentry_bridge.setup.config import DEFAULT_IGNORED_EXCEPTIONS


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class ShopItemNotFound(django.http.Http404):  # type: ignore[misc]  # django is untyped
    """An application's own 404, importable from this test module."""


class GrandchildNotFound(ShopItemNotFound):
    pass


class UnrelatedError(Exception):
    pass


class ApiClient:
    class Error(Exception):
        pass

    class Timeout(Error):
        pass


# -- exact names -----------------------------------------------------------------------------


def test_exact_qualified_name_matches() -> None:
    ignored = IgnoredTypes(["myapp.errors.Gone"])

    assert ignored.matches("myapp.errors.Gone")


def test_other_qualified_name_in_an_unimported_module_does_not_match() -> None:
    ignored = IgnoredTypes(["myapp.errors.Gone"])

    assert not ignored.matches("myapp.errors.Gone2")
    assert not ignored.matches("otherapp.errors.Gone")
    assert not ignored.matches("Gone")


def test_names_are_stripped_of_surrounding_whitespace() -> None:
    assert IgnoredTypes(["  myapp.errors.Gone  "]).matches("myapp.errors.Gone")


# -- builtins --------------------------------------------------------------------------------


def test_short_builtin_name_matches_the_unqualified_type() -> None:
    assert IgnoredTypes(["KeyError"]).matches("KeyError")


def test_short_builtin_name_matches_the_builtins_qualified_type() -> None:
    assert IgnoredTypes(["KeyError"]).matches("builtins.KeyError")


def test_builtins_qualified_name_matches_the_short_type() -> None:
    assert IgnoredTypes(["builtins.KeyError"]).matches("KeyError")


def test_short_builtin_base_name_matches_builtin_subclasses() -> None:
    ignored = IgnoredTypes(["LookupError"])

    assert ignored.matches("KeyError")
    assert ignored.matches("IndexError")
    assert not ignored.matches("ValueError")


def test_short_builtin_name_matches_an_imported_subclass() -> None:
    assert IgnoredTypes(["Exception"]).matches(qualified(UnrelatedError))


def test_short_name_matches_the_same_named_class_in_any_module() -> None:
    # Like sentry-sdk's ignore_errors: a bare class name matches whatever module it is in,
    # even one that is not imported here.
    ignored = IgnoredTypes(["Http404", "Gone"])

    assert ignored.matches("django.http.response.Http404")
    assert ignored.matches("myapp.errors.Gone")
    assert not ignored.matches("myapp.errors.Gone2")


def test_builtin_name_does_not_match_an_unrelated_builtin() -> None:
    ignored = IgnoredTypes(["KeyError"])

    assert not ignored.matches("ValueError")
    assert not ignored.matches("LookupError")  # a base class is not a subclass


# -- subclasses of imported classes ----------------------------------------------------------


def test_subclass_of_ignored_imported_class_matches() -> None:
    ignored = IgnoredTypes(["django.http.response.Http404"])

    assert ignored.matches(qualified(ShopItemNotFound))
    assert ignored.matches(qualified(GrandchildNotFound))


def test_ignored_class_named_by_its_public_import_path_matches_subclasses() -> None:
    ignored = IgnoredTypes(["django.http.Http404"])  # re-exported from django.http.response

    assert ignored.matches(qualified(ShopItemNotFound))


def test_ignored_subclass_does_not_match_its_base_class() -> None:
    ignored = IgnoredTypes([qualified(ShopItemNotFound)])

    assert ignored.matches(qualified(ShopItemNotFound))
    assert ignored.matches(qualified(GrandchildNotFound))
    assert not ignored.matches("django.http.response.Http404")


def test_subclass_matching_works_for_nested_classes() -> None:
    ignored = IgnoredTypes([qualified(ApiClient.Error)])

    assert qualified(ApiClient.Timeout) == f"{__name__}.ApiClient.Timeout"
    assert ignored.matches(qualified(ApiClient.Timeout))
    assert not ignored.matches(qualified(UnrelatedError))


# -- classes of __main__ (the script being run) ----------------------------------------------


@pytest.fixture
def main_module(monkeypatch: pytest.MonkeyPatch) -> dict[str, type]:
    """Classes as a script run as __main__ defines them: ``MainErr``, its subclass
    ``MainSub``, ``Outer.Inner`` and an unrelated ``Other``."""
    main_err = type("MainErr", (Exception,), {"__module__": "__main__"})
    main_sub = type("MainSub", (main_err,), {"__module__": "__main__"})
    inner = type("Inner", (main_err,), {"__module__": "__main__", "__qualname__": "Outer.Inner"})
    outer = type("Outer", (), {"__module__": "__main__", "Inner": inner})
    other = type("Other", (Exception,), {"__module__": "__main__"})
    classes = {"MainErr": main_err, "MainSub": main_sub, "Outer": outer, "Other": other}
    for name, cls in classes.items():
        monkeypatch.setattr(sys.modules["__main__"], name, cls, raising=False)
    return classes


@pytest.mark.parametrize(
    "name",
    [
        "MainErr",  # as an event names it: Python prints __main__ classes without the module
        "MainSub",
        "Outer.Inner",
        "__main__.MainErr",  # as a capture names it (the class's own module and qualname)
        "__main__.MainSub",
        "__main__.Outer.Inner",
    ],
)
def test_main_class_and_its_subclasses_match_under_their_main_name(
    main_module: dict[str, type], name: str
) -> None:
    assert IgnoredTypes(["__main__.MainErr"]).matches(name)


@pytest.mark.parametrize("name", ["Other", "__main__.Other", "ValueError", "NotInMain"])
def test_main_name_does_not_match_other_classes(main_module: dict[str, type], name: str) -> None:
    assert not IgnoredTypes(["__main__.MainErr"]).matches(name)


def test_main_subclass_name_does_not_match_its_base(main_module: dict[str, type]) -> None:
    ignored = IgnoredTypes(["__main__.MainSub"])

    assert ignored.matches("MainSub")
    assert not ignored.matches("MainErr")


def test_main_class_matches_by_name_even_when_not_reachable_in_main() -> None:
    # A class __main__ no longer holds (redefined, deleted): its printed name still matches.
    assert IgnoredTypes(["__main__.GoneError"]).matches("GoneError")


def test_builtin_is_not_taken_for_a_main_class(monkeypatch: pytest.MonkeyPatch) -> None:
    # A script's own KeyError is indistinguishable in the event; the builtin wins.
    shadow = type("KeyError", (Exception,), {"__module__": "__main__"})
    monkeypatch.setattr(sys.modules["__main__"], "KeyError", shadow, raising=False)

    assert not IgnoredTypes(["__main__.KeyError"]).matches("KeyError")


def test_module_qualified_name_is_not_retried_in_main(monkeypatch: pytest.MonkeyPatch) -> None:
    # "django.http.X" is django's, even when __main__ happens to hold an attribute "django".
    fake = type("Http404", (Exception,), {"__module__": "__main__"})
    monkeypatch.setattr(
        sys.modules["__main__"], "django", types.SimpleNamespace(Http404=fake), raising=False
    )

    assert not IgnoredTypes(["__main__.django.Http404"]).matches("django.Http404")


# -- Django's defaults -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc_type",
    [
        django.http.Http404,
        django.core.exceptions.PermissionDenied,
        django.core.exceptions.SuspiciousOperation,
        django.core.exceptions.DisallowedHost,
        django.core.exceptions.DisallowedRedirect,
        django.core.exceptions.RequestDataTooBig,
        ShopItemNotFound,
    ],
    ids=lambda cls: cls.__name__,
)
def test_django_defaults_ignore_client_errors_and_their_subclasses(exc_type: type) -> None:
    assert IgnoredTypes(DEFAULT_IGNORED_EXCEPTIONS).matches(qualified(exc_type))


def test_disallowed_host_is_a_suspicious_operation_not_named_in_the_defaults() -> None:
    # Guards the test above: DisallowedHost is matched through its base class only.
    name = qualified(django.core.exceptions.DisallowedHost)

    assert name == "django.core.exceptions.DisallowedHost"
    assert name not in DEFAULT_IGNORED_EXCEPTIONS
    assert issubclass(
        django.core.exceptions.DisallowedHost, django.core.exceptions.SuspiciousOperation
    )


@pytest.mark.parametrize(
    "name",
    [
        "KeyError",
        "ValueError",
        "django.core.exceptions.ValidationError",
        "django.core.exceptions.ObjectDoesNotExist",
        "django.db.utils.IntegrityError",
        f"{__name__}.UnrelatedError",
        "myapp.errors.Gone",
    ],
)
def test_django_defaults_do_not_ignore_unrelated_errors(name: str) -> None:
    assert not IgnoredTypes(DEFAULT_IGNORED_EXCEPTIONS).matches(name)


# -- robustness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "not_imported_pkg.sub.Error",
        "not_imported_pkg.Outer.Inner",
        "Error",
        "",
        ".",
        "..",
        "a..b",
        f"{__name__}.NoSuchClass",
        f"{__name__}.qualified",  # a function, not a class
        f"{__name__}.ApiClient.Missing",
    ],
)
def test_unresolvable_names_on_either_side_do_not_crash(name: str) -> None:
    ignored = IgnoredTypes(
        [
            "not_imported_pkg.Base",
            "another.missing.Outer.Inner",
            "NoSuchBuiltin",
            "django.http.response.Http404",
        ]
    )

    assert not ignored.matches(name)


def test_unresolvable_ignored_names_do_not_stop_later_names_from_matching() -> None:
    ignored = IgnoredTypes(["missing.mod.Error", f"{__name__}.qualified", "LookupError"])

    assert ignored.matches("KeyError")


def test_empty_list_matches_nothing() -> None:
    ignored = IgnoredTypes([])

    assert not ignored.matches("KeyError")
    assert not ignored.matches("django.http.response.Http404")
    assert not ignored.matches(qualified(ShopItemNotFound))
    assert not ignored.matches("")


def test_blank_names_are_ignored() -> None:
    ignored = IgnoredTypes(["", "   "])

    assert not ignored.matches("")
    assert not ignored.matches("KeyError")


def test_accepts_any_iterable_of_names() -> None:
    ignored = IgnoredTypes(name for name in ["KeyError"])

    assert ignored.matches("KeyError")
    assert ignored.matches("KeyError")  # the generator was read once, at construction

"""Django routes -> transaction names: ``path()`` routes as they are, ``re_path()`` regular
expressions (DRF routers, Wagtail, the admin) as sentry-sdk's Django integration names them."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.urls import include, path, re_path
from django.urls.resolvers import RegexPattern, URLResolver
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_sentry_bridge.convert.routes import route_name

# (route as Django reports it in ResolverMatch.route / http.route, transaction name)
REAL_ROUTES = [
    # Django REST framework's SimpleRouter / DefaultRouter, included under path("api/", ...)
    (r"api/orders/$", "/api/orders/"),
    (r"api/orders/(?P<pk>[^/.]+)/$", "/api/orders/{pk}/"),
    (r"^orders/(?P<pk>[^/.]+)/$", "/orders/{pk}/"),
    (r"api/orders/(?P<pk>[^/.]+)/set-password/$", "/api/orders/{pk}/set-password/"),
    (r"api/orders/recent/$", "/api/orders/recent/"),
    # format_suffix_patterns
    (r"api/orders\.(?P<format>[a-z0-9]+)/?$", "/api/orders.{format}/"),
    (r"api/orders/(?P<pk>[^/.]+)\.(?P<format>[a-z0-9]+)/?$", "/api/orders/{pk}.{format}/"),
    # DefaultRouter's API root
    (r"api/$", "/api/"),
    (r"api/\.(?P<format>[a-z0-9]+)/?$", "/api/.{format}/"),
    # trailing_slash=False, trailing_slash="/?", a custom lookup_value_regex
    (r"api/orders/(?P<pk>[^/.]+)$", "/api/orders/{pk}"),
    (r"api/orders/(?P<pk>[^/.]+)/?$", "/api/orders/{pk}/"),
    (r"api/orders/(?P<pk>[0-9a-f]{32})/$", "/api/orders/{pk}/"),
    # drf-nested-routers
    (
        r"api/orders/(?P<order_pk>[^/.]+)/items/(?P<pk>[^/.]+)/$",
        "/api/orders/{order_pk}/items/{pk}/",
    ),
    # Wagtail: the page server at the site root and under a prefix, documents, images
    (r"^((?:[\w\-]+/)*)$", "/{var}"),
    (r"((?:[\w\-]+/)*)$", "/{var}"),
    (r"pages/((?:[\w\-]+/)*)$", "/pages/{var}"),
    (r"documents/(\d+)/(.*)$", "/documents/{var}/{var}"),
    (r"images/([^/]*)/(\d*)/([^/]*)/[^/]*$", "/images/{var}/{var}/{var}/{var}"),
    # Django: the admin's app index, static files, the documentation's examples
    (r"admin/(?P<app_label>auth|shop)/$", "/admin/{app_label}/"),
    (r"^static/(?P<path>.*)$", "/static/{path}"),
    (r"^articles/(?P<year>[0-9]{4})/$", "/articles/{year}/"),
    (r"^articles/(?P<year>[0-9]{4})/(?P<month>[0-9]{2})/$", "/articles/{year}/{month}/"),
    (r"^comments/(?:page-(?P<page_number>\d+)/)?$", "/comments/page-{page_number}/"),
    (r"^blog/(?P<slug>[-\w]+)/$", "/blog/{slug}/"),
    (r"^(?:en|de)/about/$", "/en|de/about/"),
    # path() routes: converters become {name}, as sentry-sdk names them
    ("orders/<int:order_id>/boom/", "/orders/{order_id}/boom/"),
    ("api/v1/orders/<uuid:pk>/", "/api/v1/orders/{pk}/"),
    ("robots.txt", "/robots.txt"),
    ("", "/"),
    # a path() prefix including a re_path() URLconf
    (r"shop/<slug:shop>/orders/(?P<pk>\d+)/$", "/shop/{shop}/orders/{pk}/"),
]


@pytest.mark.parametrize(("route", "name"), REAL_ROUTES)
def test_real_routes(route: str, name: str) -> None:
    assert route_name(route) == name


@pytest.mark.parametrize(
    ("route", "name"),
    [
        # nested groups are matched by nesting: the outer name stands for all of it
        (r"^(?P<date>(?P<year>\d{4})-(?P<month>\d{2}))/$", "/{date}/"),
        (r"^((\d+)/)?x/$", "/{var}x/"),
        # escaped characters are themselves; escaped anchors and classes are not text
        (r"^files/\(draft\)/$", "/files/(draft)/"),
        (r"^a\/b\-c\.d$", "/a/b-c.d"),
        (r"\Aexport\Z", "/export"),
        (r"^page/\d+/$", "/page/{var}/"),
        (r"^v/\d+\.\d+/$", "/v/{var}.{var}/"),
        (r"^caf\u00e9/$", "/café/"),
        # patterns outside groups are one placeholder; quantifiers and anchors go
        (r"^static/.*$", "/static/{var}"),
        (r"^items/[0-9]+[a-z]*/$", "/items/{var}/"),
        (r"^x{2,3}y/+$", "/xy/"),
        # flags, lookarounds, comments and back references
        (r"(?i)^about/$", "/about/"),
        (r"^(?i:About)/$", "/About/"),
        (r"^(?=\w)(?!admin)(?P<slug>\w+)/$", "/{slug}/"),
        (r"^(?#the shop)shop/$", "/shop/"),
        (r"^(?P<a>\w)/(?P=a)/$", "/{a}/{a}/"),
        (r"^(\w)/\1/$", "/{var}/{var}/"),
        # Django joins included routes; inner anchors are dropped, slashes collapsed
        (r"^api/^v1/$", "/api/v1/"),
        (r"^api//orders/$", "/api/orders/"),
        ("^$", "/"),
    ],
)
def test_regular_expression_syntax(route: str, name: str) -> None:
    assert route_name(route) == name


def _view(*args: Any, **kwargs: Any) -> None:
    return None


def test_routes_as_django_resolves_them() -> None:
    """``ResolverMatch.route`` of real URLconfs like a DRF router's and Wagtail's."""
    router_urls = [
        re_path(r"^orders/$", _view),
        re_path(r"^orders\.(?P<format>[a-z0-9]+)/?$", _view),
        re_path(r"^orders/(?P<pk>[^/.]+)/$", _view),
        re_path(r"^orders/(?P<pk>[^/.]+)\.(?P<format>[a-z0-9]+)/?$", _view),
    ]
    wagtail_urls = [re_path(r"^((?:[\w\-]+/)*)$", _view)]
    urlconf = [
        path("api/", include(router_urls)),
        re_path(r"^legacy/", include(router_urls)),
        path("shop/<int:shop>/", include(router_urls)),
        path("orders/<int:order_id>/boom/", _view),
        path("", include(wagtail_urls)),
    ]
    resolver = URLResolver(RegexPattern(r"^/"), urlconf)
    expected = {
        "/api/orders/": "/api/orders/",
        "/api/orders/17/": "/api/orders/{pk}/",
        "/api/orders/17.json": "/api/orders/{pk}.{format}/",
        "/api/orders.json/": "/api/orders.{format}/",
        "/legacy/orders/17/": "/legacy/orders/{pk}/",
        "/shop/3/orders/17/": "/shop/{shop}/orders/{pk}/",
        "/orders/5/boom/": "/orders/{order_id}/boom/",
        "/about/team/": "/{var}",
        "/": "/{var}",
    }
    for url, name in expected.items():
        match = resolver.resolve(url)
        assert route_name(match.route) == name, (url, match.route)


@given(st.text(alphabet=st.sampled_from(list("()[]{}^$?*+.|\\:<>Pax=!#-,/1")), max_size=60))
@settings(max_examples=400, deadline=None)
def test_any_input_gives_a_name_and_never_raises(route: str) -> None:
    name = route_name(route)
    assert name.startswith("/")


@given(st.text(max_size=80))
@settings(max_examples=200, deadline=None)
def test_any_text_gives_a_name(route: str) -> None:
    assert route_name(route).startswith("/")


@pytest.mark.parametrize(
    "piece",
    ["(" * 1, "[", "\\", "(?P<", "(?:", "{1,", "(?#", "((?:[\\w\\-]+/)*)", "a?"],
)
def test_time_is_linear_in_the_route_length(piece: str) -> None:
    small, large = piece * 2_000, piece * 20_000
    started = time.perf_counter()
    route_name(small)
    small_time = time.perf_counter() - started
    started = time.perf_counter()
    route_name(large)
    large_time = time.perf_counter() - started
    # ten times the input: about ten times the time (a quadratic scan would be ~100x)
    assert large_time < max(small_time * 40, 0.05)

"""``convert/attribute_scrub.py``: OpenTelemetry attributes scrubbed by their names, as they
go to Sentry in span data and in OpenTelemetry's own exports. Each leak a privacy probe found
is a case here."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from otel_sentry_bridge.convert.attribute_scrub import MAX_LONG_TEXT_CHARS, scrub_attributes
from otel_sentry_bridge.convert.scrubber import FILTERED, MAX_TEXT_CHARS, Scrubber, scrubber_for

SECRET = "hunter2zq"
SCRUBBER = scrubber_for(())


def scrub(
    attributes: Mapping[str, Any],
    pii: bool = False,
    scrubber: Scrubber = SCRUBBER,
    **options: Any,
) -> Mapping[str, Any]:
    """scrub_attributes, checking on the way that it never touches its input."""
    before = copy.deepcopy(dict(attributes))
    out = scrub_attributes(attributes, scrubber, pii, **options)
    assert dict(attributes) == before, "scrub_attributes mutated its input"
    return out


def no_secret(value: Any) -> None:
    assert SECRET not in repr(value)


# -- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["url.full", "http.url", "http.target"])
def test_query_values_under_sensitive_names_are_filtered_in_urls(key: str) -> None:
    url = (
        f"https://shop.example/login?password={SECRET}&api_key={SECRET}&q=shoes&token={SECRET}"
        f"&access_token={SECRET}&client_secret={SECRET}&page=2"
    )
    if key == "http.target":
        url = url.removeprefix("https://shop.example")

    (value,) = scrub({key: url}).values()

    no_secret(value)
    assert value.startswith(url.partition("?")[0])  # the path is kept
    assert "q=shoes" in value and "page=2" in value
    assert value.count(FILTERED) == 5


def test_percent_encoded_names_and_fragments_are_filtered_too() -> None:
    url = f"https://shop.example/cb?api%5Fkey={SECRET}&x=1#access_token={SECRET}&state=ok"
    value = scrub({"url.full": url})["url.full"]
    no_secret(value)
    assert "x=1" in value and "state=ok" in value


def test_url_passwords_are_filtered() -> None:
    out = scrub(
        {
            "http.url": f"https://deploy:{SECRET}@api.example/v1/orders",
            "url.query": f"next=/a&password={SECRET}",
            "server.address": "api.example",
        }
    )
    no_secret(out)
    assert out["http.url"].endswith("@api.example/v1/orders")
    assert out["url.query"].startswith("next=/a&")
    assert out["server.address"] == "api.example"


# -- free text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("exception.message", f"login failed: password={SECRET}"),
        ("exception.message", f"could not connect to postgres://app:{SECRET}@db:5432/shop"),
        (
            "exception.stacktrace",
            f'Traceback (most recent call last):\nValueError: token="{SECRET}"',
        ),
        ("log.message", f"retrying with token={SECRET}"),
        ("http.user_agent", f"curl/8.0 token={SECRET}"),
        ("user_agent.original", f"bot/1.0 (api_key: {SECRET})"),
        ("app.note", f"Authorization: Bearer {SECRET}"),
        ("otel.status_description", f"secret={SECRET}"),
    ],
)
def test_secrets_in_free_text_are_filtered(key: str, text: str) -> None:
    out = scrub({key: text, "http.method": "GET"})
    no_secret(out)
    assert FILTERED in out[key]
    assert out["http.method"] == "GET"


def test_a_long_stacktrace_keeps_its_last_exception_and_stays_bounded() -> None:
    frames = "".join(
        f'  File "/app/shop/views.py", line {n}, in view\n    step()\n' for n in range(600)
    )
    text = f"Traceback (most recent call last):\n{frames}ValueError: password={SECRET}\n"
    assert len(text) > 3 * MAX_TEXT_CHARS

    out = scrub({"exception.stacktrace": text})["exception.stacktrace"]

    no_secret(out)
    assert out.endswith(f"ValueError: password={FILTERED}\n")
    assert out.count("line ") == 600  # nothing else lost

    huge = scrub({"exception.stacktrace": text * 20})["exception.stacktrace"]
    assert len(huge) <= MAX_LONG_TEXT_CHARS + 20 * len(FILTERED)
    no_secret(huge[:-100])  # cut: whatever is left of the last line is filtered or gone


def test_a_single_overlong_line_in_a_stacktrace_is_cut_not_split() -> None:
    line = "x" * (MAX_TEXT_CHARS + 50) + f" password={SECRET}\n"
    out = scrub({"exception.stacktrace": "Traceback\n" + line + "ValueError: boom\n"})
    value = out["exception.stacktrace"]
    no_secret(value)
    assert value.endswith("ValueError: boom\n")


# -- statements ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["db.statement", "db.query.text"])
def test_sql_literals_after_sensitive_names_are_filtered(key: str) -> None:
    out = scrub({key: f"SET api_token = '{SECRET}'", "db.system": "postgresql"})
    no_secret(out)
    assert out[key].startswith("SET api_token")
    assert out["db.system"] == "postgresql"


def test_sql_bind_parameters_are_kept() -> None:
    statement = "UPDATE users SET password = %s WHERE id = %s"
    attributes = {"db.statement": statement}
    assert scrub(attributes) is attributes


# -- sensitive keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [SECRET, (SECRET, "two"), 12345, 1.5, True, {"nested": SECRET}, b"raw"]
)
def test_any_value_under_a_sensitive_key_is_filtered(value: Any) -> None:
    out = scrub({"app.session_id": value, "payment.api_key": value, "http.route": "/pay"})
    assert out == {"app.session_id": FILTERED, "payment.api_key": FILTERED, "http.route": "/pay"}


def test_the_bridges_denylist_adds_words() -> None:
    attributes = {"payment.iban": "DE89370400440532013000"}
    assert scrub(attributes) is attributes
    assert scrub(attributes, scrubber=scrubber_for(("iban",))) == {"payment.iban": FILTERED}


def test_arrays_are_scrubbed_item_by_item() -> None:
    out = scrub({"app.urls": (f"https://x/?token={SECRET}", "https://x/ok"), "app.ids": (1, 2)})
    no_secret(out)
    assert out["app.urls"][1] == "https://x/ok"
    assert out["app.ids"] == (1, 2)


def test_mappings_in_values_are_scrubbed_as_attributes() -> None:
    # Log records' extended attributes and bodies may be mappings.
    out = scrub(
        {"app.ctx": {"user": "bob", "password": SECRET, "inner": {"note": f"token={SECRET}"}}}
    )
    no_secret(out)
    assert out["app.ctx"]["user"] == "bob" and out["app.ctx"]["password"] == FILTERED


# -- headers ------------------------------------------------------------------------------------


HEADERS = {
    "http.request.header.authorization": (f"Bearer {SECRET}",),
    "http.request.header.cookie": (f"sessionid={SECRET}",),
    "http.request.header.x_api_key": (SECRET,),
    "http.request.header.x_forwarded_for": ("203.0.113.9",),
    "http.request.header.x_request_id": ("r-17",),
    "http.request.header.user_agent": (f"curl/8.0 token={SECRET}",),
    "http.request.header.content-type": ("application/json",),
    "http.request.header.accept": ("*/*",),
    "http.response.header.set_cookie": (f"sessionid={SECRET}; HttpOnly",),
    "http.response.header.content_length": ("42",),
    "rpc.grpc.request.metadata.authorization": (f"Basic {SECRET}",),
}


def test_without_pii_only_the_safe_headers_are_kept_and_scrubbed() -> None:
    out = scrub(HEADERS)
    no_secret(out)
    assert set(out) == {
        "http.request.header.user_agent",
        "http.request.header.content-type",
        "http.request.header.accept",
        "http.response.header.content_length",
    }
    assert out["http.request.header.user_agent"] == (f"curl/8.0 token={FILTERED}",)
    assert out["http.request.header.accept"] is HEADERS["http.request.header.accept"]


def test_with_pii_headers_are_kept_but_credentials_are_filtered() -> None:
    out = scrub({**HEADERS, "http.request.header.x_note": (f"Bearer {SECRET}",)}, pii=True)
    no_secret(out)
    assert set(out) == set(HEADERS) | {"http.request.header.x_note"}
    for name in (
        "authorization",
        "cookie",
        "x_api_key",
    ):
        assert out[f"http.request.header.{name}"] == FILTERED
    assert out["http.response.header.set_cookie"] == FILTERED
    assert out["rpc.grpc.request.metadata.authorization"] == FILTERED
    assert out["http.request.header.x_request_id"] == ("r-17",)
    # A value that is itself a credential, whatever its header.
    assert out["http.request.header.x_note"][0].endswith(FILTERED)


# -- who the client is --------------------------------------------------------------------------


SERVER_SPAN = {
    "http.method": "GET",
    "http.route": "/orders/<int:id>/",
    "net.peer.ip": "203.0.113.9",
    "net.peer.port": 51234,
    "net.peer.name": "laptop.home.example",
    "net.sock.peer.addr": "203.0.113.9",
    "network.peer.address": "203.0.113.9",
    "network.peer.port": 51234,
    "client.address": "203.0.113.9",
    "client.port": 51234,
    "http.client_ip": "203.0.113.9",
    "enduser.id": "42",
    "user.email": "bob@example.com",
    "user.id": "42",
    "geo.country.iso_code": "DE",
    "db.query.parameter.0": "bob@example.com",
    "db.statement.parameters": "('bob@example.com',)",
    "server.address": "shop.example",
    "user_agent.original": "Mozilla/5.0",
}
CLIENT_IDENTITY = set(SERVER_SPAN) - {
    "http.method",
    "http.route",
    "server.address",
    "user_agent.original",
}


def test_without_pii_the_clients_address_and_the_user_are_removed() -> None:
    out = scrub(SERVER_SPAN)
    assert out == {
        "http.method": "GET",
        "http.route": "/orders/<int:id>/",
        "server.address": "shop.example",
        "user_agent.original": "Mozilla/5.0",
    }
    assert set(SERVER_SPAN) - set(out) == CLIENT_IDENTITY


def test_with_pii_they_are_kept() -> None:
    out = scrub(SERVER_SPAN, pii=True)
    assert set(out) == set(SERVER_SPAN)
    # Kept as they are, unless the scrubber takes the key itself as sensitive.
    for key, value in SERVER_SPAN.items():
        assert out[key] == (FILTERED if SCRUBBER.is_sensitive(key) else value), key
    for key in ("net.peer.ip", "client.address", "user.email", "enduser.id"):
        assert out[key] == SERVER_SPAN[key]


def test_on_outgoing_spans_the_peer_is_the_server_called_and_is_kept() -> None:
    attributes = {"net.peer.name": "db.internal", "net.peer.port": 5432, "client.address": "me"}
    out = scrub(attributes, peer_is_client=False)
    assert out == {"net.peer.name": "db.internal", "net.peer.port": 5432}


# -- copy-on-write and hostile values -----------------------------------------------------------


def test_nothing_to_scrub_returns_the_input_itself() -> None:
    attributes = {"http.method": "GET", "http.status_code": 200, "ok": True, "tags": ("a", "b")}
    assert scrub(attributes) is attributes


def test_a_change_copies_and_shares_the_unchanged_values() -> None:
    tags = ("a", "b")
    attributes = {"tags": tags, "log.message": f"token={SECRET}"}
    out = scrub(attributes)
    assert out is not attributes
    assert out["tags"] is tags
    assert attributes["log.message"] == f"token={SECRET}"


class Hostile:
    def __str__(self) -> str:
        raise RuntimeError("no")

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no")

    __hash__ = object.__hash__


class HostileStr(str):
    def __str__(self) -> str:
        raise RuntimeError("no")

    def lower(self) -> str:  # type: ignore[override]
        raise RuntimeError("no")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no")

    __hash__ = str.__hash__


class BrokenMapping(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("no")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("no")

    def __len__(self) -> int:
        return 1


def test_hostile_values_never_raise_and_are_filtered_or_dropped() -> None:
    nested: list[Any] = []
    nested.append(nested)  # nesting without end
    attributes: dict[Any, Any] = {
        "a.object": Hostile(),
        "a.bytes": f"token={SECRET}".encode(),
        "a.text": HostileStr(f"token={SECRET}"),
        "a.mapping": BrokenMapping(),
        "a.loop": nested,
        7: SECRET,
        HostileStr("a.key"): SECRET,
        "a.fine": "kept",
    }
    out = scrub_attributes(attributes, SCRUBBER, False)
    no_secret({k: v for k, v in out.items() if k != "a.loop"})
    assert out["a.object"] == FILTERED
    assert out["a.bytes"] == FILTERED
    assert out["a.text"] == f"token={FILTERED}" and type(out["a.text"]) is str
    assert out["a.mapping"] == {}
    assert 7 not in out and "a.key" not in out
    assert out["a.fine"] == "kept"
    depth = 0
    loop = out["a.loop"]
    while isinstance(loop, tuple):
        loop, depth = loop[0], depth + 1
    assert loop == FILTERED and depth < 20


def test_a_mapping_that_cannot_be_read_sends_nothing() -> None:
    assert scrub_attributes(BrokenMapping(), SCRUBBER, False) == {}
    assert scrub_attributes(None, SCRUBBER, False) == {}  # type: ignore[arg-type]

"""scrub_event: every place a secret can sit in a Sentry event, and odd inputs."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from otel_sentry_bridge.convert.scrub import DEFAULT_DENYLIST, FILTERED, Scrubber, scrub_event
from otel_sentry_bridge.deliver.envelope import json_dumps
from tests.support.relay import assert_valid_event

WORDS = pytest.mark.parametrize("word", DEFAULT_DENYLIST)
SECRET = "hunter2"
TRACE = {"trace_id": "b" * 32, "span_id": "c" * 16, "op": "http.server", "status": "ok"}


def base_event(**parts: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "a" * 32,
        "timestamp": 1_700_000_000.5,
        "platform": "python",
        "level": "error",
        "exception": {"values": [{"type": "ValueError", "value": "bad input"}]},
        "contexts": {"trace": dict(TRACE)},
    }
    event.update(parts)
    return event


def scrub(event: dict[str, Any], scrubber: Scrubber | None = None) -> dict[str, Any]:
    """scrub_event, checking on the way that it never touches its input."""
    before = json_dumps(copy.deepcopy(event))  # json_dumps: cycles compare too
    out = scrub_event(event, scrubber or Scrubber())
    assert json_dumps(event) == before, "scrub_event mutated its input"
    return out


def no_secret_left(event: dict[str, Any]) -> None:
    assert SECRET not in json_dumps(event).decode()


# -- one place each, every default word -------------------------------------------------------


@WORDS
def test_request_headers_under_sensitive_names_are_filtered(word: str) -> None:
    out = scrub(base_event(request={"headers": {f"X-{word}": SECRET, "Accept": "*/*"}}))
    assert out["request"]["headers"] == {f"X-{word}": FILTERED, "Accept": "*/*"}


@WORDS
def test_request_headers_in_list_form_are_filtered(word: str) -> None:
    out = scrub(base_event(request={"headers": [[f"X-{word}", SECRET], ["Accept", "*/*"]]}))
    assert out["request"]["headers"] == [[f"X-{word}", FILTERED], ["Accept", "*/*"]]


@WORDS
@pytest.mark.parametrize(
    "cookies",
    [
        lambda w: {w: SECRET, "theme": "dark"},
        lambda w: [[w, SECRET], ["theme", "dark"]],
        lambda w: f"{w}={SECRET}; theme=dark",
    ],
    ids=["dict", "pairs", "string"],
)
def test_request_cookies_are_filtered(word: str, cookies: Any) -> None:
    out = scrub(base_event(request={"cookies": cookies(word)}))
    no_secret_left(out)
    assert "dark" in json.dumps(out["request"]["cookies"])


@WORDS
def test_query_string_is_filtered_as_string(word: str) -> None:
    out = scrub(base_event(request={"query_string": f"a=1&{word}={SECRET}&b"}))
    assert out["request"]["query_string"] == f"a=1&{word}={FILTERED}&b"


@WORDS
def test_query_string_is_filtered_as_pairs(word: str) -> None:
    out = scrub(base_event(request={"query_string": [["a", "1"], [word, SECRET]]}))
    assert out["request"]["query_string"] == [["a", "1"], [word, FILTERED]]


@WORDS
def test_request_data_dict_is_filtered_at_any_depth(word: str) -> None:
    data = {"form": {"user": "bob", f"new_{word}": SECRET}, "items": [{word: SECRET}]}
    out = scrub(base_event(request={"data": data}))
    assert out["request"]["data"] == {
        "form": {"user": "bob", f"new_{word}": FILTERED},
        "items": [{word: FILTERED}],
    }


@WORDS
def test_request_data_json_string_is_parsed_scrubbed_and_dumped(word: str) -> None:
    body = json.dumps({"user": "bob", "nested": {word: SECRET}})
    out = scrub(base_event(request={"data": body}))
    assert json.loads(out["request"]["data"]) == {"user": "bob", "nested": {word: FILTERED}}


@WORDS
def test_request_data_form_string_is_filtered(word: str) -> None:
    out = scrub(base_event(request={"data": f"user=bob&{word}={SECRET}"}))
    assert out["request"]["data"] == f"user=bob&{word}={FILTERED}"


@WORDS
def test_request_env_is_filtered(word: str) -> None:
    env = {f"HTTP_X_{word.upper()}": SECRET, "REMOTE_ADDR": "10.0.0.1"}
    out = scrub(base_event(request={"env": env}), Scrubber(send_default_pii=True))
    assert out["request"]["env"] == {f"HTTP_X_{word.upper()}": FILTERED, "REMOTE_ADDR": "10.0.0.1"}


def test_the_client_address_is_filtered_without_send_default_pii() -> None:
    env = {"REMOTE_ADDR": "10.0.0.1", "SERVER_NAME": "shop"}
    out = scrub(base_event(request={"env": env}))
    assert out["request"]["env"] == {"REMOTE_ADDR": FILTERED, "SERVER_NAME": "shop"}


@WORDS
def test_extra_is_filtered_recursively(word: str) -> None:
    extra = {"job": {"args": [{"name": "x", word: SECRET}], "id": 3}, f"the_{word}": SECRET}
    out = scrub(base_event(extra=extra))
    assert out["extra"] == {
        "job": {"args": [{"name": "x", word: FILTERED}], "id": 3},
        f"the_{word}": FILTERED,
    }


@WORDS
def test_breadcrumb_data_is_filtered_recursively(word: str) -> None:
    crumbs = {"values": [{"message": "GET /", "data": {"params": {word: SECRET}, "n": 1}}]}
    out = scrub(base_event(breadcrumbs=crumbs))
    assert out["breadcrumbs"]["values"][0]["data"] == {"params": {word: FILTERED}, "n": 1}


@WORDS
def test_breadcrumb_urls_from_any_source_lose_their_secret_query_values(word: str) -> None:
    url = f"https://api.example/v1/items?page=2&{word}={SECRET}#top"
    crumbs = {"values": [{"type": "http", "data": {"url": url, "method": "GET"}}]}
    out = scrub(base_event(breadcrumbs=crumbs))
    data = out["breadcrumbs"]["values"][0]["data"]
    assert SECRET not in json.dumps(out)
    assert data["url"].startswith("https://api.example/v1/items?page=2&")
    assert data["method"] == "GET"
    assert crumbs["values"][0]["data"]["url"] == url  # the input is not mutated


@WORDS
def test_breadcrumb_messages_with_key_value_pairs_are_filtered(word: str) -> None:
    crumbs = {"values": [{"message": f"login {word}={SECRET} user=bob"}]}
    out = scrub(base_event(breadcrumbs=crumbs))
    assert out["breadcrumbs"]["values"][0]["message"] == f"login {word}={FILTERED} user=bob"


@WORDS
def test_frame_vars_are_filtered(word: str) -> None:
    frame = {"function": "view", "vars": {"request": "<Request>", word: f"'{SECRET}'"}}
    event = base_event()
    event["exception"]["values"][0]["stacktrace"] = {"frames": [frame]}
    out = scrub(event)
    variables = out["exception"]["values"][0]["stacktrace"]["frames"][0]["vars"]
    assert variables == {"request": "<Request>", word: FILTERED}


@WORDS
def test_contexts_are_filtered_recursively(word: str) -> None:
    contexts = {"trace": dict(TRACE), "app": {"settings": {word: SECRET}, "name": "shop"}}
    out = scrub(base_event(contexts=contexts))
    assert out["contexts"]["app"] == {"settings": {word: FILTERED}, "name": "shop"}


@WORDS
def test_user_secrets_are_filtered_but_identity_kept(word: str) -> None:
    user = {
        "id": "42",
        "username": "bob",
        "email": "bob@example.com",
        "ip_address": "10.0.0.1",
        word: SECRET,
        "data": {f"last_{word}": SECRET},
    }
    out = scrub(base_event(user=user))
    assert out["user"] == {
        "id": "42",
        "username": "bob",
        "email": "bob@example.com",
        "ip_address": "10.0.0.1",
        word: FILTERED,
        "data": {f"last_{word}": FILTERED},
    }


# -- credentials recognised by their value ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", f"Bearer {FILTERED}"),
        ("basic dXNlcjpwYXNz", f"basic {FILTERED}"),
        (
            "Sentry sentry_key=abc, sentry_secret=def",
            f"Sentry sentry_key={FILTERED}, sentry_secret={FILTERED}",
        ),
        ("https://user:pw@example.com/x", f"https://user:{FILTERED}@example.com/x"),
    ],
)
def test_credentials_in_header_values_are_filtered_whatever_the_name(
    value: str, expected: str
) -> None:
    out = scrub(base_event(request={"headers": {"X-Forwarded-Thing": value}}))
    assert out["request"]["headers"]["X-Forwarded-Thing"] == expected


def test_sentry_dsns_are_filtered_anywhere_in_data() -> None:
    dsn = "https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/42"
    legacy = "https://0123456789abcdef0123456789abcdef:fedcba9876543210fedcba9876543210@host/1"
    out = scrub(base_event(extra={"config": {"target": dsn, "old": legacy}}))
    assert out["extra"]["config"] == {
        "target": f"https://{FILTERED}@o1.ingest.sentry.io/42",
        "old": f"https://0123456789abcdef0123456789abcdef:{FILTERED}@host/1",
    }


@pytest.mark.parametrize(
    "name", ["Cookie", "Set-Cookie", "Authorization", "Proxy-Authorization", "X-Api-Key"]
)
def test_credential_headers_are_filtered_even_with_an_empty_denylist(name: str) -> None:
    out = scrub(base_event(request={"headers": {name: SECRET}}), Scrubber(denylist=()))
    assert out["request"]["headers"] == {name: FILTERED}


def test_query_in_request_url_is_filtered() -> None:
    out = scrub(base_event(request={"url": f"https://shop/cart?token={SECRET}&page=2#top"}))
    assert out["request"]["url"] == f"https://shop/cart?token={FILTERED}&page=2#top"


def test_percent_encoded_form_names_are_recognised() -> None:
    out = scrub(base_event(request={"data": f"user=bob&pass%77ord={SECRET}"}))
    assert out["request"]["data"] == f"user=bob&pass%77ord={FILTERED}"


def test_authorization_in_breadcrumb_message_is_filtered_with_its_scheme() -> None:
    message = f"calling api Authorization: Bearer {SECRET} next=/a?token={SECRET} ok"
    out = scrub(base_event(breadcrumbs={"values": [{"message": message}]}))
    assert out["breadcrumbs"]["values"][0]["message"] == (
        f"calling api Authorization: {FILTERED} next=/a?token={FILTERED} ok"
    )


# -- custom words ---------------------------------------------------------------------------


def test_extra_words_are_added_to_the_default_denylist() -> None:
    scrubber = Scrubber(extra=["ssn", "Card_Number"])
    extra = {"ssn": SECRET, "customer_card_number": SECRET, "password": SECRET, "plan": "pro"}
    out = scrub(base_event(extra=extra), scrubber)
    assert out["extra"] == {
        "ssn": FILTERED,
        "customer_card_number": FILTERED,
        "password": FILTERED,
        "plan": "pro",
    }


def test_a_replacement_denylist_replaces_the_default() -> None:
    out = scrub(base_event(extra={"password": "kept", "pin": SECRET}), Scrubber(denylist=["pin"]))
    assert out["extra"] == {"password": "kept", "pin": FILTERED}


def test_matching_is_case_insensitive_and_partial() -> None:
    scrubber = Scrubber()
    assert scrubber.is_sensitive("X-CSRFToken")
    assert scrubber.is_sensitive("DB_PASSWORD_FILE")
    assert not scrubber.is_sensitive("username")
    assert not scrubber.is_sensitive(object())


# -- what is left alone ---------------------------------------------------------------------


def harmless_event() -> dict[str, Any]:
    frames = [{"function": "f", "vars": {"n": "1", "items": "[1, 2]", "user": "'bob'"}}]
    event = base_event(
        request={
            "url": "https://shop/cart?page=2",
            "method": "POST",
            "headers": {"Accept": "text/html", "User-Agent": "curl/8"},
            "cookies": {"theme": "dark"},
            "query_string": "page=2&sort=asc",
            "data": {"quantity": 3, "items": ["a", "b"]},
            "env": {"REMOTE_ADDR": "10.0.0.1", "SERVER_NAME": "shop"},
        },
        extra={"order": {"id": 7, "lines": [{"sku": "x", "qty": 1}]}, "mail": "bob@example.com"},
        breadcrumbs={"values": [{"message": "GET /cart page=2", "data": {"status": 200}}]},
        user={"id": "42", "username": "bob", "email": "bob@example.com"},
        tags={"service.name": "shop"},
        message="checkout failed",
    )
    event["contexts"]["app"] = {"name": "shop", "version": "1.0"}
    event["exception"]["values"][0]["stacktrace"] = {"frames": frames}
    return event


def test_an_event_without_secrets_is_returned_as_is() -> None:
    event = harmless_event()  # its REMOTE_ADDR is sent with send_default_pii only
    assert scrub(event, Scrubber(send_default_pii=True)) is event


def test_unchanged_parts_are_shared_not_copied() -> None:
    event = harmless_event()
    event["extra"]["password"] = SECRET
    out = scrub(event, Scrubber(send_default_pii=True))
    assert out is not event and out["extra"] is not event["extra"]
    assert out["extra"]["order"] is event["extra"]["order"]
    assert out["request"] is event["request"]
    assert out["breadcrumbs"] is event["breadcrumbs"]


def test_trace_ids_exception_type_and_identity_are_never_touched() -> None:
    event = base_event(extra={"password": SECRET})
    event["exception"]["values"][0].update(type="TokenError", value="bad token")
    out = scrub(event)
    assert out["contexts"]["trace"] is event["contexts"]["trace"]
    assert out["exception"] is event["exception"]
    for key in ("event_id", "timestamp", "level", "platform"):
        assert out[key] == event[key]


def test_what_a_before_send_adds_to_the_trace_context_mechanism_modules_and_spans_is_scrubbed() -> (
    None
):
    """probe 2026-12-05: these sections were passed through as they were."""
    trace = {
        **TRACE,
        "token": SECRET,
        "data": {"db.password": SECRET, "url": f"/a?api_key={SECRET}"},
    }
    event = base_event(
        contexts={"trace": trace},
        modules={"password": SECRET, "django": "5.2"},
        spans=[{"op": "http", "description": f"GET /x?token={SECRET}", "data": {"token": SECRET}}],
    )
    event["exception"]["values"][0]["mechanism"] = {"type": "x", "data": {"token": SECRET}}
    out = scrub(event)
    assert SECRET not in json.dumps(out)
    assert {k: out["contexts"]["trace"][k] for k in TRACE} == TRACE
    assert out["modules"]["django"] == "5.2"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (f"password={SECRET}", f"password={FILTERED}"),
        (
            f"could not connect to postgresql://app:{SECRET}@db:5432/shop",
            f"could not connect to postgresql://app:{FILTERED}@db:5432/shop",
        ),
        (f"Authorization: Bearer {SECRET}", f"Authorization: {FILTERED}"),
    ],
)
def test_secrets_in_exception_messages_are_filtered_and_the_type_kept(
    message: str, expected: str
) -> None:
    event = base_event()
    event["exception"]["values"][0].update(type="TokenError", value=message)
    out = scrub(event)
    assert out["exception"]["values"][0] == {"type": "TokenError", "value": expected}


def test_scrubbed_event_still_passes_relay() -> None:
    event = harmless_event()
    event["request"]["headers"]["Authorization"] = "Bearer abc"
    event["request"]["data"] = json.dumps({"password": SECRET})
    event["breadcrumbs"]["values"].append({"message": f"password={SECRET}"})
    out = scrub(event)
    no_secret_left(out)
    assert_valid_event(json.loads(json_dumps(out)))


def test_existing_helpers_keep_their_behaviour() -> None:
    scrubber = Scrubber()
    assert scrubber.mapping({"sessionid": "s", "a": 1}) == {"sessionid": FILTERED, "a": 1}
    assert scrubber.query_string("a=1&token=x&flag") == f"a=1&token={FILTERED}&flag"


# -- odd input ------------------------------------------------------------------------------


class Hostile(Mapping[str, Any]):
    """A mapping that fails as soon as it is read."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("no")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("no")

    def __len__(self) -> int:
        raise RuntimeError("no")


class BadKey:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "event",
        {"request": None, "extra": None, "breadcrumbs": None, "contexts": None, "user": None},
        {"request": [1, 2], "extra": "x", "breadcrumbs": "x", "contexts": [1], "user": "bob"},
        {"request": {"headers": "Cookie: x", "cookies": 3, "query_string": 4, "data": None}},
        {"request": {"headers": [["only-one"], None, ["a", "b", "c"]], "env": "x"}},
        {"breadcrumbs": {"values": [None, 1, "x", {"data": "x", "message": 3}]}},
        {"breadcrumbs": [{"message": "password=x"}]},
        {"exception": {"values": [None, {"stacktrace": None}, {"stacktrace": {"frames": 3}}]}},
        {"exception": {"values": [{"stacktrace": {"frames": [None, {"vars": [1, {"pwd": 1}]}]}}]}},
        {"extra": {BadKey(): "v", 3: {"token": "x"}, None: 1}},
        {"extra": {"h": Hostile()}},
        {"extra": Hostile(), "contexts": Hostile(), "user": Hostile(), "request": Hostile()},
        {"request": {"data": "{not json"}, "user": {"data": "password=1"}},
        {"contexts": {"trace": "not an object", "os": None}},
    ],
)
def test_odd_shapes_never_raise(event: Any) -> None:
    out = scrub_event(event, Scrubber())
    json_dumps(out)


def test_cycles_are_cut_and_still_scrubbed() -> None:
    loop: dict[str, Any] = {"password": SECRET, "name": "x"}
    loop["self"] = loop
    items: list[Any] = [{"token": SECRET}]
    items.append(items)
    out = scrub(base_event(extra={"loop": loop, "items": items}))
    no_secret_left(out)
    assert out["extra"]["loop"]["self"] == "<cycle>"
    assert out["extra"]["items"][1] == "<cycle>"


def test_shared_subtrees_are_scrubbed_each_time() -> None:
    shared = {"token": SECRET}
    out = scrub(base_event(extra={"a": shared, "b": [shared, shared]}))
    no_secret_left(out)


def test_data_nested_beyond_the_depth_limit_is_filtered_not_leaked() -> None:
    deep: Any = {"password": SECRET}
    for _ in range(40):
        deep = {"next": deep}
    out = scrub(base_event(extra={"deep": deep}))
    no_secret_left(out)


def test_a_section_that_cannot_be_scrubbed_is_not_sent_and_the_rest_still_scrubbed() -> None:
    out = scrub_event(base_event(extra=Hostile(), user={"password": SECRET}), Scrubber())
    assert "extra" not in out
    assert out["user"] == {"password": FILTERED}


def test_request_data_nested_past_the_stack_fails_closed_and_keeps_no_header() -> None:
    data = '{"a": ' + "[" * 3000 + "]" * 3000 + f', "password": "{SECRET}"}}'
    event = base_event(request={"headers": {"Authorization": f"Bearer {SECRET}"}, "data": data})
    out = scrub_event(event, Scrubber())
    no_secret_left(out)
    assert out["request"]["headers"] == {"Authorization": FILTERED}


class KeysFail(Mapping[str, Any]):
    """``items()`` works, ``keys()`` (and so ``dict(mapping)``) raises."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("no keys")

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> Any:
        return self._data.items()

    def keys(self) -> Any:
        raise RuntimeError("no keys")


@pytest.mark.parametrize("section", ["extra", "contexts", "user", "request", "tags"])
def test_a_mapping_whose_keys_fail_never_leaks_what_its_items_hold(section: str) -> None:
    hostile = KeysFail({"api_key": SECRET, "headers": {"api_key": SECRET}})
    out = scrub_event(base_event(**{section: {"inner": hostile, "api_key": SECRET}}), Scrubber())
    no_secret_left(out)


def test_an_exception_that_cannot_be_scrubbed_keeps_its_type_and_scrubbed_message() -> None:
    event = base_event()
    event["exception"]["values"][0].update(
        value=f"token={SECRET}",
        stacktrace={"frames": [{"function": "f", "vars": Hostile()}]},
    )
    out = scrub_event(event, Scrubber())
    assert out["exception"] == {"values": [{"type": "ValueError", "value": f"token={FILTERED}"}]}


def test_objects_in_data_are_scrubbed_as_their_repr() -> None:
    class Creds:
        def __repr__(self) -> str:
            return f"Creds(user='bob', password='{SECRET}')"

    out = scrub(base_event(extra={"creds": Creds(), "tags": {1, 2}}))
    no_secret_left(out)
    assert out["extra"]["creds"] == f"Creds(user='bob', password={FILTERED})"


def test_top_level_fields_a_before_send_adds_are_scrubbed_like_data() -> None:
    out = scrub(base_event(my_context={"password": SECRET}, tags={"api_key": SECRET, "a": "b"}))
    assert out["my_context"] == {"password": FILTERED}
    assert out["tags"] == {"api_key": FILTERED, "a": "b"}


# -- log messages --------------------------------------------------------------------------------


def test_log_messages_are_scrubbed_and_their_secret_arguments_filtered() -> None:
    entry = {"message": "token=%s for %s", "params": [SECRET, "bob"], "formatted": ""}
    entry["formatted"] = f"token={SECRET} for bob"
    out = scrub(base_event(logentry=entry))
    assert out["logentry"] == {
        "message": "token=%s for %s",
        "params": [FILTERED, "bob"],
        "formatted": f"token={FILTERED} for bob",
    }


def test_a_log_argument_that_holds_a_secret_itself_is_scrubbed() -> None:
    entry = {"message": "%s", "params": [f"password={SECRET}"], "formatted": f"password={SECRET}"}
    out = scrub(base_event(logentry=entry))
    no_secret_left(out)
    assert out["logentry"]["params"] == [f"password={FILTERED}"]


def test_a_key_and_value_passed_as_two_arguments_are_caught_in_the_formatted_text() -> None:
    entry = {"message": "%s=%s", "params": ["token", SECRET], "formatted": f"token={SECRET}"}
    out = scrub(base_event(logentry=entry))
    no_secret_left(out)


def test_a_dict_logged_as_the_message_is_scrubbed() -> None:
    text = str({"password": SECRET, "user": "bob"})
    out = scrub(base_event(logentry={"message": text, "formatted": text}, message=text))
    no_secret_left(out)
    assert "'user': 'bob'" in out["logentry"]["formatted"]


# -- linear time ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "rv:1 " + "A" * 1_000_000,
        "x://" + "a" * 1_000_000,
        'a="' * 300_000,
        "token=" + "x" * 1_000_000,
    ],
    ids=["long-word", "url-without-host", "unclosed-quotes", "long-secret"],
)
def test_free_text_cuts_its_input_before_matching(text: str) -> None:
    # What bounds the work (the patterns are also linear: see `make bench`, scrub_*_us).
    out = Scrubber().free_text(text, 1024)
    assert len(out) <= 1024
    assert "xxxx" not in out  # the secret's start was filtered, not cut off and kept


def test_keys_too_long_to_match_are_treated_as_sensitive() -> None:
    out = scrub(base_event(extra={"k" * 5000: SECRET, "ok": "v"}))
    no_secret_left(out)
    assert out["extra"]["ok"] == "v"


def test_session_cookies_of_other_stacks_and_sentry_keys_in_urls_are_filtered() -> None:
    cookies = {"PHPSESSID": SECRET, "connect.sid": SECRET, "JSESSIONID": SECRET, "theme": "dark"}
    crumb = {"type": "http", "data": {"url": f"https://x.test/api?sentry_key={SECRET}&a=1"}}
    out = scrub(base_event(request={"cookies": cookies}, breadcrumbs={"values": [crumb]}))
    no_secret_left(out)
    assert out["request"]["cookies"]["theme"] == "dark"


def test_str_subclasses_and_non_str_keys_are_handled() -> None:
    class Text(str):
        def lower(self) -> str:
            raise RuntimeError("no")

    out = scrub(base_event(extra={Text("Password"): SECRET, 7: "seven", ("a",): "tuple"}))
    assert out["extra"][Text("Password")] == FILTERED
    assert out["extra"][7] == "seven"


def test_data_sharing_one_object_many_times_is_scrubbed_once() -> None:
    shared: Any = {"token": SECRET, "name": "x"}
    for _ in range(8):
        shared = [shared] * 50  # 50**8 paths to the same few objects
    # Not through scrub(): encoding the input would expand every path.
    out = scrub_event(base_event(extra={"dag": shared}), Scrubber())
    first = out["extra"]["dag"]
    for _ in range(7):
        assert first[0] is first[-1]  # the scrubbed copy is shared as the original was
        first = first[0]
    assert first[0] == {"token": FILTERED, "name": "x"}

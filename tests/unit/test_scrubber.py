"""The scrubber's text rules: which keys are sensitive, and secrets in free text and URLs.

The cases marked "probe" are the leaks a privacy probe found (2026-12-05) through a real
Django app: each one sent its planted secret before this module's rules were tightened.
"""

from __future__ import annotations

import pytest

from otel_sentry_bridge.convert.scrubber import (
    FILTERED,
    PII_DENYLIST,
    TOKEN_WORDS,
    Scrubber,
    scrubber_for,
    value_text,
)

S = Scrubber()
SECRET = "SECRETMARK"


# -- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "privateKey",  # probe: camelCase of private_key
        "accessKey",
        "X-Api-Key",
        "apiKey",
        "auth",  # probe: sentry-sdk's list has it
        "X-Auth",
        "authKey",
        "basic_auth",
        "HTTP_X_AUTH",
        "sig",
        "X-Amz-Signature",
        "ssn",
        "cvv",
        "card_number",
        "creditCard",
        "PIN",
        "db.password",
        "connect_sid",
        "card_pin",
        "newpassword",
        "accesstoken",
        "JSESSIONID",
    ],
)
def test_sensitive_keys_are_found_whatever_their_case_and_separators(key: str) -> None:
    assert S.is_sensitive(key)


@pytest.mark.parametrize(
    "key",
    [
        "author",
        "authority",
        "classname",
        "pincode",
        "design",
        "username",
        "order_id",
        # counts that carry a word but no secret (probe 2026-12-05: LLM usage was filtered)
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.request.max_tokens",
        "max_tokens",
        "prompt_tokens",
        "session_count",
        "llm.token_count.total",
        # probe 2026-12-05, third round: separators squeezed out made words of two ("dsn"
        # in "ids_new", "pwd" in "step_wd", "ip_address" in "ship_address"), and short
        # words matched any part ("auth_method", "sig_figs")
        "ids_new",
        "records_num",
        "Records Num",
        "builds_number",
        "step_wd",
        "ship_address",
        "shipAddress",
        "membership_address",
        "auth_method",
        "sig_figs",
        "cvv_check",
    ],
)
def test_short_words_match_a_whole_part_of_a_key_only(key: str) -> None:
    assert not S.is_sensitive(key)


@pytest.mark.parametrize(
    "key",
    ["remote_addr", "REMOTE_ADDR", "ip_address", "X-Real-Ip", "HTTP_X_FORWARDED_FOR", "client_ip"],
)
def test_client_address_keys_are_sensitive_without_send_default_pii_only(key: str) -> None:
    assert S.is_sensitive(key)
    assert scrubber_for((), False).is_sensitive(key)
    assert not Scrubber(send_default_pii=True).is_sensitive(key)
    assert not scrubber_for((), True).is_sensitive(key)


def test_the_word_lists_are_exported_for_the_docs() -> None:
    assert "auth" in TOKEN_WORDS and "remote_addr" in PII_DENYLIST


def test_an_empty_denylist_and_no_token_words_match_nothing() -> None:
    bare = Scrubber(denylist=(), send_default_pii=True, token_words=())
    assert not bare.is_sensitive("auth") and not bare.is_sensitive("password")


def test_extra_words_ignore_separators_too() -> None:
    scrubber = Scrubber(extra=["order-ref"])
    assert scrubber.is_sensitive("orderRef") and scrubber.is_sensitive("ORDER_REF")


# -- free text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # probe: a value that starts with a bracket
        (f"{{'password': ['{SECRET}']}}", "{'password': [Filtered]}"),
        (f'{{"creds": {{"password": ["{SECRET}", "x"]}}}}', '{"creds": {"password": [Filtered]}}'),
        (f"password=({SECRET}, 2) rest", "password=[Filtered] rest"),
        (f"password=[{SECRET}", "password=[Filtered]"),  # unclosed: to the end
        # probe: "?" and ";" inside a value
        (f"password=abc?{SECRET} next", "password=[Filtered] next"),
        (f"password=ab;{SECRET}", "password=[Filtered]"),
        (f"password=ab,{SECRET}", "password=[Filtered]"),
        # probe: "=>"
        (f'"password" => "{SECRET}"', '"password" => [Filtered]'),
        # probe: an auth scheme with parameters runs to the end of its line
        (
            f'Authorization: Digest username="bob", response="{SECRET}"\nGET /',
            "Authorization: [Filtered]\nGET /",
        ),
        (f"Authorization: SharedKey acct:{SECRET}", "Authorization: [Filtered]"),
        (f"auth: AWS4-HMAC-SHA256 Credential=a, Signature={SECRET}", "auth: [Filtered]"),
        # probe 2026-12-05: command-line flags (a CalledProcessError's message, a log line)
        (f"mysqldump --password={SECRET} shop", "mysqldump --password=[Filtered] shop"),
        (f"['false', '--api-key={SECRET}']", "['false', '--api-key=[Filtered]']"),
        (f"java -Dpassword={SECRET} -Xmx1g", "java -Dpassword=[Filtered] -Xmx1g"),
        # a scheme word that starts no parameters is a word (probe, third round)
        ("session: oauth flow expired user=bob", "session: [Filtered] flow expired user=bob"),
        (f"password=x{')' * 5}", f"password=[Filtered]{')' * 5}"),
        # one-token schemes keep what follows
        (f"Authorization: Bearer {SECRET} next=/a ok", "Authorization: [Filtered] next=/a ok"),
        # a last separator stays outside the value
        (f"token={SECRET}; Path=/", "token=[Filtered]; Path=/"),
        (f"f(token={SECRET}) g", "f(token=[Filtered]) g"),
        (f"token={SECRET}, user=bob", "token=[Filtered], user=bob"),
        ("password = crypt(x)", "password = [Filtered]"),
        # and what was right before stays right
        (f"password={SECRET} user=bob", "password=[Filtered] user=bob"),
        (f"next=/a?token={SECRET}&b=2", "next=/a?token=[Filtered]&b=2"),
        (f"{{'token': '{SECRET}', 'user': 'bob'}}", "{'token': [Filtered], 'user': 'bob'}"),
    ],
)
def test_free_text_filters_the_whole_value_of_a_sensitive_key(text: str, expected: str) -> None:
    assert S.free_text(text) == expected


# -- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # probe: a password holding "/" or "@"
        (f"postgres://app:wJal/{SECRET}@db/shop", "postgres://app:[Filtered]@db/shop"),
        (f"redis://default:p@{SECRET}@cache:6379", "redis://default:[Filtered]@cache:6379"),
        (f"dial postgres://u:{SECRET}@db failed", "dial postgres://u:[Filtered]@db failed"),
        (
            "see https://" + "0123456789abcdef" * 2 + "@o1.ingest.sentry.io/1",
            "see https://[Filtered]@o1.ingest.sentry.io/1",
        ),
        (f"a://x,https://u:{SECRET}@h more", "a://x,https://u:[Filtered]@h more"),
        (f"'amqp://guest:{SECRET}@mq'", "'amqp://guest:[Filtered]@mq'"),
        # probe 2026-12-05: a token as the user name, as git passes one
        (
            "git clone https://ghp_16C7e42F292c6912E7710c838347Ae178B4a@github.com/o/r",
            "git clone https://[Filtered]@github.com/o/r",
        ),
        (
            "https://" + "0123456789abcdef" * 2 + "abcd0123@github.com/o/r",
            "https://[Filtered]@github.com/o/r",
        ),
        ("https://glpat-xxxxxxxxxxxxxxxxxxxx@gitlab.com/o/r", "https://[Filtered]@gitlab.com/o/r"),
    ],
)
def test_url_passwords_are_filtered_whatever_they_hold(text: str, expected: str) -> None:
    assert value_text(text) == expected
    assert S.free_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com/users/@bob",
        "https://shop.example.com:8080/u/@bob",
        "http://api:8080/users/@me",  # probe 2026-12-05: a port and a path, not a password
        "https://build-agent-01-production@ci.example.com/",  # a name, not a token
        "http://verdaccio:4873/@babel/core",
        "https://bob@example.com/path",  # a user name only
        "mailto bob@example.com, see https://example.com",
        "no url here @ all",
    ],
)
def test_text_without_url_credentials_is_returned_as_is(text: str) -> None:
    assert value_text(text) is text


def test_many_urls_in_one_long_token_are_read_in_one_pass() -> None:
    text = ("x://u:" + SECRET + "@h,") * 2000
    out = value_text(text)
    assert SECRET not in out and out.count(FILTERED) == 2000


@pytest.mark.parametrize(
    "statement",
    [
        # probe 2026-12-05, third round: literals a statement naming a sensitive word kept
        "INSERT INTO people (name, ssn) VALUES ('bob', 'SECRETMARK')",
        "INSERT INTO cards (holder, cvv) VALUES ('bob', 'SECRETMARK')",
        'INSERT INTO users (name, password) VALUES ("bob", "SECRETMARK")',
        'CREATE USER bob IDENTIFIED BY "SECRETMARK"',
        "ALTER USER bob WITH PASSWORD $$SECRETMARK$$",
        "ALTER USER bob WITH PASSWORD $pw$SECRETMARK$pw$",
        "UPDATE users SET password = 'hun\\'SECRETMARK' WHERE id = 1",
        "UPDATE users SET password = _binary'SECRETMARK'",
        "UPDATE users SET password = q'[SECRETMARK]'",
    ],
)
def test_sql_literals_of_a_statement_that_names_a_secret_are_filtered(statement: str) -> None:
    assert SECRET not in S.statement(statement)


def test_sql_numbers_like_card_numbers_and_hex_are_filtered_in_such_a_statement() -> None:
    out = S.statement(
        "INSERT INTO cards (holder, card_number, pin) VALUES ('bob', 4111111111111111, 0x68)"
    )
    assert "4111111111111111" not in out and "0x68" not in out


def test_sql_without_a_sensitive_name_keeps_its_literals() -> None:
    text = "SELECT id FROM books WHERE author = 'Jane Austen' AND year > 180000"
    assert S.statement(text) == text

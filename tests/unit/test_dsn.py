from __future__ import annotations

import dataclasses

import pytest

from otel_sentry_bridge.dsn import Dsn
from otel_sentry_bridge.errors import ConfigError, InvalidDsn

KEY = "0123456789abcdef0123456789abcdef"
SECRET = "fedcba9876543210fedcba9876543210"


def test_parses_a_saas_dsn() -> None:
    dsn = Dsn.parse(f"https://{KEY}@o1.ingest.sentry.io/4506")

    assert dsn == Dsn("https", KEY, None, "o1.ingest.sentry.io", None, "", "4506")
    assert dsn.envelope_url == "https://o1.ingest.sentry.io/api/4506/envelope/"
    assert dsn.public_dsn == f"https://{KEY}@o1.ingest.sentry.io/4506"


def test_keeps_port_and_path_prefix_in_the_envelope_url() -> None:
    dsn = Dsn.parse(f"http://{KEY}@sentry.local:9000/prefix/sub/7")

    assert (dsn.port, dsn.path, dsn.project_id) == (9000, "/prefix/sub", "7")
    assert dsn.envelope_url == "http://sentry.local:9000/prefix/sub/api/7/envelope/"
    assert dsn.public_dsn == f"http://{KEY}@sentry.local:9000/prefix/sub/7"


def test_brackets_an_ipv6_host_in_urls() -> None:
    dsn = Dsn.parse(f"http://{KEY}@[::1]:8000/3")

    assert dsn.host == "::1"
    assert dsn.envelope_url == "http://[::1]:8000/api/3/envelope/"
    assert dsn.public_dsn == f"http://{KEY}@[::1]:8000/3"


def test_tolerates_surrounding_whitespace_a_trailing_slash_and_upper_case_scheme() -> None:
    assert Dsn.parse(f"  HTTPS://{KEY}@host/42/\n") == Dsn.parse(f"https://{KEY}@host/42")


@pytest.mark.parametrize(
    "raw",
    [
        f'"https://{KEY}@host/42"',  # docker env files keep the quotes
        f"'https://{KEY}@host/42'",
        f' "https://{KEY}@host/42"\n',
        f'" https://{KEY}@host/42/ "',
    ],
)
def test_one_pair_of_matching_quotes_around_the_dsn_is_dropped(raw: str) -> None:
    assert Dsn.parse(raw) == Dsn.parse(f"https://{KEY}@host/42")


def test_legacy_secret_goes_into_the_auth_header_but_not_the_public_dsn() -> None:
    dsn = Dsn.parse(f"https://{KEY}:{SECRET}@host/42")

    assert dsn.secret_key == SECRET
    assert SECRET not in dsn.public_dsn
    assert dsn.auth_header("otel-sentry-bridge/1.0") == (
        f"Sentry sentry_key={KEY}, sentry_version=7, sentry_client=otel-sentry-bridge/1.0, "
        f"sentry_secret={SECRET}"
    )


def test_auth_header_without_secret_has_no_secret_field() -> None:
    header = Dsn.parse(f"https://{KEY}@host/42").auth_header("c/1")

    assert header == f"Sentry sentry_key={KEY}, sentry_version=7, sentry_client=c/1"


def test_str_and_repr_hide_key_and_secret() -> None:
    dsn = Dsn.parse(f"https://{KEY}:{SECRET}@host:443/p/42")

    assert str(dsn) == "https://***@host:443/p/42"
    assert repr(dsn) == "Dsn(https://***@host:443/p/42)"
    for text in (str(dsn), repr(dsn), f"{dsn!r}", repr([dsn])):
        assert KEY not in text
        assert SECRET not in text


def test_is_immutable() -> None:
    dsn = Dsn.parse(f"https://{KEY}@host/42")

    with pytest.raises(dataclasses.FrozenInstanceError):
        dsn.host = "elsewhere"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (None, "must be a string"),
        (b"https://key@host/1", "must be a string"),
        ("", "empty"),
        ("   ", "empty"),
        (f"ftp://{KEY}:{SECRET}@host/42", "scheme 'ftp'"),
        (f"{KEY}@host/42", "does not start with <scheme>://"),
        (f"https:/{KEY}@host/42", "does not start with <scheme>://"),
        ("nonsense", "does not start with <scheme>://"),
        ("https://host/42", "no public key"),
        (f"https://:{SECRET}@host/42", "no public key"),
        (f"https://{KEY}:{SECRET}@/42", "no host"),
        (f"https://{KEY}:{SECRET}@:9000/42", "no host"),
        (f"https://{KEY}:{SECRET}@host", "no project id"),
        (f"https://{KEY}:{SECRET}@host/", "no project id"),
        (f"https://{KEY}:{SECRET}@host/abc", "non-numeric project id"),
        (f"https://{KEY}:{SECRET}@host/4²", "non-numeric project id"),
        (f"https://{KEY}:{SECRET}@host:abc/42", "invalid port"),
        (f"https://{KEY}:{SECRET}@host:99999/42", "invalid port"),
        (f"https://{KEY}:{SECRET}@host:0/42", "invalid port"),
        (f"https://{KEY}:{SECRET}@[::1/42", "not a valid URL"),
        (f"https://{KEY}/{SECRET}@host/42", "no public key"),  # a "/" in the user info
        ('""', "empty"),
        ("' '", "empty"),
        (f'"https://{KEY}:{SECRET}@host/42', "stray quote"),
        (f'https://{KEY}:{SECRET}@host/42"', "stray quote"),
        (f"\"https://{KEY}:{SECRET}@host/42'", "stray quote"),  # quotes that do not match
        (f"\"'https://{KEY}:{SECRET}@host/42'\"", "stray quote"),  # quoted twice
        (f'"ftp://{KEY}:{SECRET}@host/42"', "scheme 'ftp'"),  # unquoted, then checked as usual
        (f"'https://{KEY}:{SECRET}@host/abc'", "non-numeric project id"),
        ('"https://host/42"', "no public key"),
    ],
)
def test_malformed_dsn_raises_invalid_dsn_without_leaking_the_key(
    raw: object, problem: str
) -> None:
    with pytest.raises(InvalidDsn) as excinfo:
        Dsn.parse(raw)

    message = str(excinfo.value)
    assert problem in message
    assert KEY not in message
    assert SECRET not in message
    # A chained urllib error in the traceback could quote the URL.
    error = excinfo.value
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None


def test_error_message_shows_the_redacted_dsn() -> None:
    with pytest.raises(InvalidDsn, match=r"https://\*\*\*@host:1/x/abc"):
        Dsn.parse(f"https://{KEY}@host:1/x/abc?q=1#frag")


def test_invalid_dsn_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        Dsn.parse("nonsense")

from __future__ import annotations

import dataclasses

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_sentry_bridge.errors import ConfigError, InvalidDsn
from otel_sentry_bridge.setup.dsn import Dsn

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
        # probe 2026-12-05: accepted, then "label empty or too long" at every send
        (f"https://{KEY}@{'a' * 64}.example.com/1", "invalid host"),
        (f"https://{KEY}@{('a' * 60 + '.') * 5}com/1", "invalid host"),
        (f"https://{KEY}@host/{'1' * 100}", "project id of over 20 digits"),
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


def _prepared(dsn: Dsn) -> requests.PreparedRequest:
    """The request HttpTransport builds from ``dsn`` (it raises where requests refuses)."""
    return requests.Request(
        "POST", dsn.envelope_url, headers={"X-Sentry-Auth": dsn.auth_header("x/1")}
    ).prepare()


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (f"https://{KEY}@host /42", "whitespace or a control character (U+0020)"),
        (f"https://{KEY}@ho st/42", "whitespace or a control character"),
        (f"https://{KEY} x@host/42", "whitespace or a control character"),
        (f"https://{KEY}\t@host/42", "U+0009"),  # urlsplit would drop it silently
        (f"https://{KEY}:{SECRET}\n@host/42", "U+000A"),
        (f"https://{KEY}@host/4\r2", "U+000D"),
        (f"https://{KEY}@ho\x00st/42", "U+0000"),
        (f"https://{KEY}:{SECRET}\x7f@host/42", "U+007F"),
        (f"https://{KEY}@host\u200b/42", "U+200B"),  # zero-width space
        (f"https://{KEY}@host/pre\u00a0fix/42", "U+00A0"),  # no-break space
        (f"https://{KEY}@*.host/42", "invalid host"),
        (f"https://{KEY}@.host/42", "invalid host"),
        (f"https://{KEY}@host..com/42", "invalid host"),
        (f"https://{KEY}@ho%41st/42", "invalid host"),
        (f"https://{KEY}@ho!st/42", "invalid host"),
        (f"https://{KEY}@ho\\st/42", "invalid host"),
        (f"https://{KEY}@999.1.1.1/42", "invalid host"),
        (f"https://{KEY}@[v1.x]/42", "invalid host"),  # IPvFuture: sent as a host name "v1.x"
        (f"https://{KEY}@[::1%25eth0]/42", "invalid host"),  # zone ids are not supported
        (f"https://{KEY}@host\u3002com/42", "invalid host"),  # ideographic full stop
        (f"https://{KEY}@\uff46\uff4f\uff4f/42", "invalid host"),  # full-width "foo"
        (f"https://{KEY}@\u2488/42", "invalid host"),  # "1." in one character
        (f"https://{KEY}é:{SECRET}@host/42", "not allowed in a URL's user info"),
        (f"https://{KEY}:{SECRET}@host@other/42", "not allowed in a URL's user info"),
        (f"https://{KEY},sentry_client=x@host/42", "not allowed in a URL's user info"),
        (f"https://{KEY}:{SECRET}%zz@host/42", "not allowed in a URL's user info"),
        (f"https://{KEY}:{SECRET}%@host/42", "not allowed in a URL's user info"),
        (f'https://{KEY}:"{SECRET}@host/42', "not allowed in a URL's user info"),
        (f"https://{KEY}:{SECRET}<@host/42", "not allowed in a URL's user info"),
    ],
)
def test_dsn_that_requests_would_refuse_is_an_invalid_dsn(raw: str, problem: str) -> None:
    with pytest.raises(InvalidDsn) as excinfo:
        Dsn.parse(raw)

    message = str(excinfo.value)
    assert problem in message
    assert KEY not in message
    assert SECRET not in message
    assert excinfo.value.__cause__ is None


@pytest.mark.parametrize(
    ("host", "sent_as"),
    [
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("sentry_relay.internal", "sentry_relay.internal"),  # docker service names
        ("sentry.example.com.", "sentry.example.com."),
        ("10.0.0.7", "10.0.0.7"),
        ("[2001:db8::1]", "[2001:db8::1]"),
        ("[::ffff:10.0.0.7]", "[::ffff:10.0.0.7]"),
    ],
)
def test_hosts_that_requests_accepts_are_accepted(host: str, sent_as: str) -> None:
    dsn = Dsn.parse(f"https://{KEY}:{SECRET}@{host}:9000/p/42")

    assert _prepared(dsn).url == f"https://{sent_as}:9000/p/api/42/envelope/"


def test_user_info_may_hold_any_url_user_info_character_but_a_comma() -> None:
    key = "a-._~!$&'()*+;=%41"
    dsn = Dsn.parse(f"https://{key}:s:e%2Fcret@host/42")

    assert (dsn.public_key, dsn.secret_key) == (key, "s:e%2Fcret")
    assert f"sentry_key={key}," in _prepared(dsn).headers["X-Sentry-Auth"]


_KEY_MARK = "K3YK3Y"
_SECRET_MARK = "S3CR3T"
_HOSTILE = [" ", "\t", "\n", "\r", "\x00", "\x7f", "\x85", "\u00a0", "\u200b", "\u2028"]
_HOSTILE += ["\u3002", "\uff0e", "é", "ß", "\uff46", "\u2488", "\U0001f600", "\ufffd"]
_HOSTILE += list("@[]%#?/:\\,*!=~\"'<>^`{}|&;+$")


def _fragment(plain: str) -> st.SearchStrategy[str]:
    """Short text: nothing, ``plain`` characters only, or those mixed with hostile ones and
    arbitrary code points (so that about one DSN in five is valid)."""
    hostile = st.sampled_from(list(plain)) | st.sampled_from(_HOSTILE) | st.characters()
    return st.just("") | st.text(st.sampled_from(plain), max_size=6) | st.text(hostile, max_size=4)


_HOSTS = st.sampled_from(
    ["sentry.example.com", "o1.ingest.sentry.io", "127.0.0.1", "[::1]", "bücher.example", ""]
)


@st.composite
def _dsn_like(draw: st.DrawFn) -> str:
    """``scheme://key[:secret]@host[:port][/path]/project``, each part valid or spoiled."""
    scheme = draw(st.sampled_from(["https", "http", "HTTPS"]))
    key = _KEY_MARK + draw(_fragment("0123456789abcdef"))
    secret = draw(st.none() | _fragment("0123456789abcdef").map(lambda s: _SECRET_MARK + s))
    host = draw(_HOSTS) + draw(_fragment("abcz019-._"))
    if draw(st.booleans()):
        host = draw(_fragment("abc.")) + host
    port = draw(
        st.sampled_from(["", ":9000", ":0", ":"]) | _fragment("0123456789").map(":{}".format)
    )
    path = draw(st.sampled_from(["", "/prefix"]) | _fragment("abc/").map("/{}".format))
    project = draw(st.sampled_from(["42", "42/"]) | _fragment("0123456789"))
    user = key if secret is None else f"{key}:{secret}"
    return f"{scheme}://{user}@{host}{port}{path}/{project}"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_dsn_like())
def test_any_dsn_parse_accepts_is_one_requests_accepts(raw: str) -> None:
    """Either parse refuses the DSN, without naming the key, or requests can send to it."""
    try:
        dsn = Dsn.parse(raw)
    except InvalidDsn as exc:
        message = str(exc)
        assert _KEY_MARK not in message and _SECRET_MARK not in message
        return
    prepared = _prepared(dsn)
    # http.client sends both as they are: they must be plain ASCII, without controls.
    assert prepared.url is not None and prepared.url.isascii()
    header = prepared.headers["X-Sentry-Auth"]
    assert isinstance(header, str) and header.isascii() and header.isprintable()

"""URLs with credentials (topo.urls): one reader, one redactor. A password never reaches output.

The property test that drives every place a URL is printed is in test_secrets.py.
"""

from __future__ import annotations

import pytest

from topo.broker.client import ManagementClient
from topo.errors import UsageError
from topo.runtime.url import ConnectionParams, parse_url
from topo.urls import URL, amqp_url_for, parse, parse_amqp, parse_management, redact


@pytest.mark.parametrize(
    ("url", "public", "user", "password"),
    [
        ("http://guest:guest@localhost:15672", "http://localhost:15672", "guest", "guest"),
        ("https://u:p@h.example:443/prefix", "https://h.example:443/prefix", "u", "p"),
        ("http://h:15672", "http://h:15672", None, None),
        ("http://user@h:15672", "http://h:15672", "user", None),
        ("http://u:p%40ss%2Fw%3Ard@h", "http://h", "u", "p@ss/w:rd"),  # percent-decoded
        ("http://us%20er:@h", "http://h", "us er", ""),
        ("http://u:p@[::1]:15672", "http://[::1]:15672", "u", "p"),
        ("HTTP://u:p@h:1", "http://h:1", "u", "p"),
        ("http://host:15672/#/queues", "http://host:15672/", None, None),  # copied from the browser
        # unencoded, and still unambiguous: the userinfo ends at the last @ of the authority
        ("http://u:p@ss@h:15672", "http://h:15672", "u", "p@ss"),
        ("http://u:a:b@h", "http://h", "u", "a:b"),
        ("http://u:a[b]@h", "http://h", "u", "a[b]"),
        ("http://u:a b@h", "http://h", "u", "a b"),
        ("http://u:pässwörd€@h", "http://h", "u", "pässwörd€"),
        ("http://u:100%@h", "http://h", "u", "100%"),
    ],
)
def test_parse_management(url: str, public: str, user: str | None, password: str | None) -> None:
    parsed = parse_management(url)
    assert (parsed.public(), parsed.username, parsed.password) == (public, user, password)


@pytest.mark.parametrize(
    ("url", "host", "port", "vhost", "user", "password"),
    [
        ("amqp://guest:guest@localhost:5672/", "localhost", 5672, "/", "guest", "guest"),
        ("amqp://", "localhost", 5672, "/", "guest", "guest"),  # RabbitMQ's URI spec: all defaults
        ("amqp://h/%2F", "h", 5672, "/", "guest", "guest"),
        ("amqp://u:p@h:1/v%2Fx?heartbeat=5", "h", 1, "v/x", "u", "p"),
        ("amqp://u:a[b@127.0.0.1", "127.0.0.1", 5672, "/", "u", "a[b"),  # was ValueError: Invalid IPv6 URL
        ("amqp://u:p@[::1]/v", "::1", 5672, "v", "u", "p"),
    ],
)
def test_parse_amqp(url: str, host: str, port: int, vhost: str, user: str, password: str) -> None:
    params = parse_url(url)
    assert (params.host, params.port, params.vhost, params.username, params.password) == (
        host,
        port,
        vhost,
        user,
        password,
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://guest:guest@localhost:15672", "http://***@localhost:15672"),
        ("http://u:s3cret@h:15672/api?x=1", "http://***@h:15672/api?x=1"),
        ("http://u:p%40ss@h", "http://***@h"),
        ("http://u:@h", "http://***@h"),
        ("http://h:15672", "http://h:15672"),
        ("http://user@h:15672", "http://***@h:15672"),
        ("amqp://u:s3cret@h:5672/%2F", "amqp://***@h:5672/%2F"),
        ("http://u:p@[::1]:15672", "http://***@[::1]:15672"),
        # not valid URLs, and still nothing of the userinfo shown
        ("http://u:pa/ss@h:15672", "http://***@h:15672"),  # an unencoded / in the password
        ("http://u:a#bs3cret@h:15672", "http://***@h:15672"),  # an unencoded # (leaked before)
        ("http://u:a?bs3cret@h:15672", "http://***@h:15672"),
        ("http://u:p@ss@h:15672", "http://***@h:15672"),  # an unencoded @ in the password
        ("http://u:s3cret@h:port", "http://***@h:port"),
        ("u:s3cret@h:15672", "***@h:15672"),  # no scheme
        ("u:x://s3cret@h", "***@h"),  # no scheme, and '://' inside the password
        ("boom at http://u:s3cret@h:15672", "boom at http://***@h:15672"),  # free text: its words kept
        ("error (amqp://u:a b:s3cret@h) here", "error (amqp://***@h) here"),
        ("at x u:x://s3cret@h", "***@h"),  # '://' glued to other text is not a URL's start
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "http://u:a#bs3cret@127.0.0.1:15672",
        "http://u:a?bs3cret@127.0.0.1:15672",
        "http://u:a/bs3cret@127.0.0.1:15672",
        "http://u:12/bs3cret@127.0.0.1",  # by the RFC: host u, port 12; what was meant: a password
        "http://u:s3cret@127.0.0.1:notaport",
        "http://u:s3cret@127.0.0.1:0",
        "http://u:s3cret@",
        "http://u:s3cret@:15672",
        "http://u:s3cret@h st:15672",
        "http://u:s3cret@::1:15672",
        "http://u:s3cret@[zz]:15672",
        "u:s3cret@127.0.0.1:15672",
        "ftp://u:s3cret@127.0.0.1:15672",
        "amqp://u:s3cret@127.0.0.1:5672",
    ],
)
def test_a_bad_management_url_is_a_usage_error_without_the_password(url: str) -> None:
    with pytest.raises(UsageError) as info:
        ManagementClient(url)
    text = f"{info.value.message} {info.value.hint} {info.value!r}"
    assert "s3cret" not in text
    assert "Management API URL" in text


@pytest.mark.parametrize(
    "url",
    [
        "amqp://u:a/bs3cret@host",  # was "bad port in AMQP URL: amqp://u:a/bs3cret@host"
        "amqp://u:a#bs3cret@host/v",
        "amqp://u:a?bs3cret@host/v",
        "amqp://u:s3cret@host:99999/v",
        "http://u:s3cret@host/v",
        "amqp://u:s3cret@host/tenant@eu",  # an unencoded @ in the vhost: ambiguous as well
    ],
)
def test_a_bad_amqp_url_is_a_usage_error_without_the_password(url: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_url(url)
    text = f"{info.value.message} {info.value.hint} {info.value!r}"
    assert "s3cret" not in text
    assert "AMQP URL" in text


def test_an_ambiguous_url_says_what_to_encode() -> None:
    with pytest.raises(UsageError) as info:
        parse_management("http://u:a#b@h:15672")
    assert "ambiguous" in info.value.message
    assert info.value.hint is not None and "# as %23" in info.value.hint and "/ as %2F" in info.value.hint


def test_unparse_round_trips_hostile_credentials() -> None:
    url = URL("amqp", "h", 5672, "/v").with_credentials("u s", "a/b#c?d@e:f[g]%")
    again = parse_amqp(url.unparse())
    assert (again.username, again.password, again.host, again.path) == ("u s", "a/b#c?d@e:f[g]%", "h", "/v")
    assert "a/b" not in repr(url) and "a/b" not in url.display()


def test_amqp_url_beside_the_management_url() -> None:
    assert amqp_url_for("http://u:p%2F@rabbit:15672") == "amqp://u:p%2F@rabbit:5672/"
    assert amqp_url_for("https://rabbit") == "amqps://rabbit:5671/"
    assert amqp_url_for("http://[::1]:15672") == "amqp://[::1]:5672/"
    assert amqp_url_for("http://u:a#b@rabbit:15672".replace("#", "%23")) == "amqp://u:a%23b@rabbit:5672/"
    # https: the same TLS files, in RabbitMQ's query keys
    tls = amqp_url_for("https://rabbit:15671", ca_cert="/etc/ca.pem", client_cert="/c d.pem", client_key="/k.pem")
    assert tls == "amqps://rabbit:5671/?cacertfile=/etc/ca.pem&certfile=/c%20d.pem&keyfile=/k.pem"
    assert parse_url(amqp_url_for("http://u:a%5Bb@rabbit")).password == "a[b"


def test_parse_reads_any_scheme_when_not_told() -> None:
    assert parse("redis://u:p@h:1/0").host == "h"
    with pytest.raises(UsageError, match="does not start with"):
        parse("h:1")


def test_client_and_params_show_the_url_redacted() -> None:
    with ManagementClient("http://admin:s3cret@localhost:15672") as client:
        assert client.display_url == "http://***@localhost:15672"
        assert client.user == "admin"
        assert "s3cret" not in repr(client)
        assert "s3cret" not in repr(vars(client).get("display_url"))
    params = parse_url("amqp://admin:s3cret@h/v")
    assert params.display() == "amqp://***@h:5672/v"
    assert "s3cret" not in repr(params)
    assert "s3cret" not in repr(ConnectionParams(password="s3cret"))

"""URLs with credentials: split for use, redacted for display. A password never reaches output."""

from __future__ import annotations

import pytest

from topo.broker.client import ManagementClient
from topo.errors import UsageError
from topo.urls import redact, redact_text, split_credentials


@pytest.mark.parametrize(
    ("url", "base", "user", "password"),
    [
        ("http://guest:guest@localhost:15672", "http://localhost:15672", "guest", "guest"),
        ("https://u:p@h.example:443/prefix", "https://h.example:443/prefix", "u", "p"),
        ("http://h:15672", "http://h:15672", None, None),
        ("http://user@h:15672", "http://h:15672", "user", None),
        ("http://u:p%40ss%2Fw%3Ard@h", "http://h", "u", "p@ss/w:rd"),  # percent-decoded
        ("http://us%20er:@h", "http://h", "us er", ""),
        ("http://u:p@[::1]:15672", "http://[::1]:15672", "u", "p"),
    ],
)
def test_split_credentials(url: str, base: str, user: str | None, password: str | None) -> None:
    assert split_credentials(url) == (base, user, password)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://guest:guest@localhost:15672", "http://guest:***@localhost:15672"),
        ("http://u:s3cret@h:15672/api?x=1", "http://u:***@h:15672/api?x=1"),
        ("http://u:p%40ss@h", "http://u:***@h"),
        ("http://u:@h", "http://u:***@h"),
        ("http://h:15672", "http://h:15672"),
        ("http://user@h:15672", "http://user@h:15672"),
        ("amqp://u:s3cret@h:5672/%2F", "amqp://u:***@h:5672/%2F"),
        ("http://u:p@[::1]:15672", "http://u:***@[::1]:15672"),
        # not valid URLs, and still no password shown
        ("http://u:pa/ss@h:15672", "http://u:***@h:15672"),  # an unencoded / in the password
        ("http://u:p@ss@h:15672", "http://u:***@h:15672"),  # an unencoded @ in the password
        ("http://u:s3cret@h:port", "http://u:***@h:port"),
        ("u:s3cret@h:15672", "u:***@h:15672"),  # no scheme
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown
    for secret in ("s3cret", "pa/ss", "p@ss", ":p@"):
        if secret in url:
            assert secret not in redact(url)


def test_redact_text_inside_messages() -> None:
    text = "failed: http://u:s3cret@h:1 and amqp://guest:guest@x/ (twice: http://a:b@c)"
    assert redact_text(text) == "failed: http://u:***@h:1 and amqp://guest:***@x/ (twice: http://a:***@c)"
    assert redact_text("no url here") == "no url here"


@pytest.mark.parametrize(
    "url",
    [
        "http://u:pa/ss@127.0.0.1:15672",
        "http://u:s3cret@127.0.0.1:notaport",
        "u:s3cret@127.0.0.1:15672",
        "ftp://u:s3cret@127.0.0.1:15672",
        "http://u:s3cret@",
    ],
)
def test_a_bad_management_url_is_a_usage_error_without_the_password(url: str) -> None:
    with pytest.raises(UsageError) as info:
        ManagementClient(url)
    text = f"{info.value.message} {info.value.hint}"
    assert "s3cret" not in text and "pa/ss" not in text and "ss@" not in text
    assert "Management API URL" in text


def test_client_shows_the_url_redacted() -> None:
    with ManagementClient("http://admin:s3cret@localhost:15672") as client:
        assert client.display_url == "http://admin:***@localhost:15672"
        assert client.user == "admin"

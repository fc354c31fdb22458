"""The Management API client: broker answers → the right error class in plain words, counted requests.

Answers are the broker's own bodies (seen on RabbitMQ 3.10.8), replayed through httpx.MockTransport;
the same cases against a real broker are in test_cli_core.py.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from topo.broker.client import ManagementClient, explain_broker_reason
from topo.errors import (
    AuthenticationFailed,
    BrokerError,
    BrokerUnreachable,
    PermissionDenied,
    VhostNotFound,
)

URL = "http://alice:s3cret@broker.example:15672"


def client_answering(status: int, body: Any) -> ManagementClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=json.dumps(body).encode(), headers={"content-type": "application/json"})

    return ManagementClient(URL, transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (401, {"error": "not_authorized", "reason": "Login failed"}, AuthenticationFailed, "refused the credentials"),
        (401, {"error": "not_authorised", "reason": "Not management user"}, PermissionDenied, "may not use"),
        (
            401,
            {"error": "not_authorised", "reason": "Not administrator user"},
            PermissionDenied,
            "not an administrator",
        ),
        (401, {"error": "not_authorised", "reason": "Access refused."}, PermissionDenied, "is not allowed to"),
        (
            401,
            {"error": "not_authorised", "reason": "User not authorised to access object"},
            PermissionDenied,
            "is not allowed to",
        ),
        (403, {"error": "forbidden", "reason": "no"}, PermissionDenied, "is not allowed to"),
        (404, {"error": "not_found", "reason": "vhost_not_found"}, VhostNotFound, "does not exist"),
        (400, {"error": "bad_request", "reason": "vhost_not_found"}, VhostNotFound, "does not exist"),
        (500, {"error": "internal", "reason": "boom"}, BrokerError, "boom"),
    ],
)
def test_broker_answers_become_typed_errors(status: int, body: Any, error: type[BrokerError], words: str) -> None:
    with client_answering(status, body) as client, pytest.raises(BrokerError) as info:
        client.get("/definitions/v", vhost="v")
    assert type(info.value) is error
    assert words in info.value.message
    assert info.value.hint or error is BrokerError
    assert info.value.status == status
    text = info.value.message + (info.value.hint or "")
    assert "s3cret" not in text and "\n" not in info.value.message


def test_ok_missing_turns_404_into_none_and_requests_are_counted() -> None:
    with client_answering(404, {"error": "Object Not Found", "reason": "Not Found"}) as client:
        assert client.get("/queues/v/q", vhost="v", ok_missing=True) is None
        assert client.delete("/queues/v/q", vhost="v", ok_missing=True) is None
        assert (client.requests, client.writes) == (2, 1)


def test_unreachable_broker() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with ManagementClient(URL, transport=httpx.MockTransport(handler)) as client, pytest.raises(BrokerUnreachable) as i:
        client.get("/overview")
    assert i.value.message == (
        "cannot reach the RabbitMQ Management API at http://***@broker.example:15672 (connection refused)"
    )


@pytest.mark.parametrize(
    ("reason", "message", "hint"),
    [
        (
            # over AMQP a string argument stays a string: the broker prints both values alike
            "precondition_failed: inequivalent arg 'x-message-ttl' for queue 'q' in vhost 'v': "
            "received '60000' but current is '60000'",
            "queue 'q' in vhost 'v' has argument x-message-ttl = '60000' with a different type than the one sent",
            "RabbitMQ compares argument types too",
        ),
        (
            "inequivalent arg 'x-message-ttl' for queue 'ttlq' in vhost 'explore': received '5' but current is '60000'",
            "queue 'ttlq' in vhost 'explore' already exists with x-message-ttl = '60000', not '5'",
            "cannot change in place",
        ),
        (
            "inequivalent arg 'type' for exchange 'conf' in vhost 'explore': received 'direct' but current is 'fanout'",
            "exchange 'conf' in vhost 'explore' already exists with type = 'fanout', not 'direct'",
            "cannot change in place",
        ),
        (
            # the broker's own text, HTML-escaped, with Erlang binaries
            'Validation failed\n\n[{&lt;&lt;"federation-upstream"&gt;&gt;,&lt;&lt;"u"&gt;&gt;}] '
            "are not recognised policy settings\n",
            '[{"federation-upstream","u"}] are not recognised policy settings',
            "plugin",
        ),
        (
            'Validation failed\n\nha-mode="exactly" takes an integer, none given\n',
            'ha-mode="exactly" takes an integer',
            None,
        ),
        (
            'Validation failed\n\n&lt;&lt;"7X"&gt;&gt; is not a valid max age\n',
            '"7X" is not a valid max age',
            None,
        ),
    ],
)
def test_broker_reasons_in_plain_words(reason: str, message: str, hint: str | None) -> None:
    text, got_hint = explain_broker_reason(reason)
    assert text.startswith(message)
    assert "&lt;" not in text and "<<" not in text and "\n" not in text
    if hint is None:
        assert got_hint is None
    else:
        assert got_hint is not None and hint in got_hint


@pytest.mark.parametrize("status", [200, 404, 501])
def test_a_server_that_answers_without_json_is_not_the_management_api(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=b"<html>hello</html>", headers={"content-type": "text/html"})

    with ManagementClient(URL, transport=httpx.MockTransport(handler)) as client, pytest.raises(BrokerError) as info:
        client.get("/vhosts/v", vhost="v", ok_missing=True)  # a 404 here must not mean "no such vhost"
    assert info.value.message == (
        "the server at http://***@broker.example:15672 is not the RabbitMQ Management API "
        f"(it answered GET /vhosts/v with {status} and no JSON)"
    )
    assert "15672" in (info.value.hint or "")

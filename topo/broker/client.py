"""A small, typed client for the RabbitMQ Management HTTP API.

Every failure becomes one of :mod:`topo.errors`' broker errors in plain words; URLs in messages are
redacted. The engine does not use this client directly: it sees the broker port
(:mod:`topo.broker.port`), whose live adapter (:mod:`topo.broker.live`) sends its requests through this
client (a ``transport`` can be injected: tests run it on an in-memory broker; everything that matters is
also tested against a real one). This module knows HTTP only: it never imports the AMQP runtime.
"""

from __future__ import annotations

import html
import re
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from topo.errors import (
    AuthenticationFailed,
    BrokerError,
    BrokerUnreachable,
    PermissionDenied,
    VhostNotFound,
)
from topo.tls import client_context
from topo.urls import DEFAULT_TIMEOUT, amqp_url_for, parse_amqp, parse_management

__all__ = ["ManagementClient", "enc", "explain_broker_reason"]

_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<arg>[^']+)' for (?P<kind>queue|exchange) '(?P<name>[^']+)' in vhost '(?P<vhost>[^']*)':"
    r" received (?P<got>.+?) but current is (?P<cur>.+)$"
)


def enc(name: str) -> str:
    """A vhost or resource name as one URL path segment (``/`` → ``%2F``)."""
    return quote(name, safe="")


def _plain(reason: str) -> str:
    """The broker's reason without HTML escaping and Erlang binary syntax (``<<"x">>`` → ``"x"``)."""
    text = html.unescape(reason).strip()
    return re.sub(r'<<"((?:[^"\\]|\\.)*)">>', r'"\1"', text)


def explain_broker_reason(reason: str) -> tuple[str, str | None]:
    """RabbitMQ's own error text, turned into plain words and a hint where we know better."""
    text = _plain(reason)
    text = re.sub(r"^(precondition_failed|not_found|access_refused|bad_request):\s*", "", text)
    match = _INEQUIVALENT.search(text)
    if match:
        got, cur = match.group("got"), match.group("cur")
        what = f"{match.group('kind')} {match.group('name')!r} in vhost {match.group('vhost')!r}"
        if got == cur:
            return (
                f"{what} has argument {match.group('arg')} = {cur} with a different type than the one sent "
                '(e.g. the string "60000" against the number 60000)',
                "RabbitMQ compares argument types too: the queue must be replaced to change it",
            )
        return (
            f"{what} already exists with {match.group('arg')} = {cur}, not {got}",
            "queue and exchange arguments cannot change in place; the plan must replace it",
        )
    text = re.sub(r"^Validation failed\s*", "", text)
    if "are not recognised policy settings" in text:
        return (
            text.replace("\n", " ").strip(),
            "check the policy keys: a key that belongs to a plugin needs that plugin enabled on the broker",
        )
    return text.replace("\n", " ").strip(), None


class ManagementClient:
    """Requests against the Management API at ``url`` (``http://user:password@host:15672``).

    ``timeout``: seconds the API may stay silent before a request fails (``--timeout``). For
    ``https://``: ``ca_cert`` (verify the broker against these CAs only), ``client_cert`` and
    ``client_key`` (present a client certificate), or a ready ``ssl_context``. The AMQP URL for exact
    counts is derived from ``url`` with the same TLS files unless ``amqp_url`` is given (``""`` turns
    exact counts off).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        amqp_url: str | None = None,
        ca_cert: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parsed = parse_management(url)  # a UsageError (URL redacted) when it cannot be read
        self.display_url = parsed.display()
        self.public_url = parsed.public().rstrip("/")  # no user, no password: as a plan shows the broker
        self.user = parsed.username or "guest"
        self.timeout = timeout
        if amqp_url:
            parse_amqp(amqp_url)  # a bad --amqp-url is a usage error now, not a failed count later
        uses_tls = parsed.scheme == "https"
        context = ssl_context
        if context is None and uses_tls:
            context = client_context(ca_cert=ca_cert, client_cert=client_cert, client_key=client_key)
        auth = httpx.BasicAuth(self.user, parsed.password if parsed.password is not None else "guest")
        self._http = httpx.Client(
            base_url=self.public_url + "/api",
            auth=auth,
            timeout=timeout,
            transport=transport,
            verify=context if context is not None else True,
            headers={"content-type": "application/json"},
        )
        self.requests = 0  # requests sent, for tests and benchmarks
        self.writes = 0  # PUT/POST/DELETE sent
        # AMQP beside the API, for exact queue counts before a queue is dropped ("" turns that off)
        if amqp_url is None:
            amqp_url = amqp_url_for(url, ca_cert=ca_cert, client_cert=client_cert, client_key=client_key)
        self.amqp_url = amqp_url

    def __repr__(self) -> str:
        return f"<ManagementClient {self.display_url} user={self.user!r}>"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ManagementClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        vhost: str | None = None,
        ok_missing: bool = False,
    ) -> Any:
        """Send one request; returns the decoded JSON body (``None`` when empty or, with ``ok_missing``,
        on 404). Raises a :class:`~topo.errors.BrokerError` subclass on failure."""
        self.requests += 1
        if method != "GET":
            self.writes += 1
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.TimeoutException:
            raise BrokerUnreachable(
                f"the RabbitMQ Management API at {self.display_url} did not answer {method} {path} "
                f"within {self.timeout:g} s",
                hint="the broker may be overloaded: try again, or wait longer with --timeout SECONDS "
                "(or TOPO_TIMEOUT; ManagementClient(timeout=...) in code)",
            ) from None
        except httpx.HTTPError as exc:
            raise BrokerUnreachable(
                f"cannot reach the RabbitMQ Management API at {self.display_url} ({_short(exc)})",
                hint=_tls_hint(str(exc))
                or (
                    "the server there does not speak HTTP: if it is the https listener, write https:// in --url"
                    if isinstance(exc, httpx.RemoteProtocolError)
                    else "is RabbitMQ running with the management plugin? set --url or TOPO_URL"
                ),
            ) from None
        if response.content and "json" not in response.headers.get("content-type", ""):
            # The Management API always answers JSON: anything else is another server (a wrong port or
            # path), whose 404 must not be read as "this vhost does not exist".
            raise BrokerError(
                f"the server at {self.display_url} is not the RabbitMQ Management API "
                f"(it answered {method} {path} with {response.status_code} and no JSON)",
                hint="the Management API usually listens on port 15672; set --url or TOPO_URL",
                status=response.status_code,
            )
        if response.status_code == 404 and ok_missing:
            return None
        if response.status_code >= 400:
            raise self._error(method, path, response, vhost)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("PUT", path, json=body, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("POST", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def _error(self, method: str, path: str, response: httpx.Response, vhost: str | None) -> BrokerError:
        status = response.status_code
        try:
            body = response.json()
            reason = str(body.get("reason") or body.get("error") or "")
        except ValueError:
            reason = response.text[:200]
        if status == 401:
            # RabbitMQ answers 401 both for bad credentials ("Login failed") and for a user who lacks
            # a tag or a vhost permission ("Not management user", "Not administrator user", "Access refused.")
            if "Not management user" in reason:
                return PermissionDenied(
                    f"user {self.user!r} may not use the Management API at {self.display_url}",
                    hint="give the user the 'administrator' tag (topo apply writes definitions); for topo plan "
                    "alone, 'monitoring' or 'management' will do",
                    status=status,
                )
            if "Not administrator user" in reason:
                return PermissionDenied(
                    f"user {self.user!r} is not an administrator on the broker at {self.display_url}"
                    f" ({method} {path} needs one)",
                    hint="topo reads and writes whole vhost definitions: give the user the 'administrator' tag",
                    status=status,
                )
            if reason and "Login failed" not in reason:
                where = f" on vhost {vhost!r}" if vhost is not None else ""
                return PermissionDenied(
                    f"user {self.user!r} is not allowed to {method} {path}{where}: {_plain(reason)}",
                    hint="the user needs configure, write and read permissions on the vhost",
                    status=status,
                )
            return AuthenticationFailed(
                f"the broker at {self.display_url} refused the credentials of user {self.user!r}",
                hint="check the user and password in --url or TOPO_URL",
                status=status,
            )
        if status == 403:
            where = f" on vhost {vhost!r}" if vhost is not None else ""
            return PermissionDenied(
                f"user {self.user!r} is not allowed to {method} {path}{where}: {reason or 'access refused'}",
                hint="the user needs the 'administrator' tag (or 'policymaker' for policies) and "
                "configure/write/read permissions on the vhost",
                status=status,
            )
        if vhost is not None and ("vhost_not_found" in reason or (status == 404 and path.startswith("/vhosts/"))):
            return VhostNotFound(
                f"vhost {vhost!r} does not exist on the broker at {self.display_url}",
                hint="`topo apply` creates the vhosts the files declare",
                status=status,
            )
        message, hint = explain_broker_reason(reason or response.reason_phrase)
        return BrokerError(f"the broker refused {method} {path}: {message}", hint=hint, status=status)


_TLS_HINTS = (
    (
        ("Hostname mismatch", "IP address mismatch"),
        "the broker's certificate is not for the host in --url: use a name the certificate gives",
    ),
    (
        ("CERTIFICATE_VERIFY_FAILED",),
        "the broker's certificate is not signed by a CA topo trusts: give that CA's certificate with "
        "--ca-cert FILE (or TOPO_CA_CERT)",
    ),
    (
        ("CERTIFICATE_REQUIRED", "HANDSHAKE_FAILURE"),
        "the broker asks for a client certificate: give --client-cert FILE and --client-key FILE (or "
        "TOPO_CLIENT_CERT, TOPO_CLIENT_KEY)",
    ),
    (
        ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN", "DECRYPT_ERROR"),
        "the broker does not accept this client certificate: give one signed by a CA it trusts with "
        "--client-cert FILE and --client-key FILE",
    ),
    (
        ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"),
        "this port does not speak TLS: use http:// for it, or the port of the https listener (usually 15671)",
    ),
)


def _tls_hint(text: str) -> str | None:
    """What to do about a TLS failure (httpx passes OpenSSL's reason on: ``[SSL: CODE] text``)."""
    for words, hint in _TLS_HINTS:
        if any(word in text for word in words):
            return hint
    return None


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "[Errno 111]" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return text.split("\n")[0][:120]

"""A small, typed client for the RabbitMQ Management HTTP API.

Every failure becomes one of :mod:`topo.errors`' broker errors in plain words; URLs in messages are
redacted. The engine talks to the broker only through :class:`ManagementClient` (a ``transport`` can be
injected for pure unit tests; everything that matters is tested against a real broker).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from topo.broker.amqp_probe import amqp_url_for
from topo.errors import (
    AuthenticationFailed,
    BrokerError,
    BrokerUnreachable,
    PermissionDenied,
    UsageError,
    VhostNotFound,
)
from topo.urls import redact, split_credentials

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
    """Requests against the Management API at ``url`` (``http://user:password@host:15672``)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        verify: bool | str = True,
        amqp_url: str | None = None,
    ) -> None:
        self.display_url = redact(url)
        try:
            base, user, password = split_credentials(url)
            valid = urlsplit(base).scheme in ("http", "https") and bool(urlsplit(base).hostname)
        except ValueError:  # e.g. a bad port; its text could hold part of an unencoded password
            valid = False
        if not valid:
            raise UsageError(
                f"the Management API URL {self.display_url} is not valid",
                hint="write it as http://USER:PASSWORD@HOST:15672, with special characters of the password "
                "percent-encoded (/ as %2F, @ as %40, : as %3A)",
            )
        self.user = user or "guest"
        auth = httpx.BasicAuth(self.user, password if password is not None else "guest")
        self._http = httpx.Client(
            base_url=base.rstrip("/") + "/api",
            auth=auth,
            timeout=timeout,
            transport=transport,
            verify=verify,
            headers={"content-type": "application/json"},
        )
        self.requests = 0  # requests sent, for tests and benchmarks
        self.writes = 0  # PUT/POST/DELETE sent
        # AMQP beside the API, for exact queue counts before a queue is dropped ("" turns that off)
        self.amqp_url = amqp_url_for(url) if amqp_url is None else amqp_url

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
                f"the RabbitMQ Management API at {self.display_url} did not answer in time",
                hint="the broker may be overloaded; try again or raise the timeout",
            ) from None
        except httpx.HTTPError as exc:
            raise BrokerUnreachable(
                f"cannot reach the RabbitMQ Management API at {self.display_url} ({_short(exc)})",
                hint="is RabbitMQ running with the management plugin? set --url or TOPO_URL",
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
                    hint="give the user the 'administrator' tag (topo reads and writes definitions)",
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


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "[Errno 111]" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return text.split("\n")[0][:120]

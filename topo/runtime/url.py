"""Connection settings from an ``amqp://`` / ``amqps://`` URL (RabbitMQ's URI spec plus its query keys).

``amqp://user:pass@host:5672/vhost?heartbeat=30&frame_max=131072&channel_max=2047&connection_timeout=10``;
``amqps://`` adds TLS with ``cacertfile``, ``certfile``, ``keyfile``, ``verify=verify_none`` and
``server_name_indication``; ``auth_mechanism=external`` authenticates with the client certificate.
The vhost is the percent-decoded path (``%2f`` is ``/``); no path or ``/`` means ``/``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, unquote, urlsplit

from topo.errors import UsageError

__all__ = ["ConnectionParams", "parse_url", "redact"]


@dataclass(frozen=True)
class ConnectionParams:
    host: str = "localhost"
    port: int = 5672
    username: str = "guest"
    password: str = field(default="guest", repr=False)
    vhost: str = "/"
    heartbeat: int = 60  # seconds; 0 disables (if the broker agrees)
    frame_max: int = 131072
    channel_max: int = 2047
    connection_timeout: float = 10.0
    mechanism: str = "PLAIN"  # PLAIN | EXTERNAL
    ssl: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    server_hostname: str | None = None
    client_name: str = "topo"

    def with_vhost(self, vhost: str) -> ConnectionParams:
        return replace(self, vhost=vhost)

    def display(self) -> str:
        scheme = "amqps" if self.ssl else "amqp"
        from urllib.parse import quote

        return f"{scheme}://{self.username}:***@{self.host}:{self.port}/{quote(self.vhost, safe='')}"


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _int(query: dict[str, list[str]], key: str, default: int) -> int:
    if key not in query:
        return default
    try:
        return int(query[key][-1])
    except ValueError:
        raise UsageError(f"URL parameter {key} must be an integer, not {query[key][-1]!r}") from None


def parse_url(url: str, *, ssl_context: ssl.SSLContext | None = None) -> ConnectionParams:
    """Settings from an AMQP URL; ``ssl_context`` overrides the TLS options of an ``amqps://`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("amqp", "amqps"):
        raise UsageError(f"not an AMQP URL (amqp:// or amqps://): {redact(url)}")
    tls = parts.scheme == "amqps"
    query = parse_qs(parts.query)
    path = parts.path
    vhost = "/" if path in ("", "/") else unquote(path[1:])
    try:
        port = parts.port or (5671 if tls else 5672)
    except ValueError:
        raise UsageError(f"bad port in AMQP URL: {redact(url)}") from None
    mechanism = query.get("auth_mechanism", ["plain"])[-1].upper()
    if mechanism not in ("PLAIN", "EXTERNAL"):
        raise UsageError(f"unsupported auth_mechanism {mechanism!r} (plain or external)")
    context = ssl_context
    server_hostname = query.get("server_name_indication", [None])[-1]
    if tls and context is None:
        context = ssl.create_default_context(cafile=query.get("cacertfile", [None])[-1])
        certfile = query.get("certfile", [None])[-1]
        if certfile:
            context.load_cert_chain(certfile, query.get("keyfile", [None])[-1])
        if query.get("verify", [""])[-1] == "verify_none":
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    return ConnectionParams(
        host=parts.hostname or "localhost",
        port=port,
        username=unquote(parts.username) if parts.username is not None else "guest",
        password=unquote(parts.password) if parts.password is not None else "guest",
        vhost=vhost,
        heartbeat=_int(query, "heartbeat", 60),
        frame_max=_int(query, "frame_max", 131072),
        channel_max=_int(query, "channel_max", 2047),
        connection_timeout=float(_int(query, "connection_timeout", 10)),
        mechanism=mechanism,
        ssl=context if tls else None,
        server_hostname=server_hostname,
    )

"""Connection settings from an ``amqp://`` / ``amqps://`` URL (RabbitMQ's URI spec plus its query keys).

``amqp://user:pass@host:5672/vhost?heartbeat=30&frame_max=131072&channel_max=2047&connection_timeout=10``;
``amqps://`` adds TLS with ``cacertfile``, ``certfile``, ``keyfile``, ``verify=verify_none`` and
``server_name_indication``; ``auth_mechanism=external`` authenticates with the client certificate.
The vhost is the percent-decoded path (``%2f`` is ``/``); no path or ``/`` means ``/``. The URL itself is
read by :mod:`topo.urls` (one reader and one redactor for every URL topo takes).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, quote, unquote

from topo.errors import UsageError
from topo.tls import client_context
from topo.urls import URL, parse_amqp

__all__ = ["ConnectionParams", "parse_url"]


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
        """The broker's address as it may be printed (no credentials): ``amqp://***@host:5672/vhost``."""
        address = URL("amqps" if self.ssl else "amqp", self.host, self.port, "/" + quote(self.vhost, safe=""))
        return address.with_credentials(self.username, None).display()


def _int(query: dict[str, list[str]], key: str, default: int) -> int:
    if key not in query:
        return default
    try:
        return int(query[key][-1])
    except ValueError:
        raise UsageError(f"URL parameter {key} must be an integer, not {query[key][-1]!r}") from None


def parse_url(url: str, *, ssl_context: ssl.SSLContext | None = None) -> ConnectionParams:
    """Settings from an AMQP URL; ``ssl_context`` overrides the TLS options of an ``amqps://`` URL."""
    parts = parse_amqp(url)
    tls = parts.scheme == "amqps"
    query = parse_qs(parts.query)
    vhost = "/" if parts.path in ("", "/") else unquote(parts.path[1:])
    mechanism = query.get("auth_mechanism", ["plain"])[-1].upper()
    if mechanism not in ("PLAIN", "EXTERNAL"):
        raise UsageError(f"unsupported auth_mechanism {mechanism!r} (plain or external)")
    context = ssl_context
    server_hostname = query.get("server_name_indication", [None])[-1]
    if tls and context is None:
        context = client_context(
            ca_cert=query.get("cacertfile", [None])[-1],
            client_cert=query.get("certfile", [None])[-1],
            client_key=query.get("keyfile", [None])[-1],
            insecure=query.get("verify", [""])[-1] == "verify_none",
            what="the AMQP URL's",
        )
    return ConnectionParams(
        host=parts.host or "localhost",
        port=parts.port or (5671 if tls else 5672),
        username=parts.username if parts.username is not None else "guest",
        password=parts.password if parts.password is not None else "guest",
        vhost=vhost,
        heartbeat=_int(query, "heartbeat", 60),
        frame_max=_int(query, "frame_max", 131072),
        channel_max=_int(query, "channel_max", 2047),
        connection_timeout=float(_int(query, "connection_timeout", 10)),
        mechanism=mechanism,
        ssl=context if tls else None,
        server_hostname=server_hostname,
    )

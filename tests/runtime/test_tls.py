"""TLS (amqps://) with CA verification and client certificates, and SASL EXTERNAL, against a dedicated
node started with TLS listeners (the shared test node has none): the ``tls_node`` fixture, tests/tls_node.py."""

from __future__ import annotations

import pytest
from rt_helpers import run
from tls_node import TlsNode

from topo.runtime import AuthenticationError, ConnectionFailed, Properties, parse_url
from topo.runtime.connection import Connection


async def roundtrip(url: str) -> tuple[bytes, Connection]:
    conn = await Connection(parse_url(url), reconnect=False).open()
    ch = await conn.channel(confirms=True)
    await ch.queue_declare("tls-q", durable=False, auto_delete=True)
    await ch.publish("", "tls-q", b"secret", Properties(delivery_mode=1), mandatory=True)
    m = await ch.get("tls-q", no_ack=True)
    await conn.close()
    assert m is not None
    return m.body, conn


def test_tls_with_ca_verification_and_plain(tls_node: TlsNode) -> None:
    port, certs = tls_node.amqps_port, tls_node.certs
    body, conn = run(roundtrip(f"amqps://guest:guest@127.0.0.1:{port}/?cacertfile={certs / 'ca.pem'}"))
    assert body == b"secret" and conn.params.ssl is not None


def test_tls_client_certificate_with_external_auth(tls_node: TlsNode) -> None:
    port, certs = tls_node.amqps_port, tls_node.certs
    url = (
        f"amqps://127.0.0.1:{port}/?cacertfile={certs / 'ca.pem'}&certfile={certs / 'client.pem'}"
        f"&keyfile={certs / 'client.key'}&auth_mechanism=external"
    )
    body, conn = run(roundtrip(url))
    assert body == b"secret" and conn.params.mechanism == "EXTERNAL"


def test_tls_refuses_a_server_it_cannot_verify(tls_node: TlsNode) -> None:
    port, certs = tls_node.amqps_port, tls_node.certs
    with pytest.raises(ConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"):
        run(roundtrip(f"amqps://guest:guest@127.0.0.1:{port}/?cacertfile={certs / 'stranger.pem'}"))


def test_a_client_certificate_from_another_ca_is_refused(tls_node: TlsNode) -> None:
    port, certs = tls_node.amqps_port, tls_node.certs
    url = (
        f"amqps://127.0.0.1:{port}/?cacertfile={certs / 'ca.pem'}&certfile={certs / 'stranger.pem'}"
        f"&keyfile={certs / 'stranger.key'}&auth_mechanism=external"
    )
    with pytest.raises(ConnectionFailed):
        run(roundtrip(url))


def test_external_needs_tls(tls_node: TlsNode) -> None:
    node = tls_node.node
    with pytest.raises(AuthenticationError, match="does not offer the EXTERNAL mechanism"):
        run(roundtrip(node.amqp_url + "?auth_mechanism=external"))

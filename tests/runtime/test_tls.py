"""TLS (amqps://) with CA verification and client certificates, and SASL EXTERNAL, against a dedicated
node started with TLS listeners (the shared test node has none)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rt_helpers import run

from topo import devbroker
from topo.runtime import AuthenticationError, ConnectionFailed, Properties, parse_url
from topo.runtime.connection import Connection

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


def _cert(
    subject: str, issuer_key: Any, issuer: Any | None, *, ca: bool = False, server: bool = False
) -> tuple[Any, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    cert = builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())
    return key, cert


def _write(path: Path, key: Any, cert: Any) -> None:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(path.with_suffix(".key"), 0o644)  # the broker runs as this user anyway


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, int, Path]]:
    try:
        devbroker.find_executable("rabbitmq-server")
    except devbroker.DevBrokerError as exc:
        pytest.skip(f"RabbitMQ not installed: {exc}")
    certs = tmp_path_factory.mktemp("certs")
    ca_key, ca = _cert("topo test CA", None, None, ca=True)
    _write(certs / "ca", ca_key, ca)
    _write(certs / "server", *_cert("localhost", ca_key, ca, server=True))
    _write(certs / "client", *_cert("guest", ca_key, ca))
    _write(certs / "stranger", *_cert("guest", *_cert("other CA", None, None, ca=True)))
    tls_port = devbroker.free_port()
    extra = (
        f"listeners.ssl.default = 127.0.0.1:{tls_port}\n"
        f"ssl_options.cacertfile = {certs / 'ca.pem'}\n"
        f"ssl_options.certfile = {certs / 'server.pem'}\n"
        f"ssl_options.keyfile = {certs / 'server.key'}\n"
        "ssl_options.verify = verify_peer\n"
        "ssl_options.fail_if_no_peer_cert = false\n"
        "auth_mechanisms.1 = PLAIN\n"
        "auth_mechanisms.2 = AMQPLAIN\n"
        "auth_mechanisms.3 = EXTERNAL\n"
        "ssl_cert_login_from = common_name\n"
    )
    try:
        node = devbroker.start(
            tmp_path_factory.mktemp("tls-node"), extra_config=extra, plugins=["rabbitmq_auth_mechanism_ssl"]
        )
    except devbroker.DevBrokerError as exc:
        pytest.fail(f"could not start a TLS node: {exc}")
    try:
        yield node, tls_port, certs
    finally:
        node.stop()
        shutil.rmtree(certs, ignore_errors=True)


async def roundtrip(url: str) -> tuple[bytes, Connection]:
    conn = await Connection(parse_url(url), reconnect=False).open()
    ch = await conn.channel(confirms=True)
    await ch.queue_declare("tls-q", durable=False, auto_delete=True)
    await ch.publish("", "tls-q", b"secret", Properties(delivery_mode=1), mandatory=True)
    m = await ch.get("tls-q", no_ack=True)
    await conn.close()
    assert m is not None
    return m.body, conn


def test_tls_with_ca_verification_and_plain(tls_node: tuple[Any, int, Path]) -> None:
    _, port, certs = tls_node
    body, conn = run(roundtrip(f"amqps://guest:guest@127.0.0.1:{port}/?cacertfile={certs / 'ca.pem'}"))
    assert body == b"secret" and conn.params.ssl is not None


def test_tls_client_certificate_with_external_auth(tls_node: tuple[Any, int, Path]) -> None:
    _, port, certs = tls_node
    url = (
        f"amqps://127.0.0.1:{port}/?cacertfile={certs / 'ca.pem'}&certfile={certs / 'client.pem'}"
        f"&keyfile={certs / 'client.key'}&auth_mechanism=external"
    )
    body, conn = run(roundtrip(url))
    assert body == b"secret" and conn.params.mechanism == "EXTERNAL"


def test_tls_refuses_a_server_it_cannot_verify(tls_node: tuple[Any, int, Path]) -> None:
    _, port, certs = tls_node
    with pytest.raises(ConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"):
        run(roundtrip(f"amqps://guest:guest@127.0.0.1:{port}/?cacertfile={certs / 'stranger.pem'}"))


def test_a_client_certificate_from_another_ca_is_refused(tls_node: tuple[Any, int, Path]) -> None:
    _, port, certs = tls_node
    url = (
        f"amqps://127.0.0.1:{port}/?cacertfile={certs / 'ca.pem'}&certfile={certs / 'stranger.pem'}"
        f"&keyfile={certs / 'stranger.key'}&auth_mechanism=external"
    )
    with pytest.raises(ConnectionFailed):
        run(roundtrip(url))


def test_external_needs_tls(tls_node: tuple[Any, int, Path]) -> None:
    node, _, _ = tls_node
    with pytest.raises(AuthenticationError, match="does not offer the EXTERNAL mechanism"):
        run(roundtrip(node.amqp_url + "?auth_mechanism=external"))

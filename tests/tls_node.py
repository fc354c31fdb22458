"""A private node with TLS listeners, for the tests of amqps:// (tests/runtime/test_tls.py) and of the
Management API over https:// (tests/test_management_connection.py): certificates made with
``cryptography`` (a test CA; server, client and a stranger signed by another CA), one node per session.

Use the ``tls_node`` fixture (tests/conftest.py); without ``cryptography`` or RabbitMQ it skips.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import devbroker

__all__ = ["TlsNode", "make_certs", "start_tls_node"]


@dataclass(frozen=True)
class TlsNode:
    node: devbroker.Node
    amqps_port: int  # AMQP over TLS; client certificates optional (PLAIN or EXTERNAL)
    https_port: int  # the Management API over TLS; a client certificate of the test CA required
    certs: Path  # ca.pem; server, client ("guest"), stranger (other CA): .pem and .key each


def _cert(subject: str, issuer_key: Any, issuer: Any | None, *, ca: bool = False, server: bool = False) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

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
    from cryptography.hazmat.primitives import serialization

    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(path.with_suffix(".key"), 0o644)  # the broker runs as this user anyway


def make_certs(directory: Path) -> Path:
    """``ca``, ``server`` (localhost, 127.0.0.1), ``client`` (CN guest) and ``stranger`` (CN guest, another
    CA) as ``NAME.pem`` + ``NAME.key`` in ``directory``."""
    pytest.importorskip("cryptography.x509")
    ca_key, ca = _cert("topo test CA", None, None, ca=True)
    _write(directory / "ca", ca_key, ca)
    _write(directory / "server", *_cert("localhost", ca_key, ca, server=True))
    _write(directory / "client", *_cert("guest", ca_key, ca))
    _write(directory / "stranger", *_cert("guest", *_cert("other CA", None, None, ca=True)))
    return directory


def start_tls_node(base_dir: Path, certs: Path) -> TlsNode:
    """A node with an AMQP TLS listener (EXTERNAL from the certificate's CN enabled) and the Management API
    on https (verify_peer, a client certificate required) besides its plain listeners."""
    amqps_port = devbroker.free_port()
    https_port = devbroker.free_port(exclude=[amqps_port])
    server = (
        f"cacertfile = {certs / 'ca.pem'}\n"
        f"certfile = {certs / 'server.pem'}\n"
        f"keyfile = {certs / 'server.key'}\n"
        "verify = verify_peer\n"
    )
    extra = (
        f"listeners.ssl.default = 127.0.0.1:{amqps_port}\n"
        + "".join(f"ssl_options.{line}\n" for line in server.splitlines())
        + "ssl_options.fail_if_no_peer_cert = false\n"
        "auth_mechanisms.1 = PLAIN\n"
        "auth_mechanisms.2 = AMQPLAIN\n"
        "auth_mechanisms.3 = EXTERNAL\n"
        "ssl_cert_login_from = common_name\n"
        "management.ssl.ip = 127.0.0.1\n"
        f"management.ssl.port = {https_port}\n"
        + "".join(f"management.ssl.{line}\n" for line in server.splitlines())
        + "management.ssl.fail_if_no_peer_cert = true\n"
    )
    node = devbroker.start(base_dir, extra_config=extra, plugins=["rabbitmq_auth_mechanism_ssl"])
    return TlsNode(node, amqps_port, https_port, certs)

"""How the commands that talk to the Management API reach it: ``--timeout`` (``TOPO_TIMEOUT``), and HTTPS
with a custom CA and client certificates (``--ca-cert``, ``--client-cert``, ``--client-key``)."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from tls_node import TlsNode, make_certs

from topo.broker.client import ManagementClient
from topo.cli import _register
from topo.cli.common import run
from topo.errors import UsageError
from topo.runtime.url import parse_url
from topo.tls import client_context

pytestmark = pytest.mark.timeout(300)

SECRET = "S3cr3t-" + os.urandom(3).hex()
TOPOLOGY = """\
version: 1
vhosts:
  v:
    queues:
      q: {}
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TOPO_URL", "TOPO_AMQP_URL", "TOPO_TIMEOUT", "TOPO_CA_CERT", "TOPO_CLIENT_CERT", "TOPO_CLIENT_KEY"):
        monkeypatch.delenv(name, raising=False)
    _register()


def topo(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args))
    assert SECRET not in out.getvalue() + err.getvalue()
    assert "Traceback" not in err.getvalue()
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def topology(tmp_path: Path) -> str:
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(TOPOLOGY))
    return str(path)


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port where connections are accepted (by the kernel, into the backlog) and never answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


# -- --timeout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [("plan", "{file}"), ("apply", "{file}", "--yes"), ("export",)])
def test_a_broker_that_does_not_answer_fails_after_timeout(command: tuple[str, ...], topology: str) -> None:
    with silent_server() as port:
        args = [part.format(file=topology) for part in command]
        code, _, err = topo(*args, "--url", f"http://u:{SECRET}@127.0.0.1:{port}", "--timeout", "0.5")
    assert code == 1
    assert f"the RabbitMQ Management API at http://***@127.0.0.1:{port} did not answer" in err
    assert "within 0.5 s" in err
    assert "Hint:" in err and "--timeout" in err and "TOPO_TIMEOUT" in err


def test_timeout_from_the_environment(topology: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with silent_server() as port:
        monkeypatch.setenv("TOPO_URL", f"http://u:{SECRET}@127.0.0.1:{port}")
        monkeypatch.setenv("TOPO_TIMEOUT", "0.25")
        code, _, err = topo("plan", topology)
    assert code == 1 and "within 0.25 s" in err


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_bad_timeout_is_a_usage_error(value: str, topology: str) -> None:
    code, _, err = topo("plan", topology, "--timeout", value)
    assert code == 1 and "--timeout" in err


# -- https -----------------------------------------------------------------------------------------


def _https(tls_node: TlsNode, password: str = "guest") -> str:
    return f"https://guest:{password}@127.0.0.1:{tls_node.https_port}"


def test_https_with_a_custom_ca_and_a_client_certificate(tls_node: TlsNode, topology: str) -> None:
    certs = tls_node.certs
    tls = ("--ca-cert", str(certs / "ca.pem"), "--client-cert", str(certs / "client.pem"))
    code, out, err = topo("plan", topology, "--url", _https(tls_node), *tls, "--client-key", str(certs / "client.key"))
    assert code == 0, err
    assert "+ queue vhosts.v.queues.q" in out
    code, out, err = topo("export", "--url", _https(tls_node), *tls, "--client-key", str(certs / "client.key"))
    assert code == 0, err
    assert out.startswith(f"# exported by topo from https://***@127.0.0.1:{tls_node.https_port}")


def test_https_settings_from_the_environment(tls_node: TlsNode, topology: str, monkeypatch: pytest.MonkeyPatch) -> None:
    certs = tls_node.certs
    monkeypatch.setenv("TOPO_URL", _https(tls_node))
    monkeypatch.setenv("TOPO_CA_CERT", str(certs / "ca.pem"))
    monkeypatch.setenv("TOPO_CLIENT_CERT", str(certs / "client.pem"))
    monkeypatch.setenv("TOPO_CLIENT_KEY", str(certs / "client.key"))
    code, _, err = topo("plan", topology)
    assert code == 0, err


def test_https_without_the_ca_says_to_give_it(tls_node: TlsNode, topology: str) -> None:
    certs = tls_node.certs
    for ca in ((), ("--ca-cert", str(certs / "stranger.pem"))):
        code, _, err = topo("plan", topology, "--url", _https(tls_node, SECRET), *ca)
        assert code == 1
        assert f"https://***@127.0.0.1:{tls_node.https_port}" in err
        assert "certificate" in err and "--ca-cert" in err.split("Hint:")[1], err


def test_https_without_a_client_certificate_says_to_give_one(tls_node: TlsNode, topology: str) -> None:
    certs = tls_node.certs
    for client in ((), ("--client-cert", str(certs / "stranger.pem"), "--client-key", str(certs / "stranger.key"))):
        code, _, err = topo(
            "plan", topology, "--url", _https(tls_node, SECRET), "--ca-cert", str(certs / "ca.pem"), *client
        )
        assert code == 1
        assert "--client-cert" in err.split("Hint:")[1], err


@pytest.mark.parametrize(
    ("option", "name", "words"),
    [
        ("--ca-cert", "missing.pem", "no such file"),
        ("--ca-cert", "client.key", "CA certificate"),
        ("--client-cert", "missing.pem", "no such file"),
        ("--client-cert", "ca.pem", "client certificate"),  # a certificate without its key
    ],
)
def test_a_bad_certificate_file_is_a_usage_error(
    option: str, name: str, words: str, tls_node: TlsNode, topology: str
) -> None:
    code, _, err = topo("plan", topology, "--url", _https(tls_node, SECRET), option, str(tls_node.certs / name))
    assert code == 1
    assert words in err and name in err
    assert err.count("Error:") == 1 and "Hint:" in err


def test_the_tls_files_also_reach_the_amqp_count(tls_node: TlsNode) -> None:
    certs = tls_node.certs
    files = {"ca_cert": str(certs / "ca.pem"), "client_cert": str(certs / "client.pem")}
    with ManagementClient(_https(tls_node), client_key=str(certs / "client.key"), **files) as client:
        assert client.get("/overview")["rabbitmq_version"]
        params = parse_url(client.amqp_url)  # the AMQP URL beside it: amqps, the same CA and certificate
        assert (params.port, params.password, params.ssl is not None) == (5671, "guest", True)
        assert "cacertfile=" in client.amqp_url and "certfile=" in client.amqp_url


def test_an_encrypted_key_fails_instead_of_prompting(tmp_path: Path) -> None:
    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    certs = make_certs(tmp_path)
    key = serialization.load_pem_private_key((certs / "client.key").read_bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    (tmp_path / "encrypted.key").write_bytes(encrypted)
    with pytest.raises(UsageError, match="encrypted") as info:
        client_context(client_cert=str(certs / "client.pem"), client_key=str(tmp_path / "encrypted.key"))
    assert "encrypted.key" in info.value.message
    assert client_context(client_cert=str(certs / "client.pem"), client_key=str(certs / "client.key"))


def test_tls_files_of_an_amqps_url_are_checked_too(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file") as info:  # was a FileNotFoundError traceback
        parse_url(f"amqps://u:{SECRET}@h/?cacertfile={tmp_path / 'missing.pem'}")
    assert "missing.pem" in info.value.message and SECRET not in info.value.message

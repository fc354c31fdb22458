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

from topo.cli import _register
from topo.cli.common import run

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

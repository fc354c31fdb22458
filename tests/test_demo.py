"""`make demo`: it writes only to a broker the user named, says which before writing, and prints the lines
that point a shell at the demo node (issue 9, items 2 and 3)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

import devbroker
import devbroker.node
from topo.urls import redact

if TYPE_CHECKING:
    from conftest import Broker

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def ensure(base_dir: Path) -> tuple[int, str, str]:
    """``python -m devbroker ensure`` for ``base_dir`` in a subprocess, with the environment as it is.

    Should it start a node where it must not, that node is stopped before the test fails.
    """
    amqp_port = devbroker.free_port()
    http_port = devbroker.free_port(exclude=[amqp_port])
    ports = ("--amqp-port", str(amqp_port), "--http-port", str(http_port))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "devbroker", "ensure", "--dir", str(base_dir), *ports],
            cwd=ROOT,  # python -m devbroker: from the repository's root, as the Makefile runs it
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        node = devbroker.load(base_dir)
        if node is not None:
            node.stop()
    return done.returncode, done.stdout, done.stderr


# -- which broker: never one the user did not name ----------------------------------------------------


def test_without_topo_url_the_demo_asks_no_other_broker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every broker answers here (as one does on localhost:15672 on many machines); without TOPO_URL the
    demo still takes its private node, and never even asks another broker."""
    monkeypatch.delenv("TOPO_URL", raising=False)
    asked: list[str] = []
    started: list[int | None] = []

    def answers(url: str, timeout: float = 2.0) -> bool:
        asked.append(url)
        return True

    def start(base_dir: Path, **kwargs: object) -> devbroker.Node:
        started.append(kwargs.get("http_port"))  # type: ignore[arg-type]
        return devbroker.Node(name="n@localhost", amqp_port=5999, http_port=15999, base_dir=base_dir, dist_port=1)

    monkeypatch.setattr(devbroker.node, "management_answers", answers)
    monkeypatch.setattr(devbroker.node, "start", start)
    assert devbroker.main(["ensure", "--dir", str(tmp_path), "--amqp-port", "5999", "--http-port", "15999"]) == 0
    out = capsys.readouterr().out
    assert started == [15999]
    assert asked == [], asked
    assert (tmp_path / "url").read_text().strip() == "http://guest:guest@127.0.0.1:15999"
    assert out.startswith("Demo broker: a private node"), out
    assert "guest:guest" not in out


def test_the_broker_named_by_topo_url_is_used_and_named(
    broker: Broker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TOPO_URL", broker.url)
    monkeypatch.delenv("TOPO_AMQP_URL", raising=False)
    code, out, err = ensure(tmp_path)
    assert code == 0, err
    assert out.splitlines()[0] == f"Demo broker: {redact(broker.url)} (named by TOPO_URL)", out
    assert (tmp_path / "url").read_text().strip() == broker.url
    assert not (tmp_path / "node.json").exists()  # no private node
    password = broker.url.split("@")[0].rsplit(":", 1)[-1]
    assert f":{password}@" not in out + err


def test_a_named_broker_that_does_not_answer_is_an_error_not_a_fallback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    nothing = f"http://guest:s3cret@127.0.0.1:{devbroker.free_port()}"
    monkeypatch.setenv("TOPO_URL", nothing)
    code, out, err = ensure(tmp_path)
    assert code == 1
    assert "does not answer" in err and "http://***@127.0.0.1:" in err, err
    assert "unset TOPO_URL" in err
    assert "s3cret" not in out + err
    assert not (tmp_path / "node.json").exists()
    assert not (tmp_path / "url").exists()


def test_env_needs_a_running_demo_node(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devbroker", "env", "--dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "no demo node is running" in done.stderr and "make demo" in done.stderr
    assert done.stdout == ""


# -- make demo, end to end ---------------------------------------------------------------------------


def _vhosts(mgmt: httpx.Client) -> set[str]:
    return {v["name"] for v in mgmt.get("/api/vhosts").json()}


@pytest.mark.slow
def test_make_demo_end_to_end(broker: Broker, mgmt: httpx.Client, tmp_path: Path) -> None:
    """`make demo` with no TOPO_URL: a private node, named before anything is written; the printed export
    line, evaluated in a shell, points `topo plan` and `topo publish`/`consume` at that node."""
    if shutil.which("make") is None or broker.node is None:
        pytest.skip("needs make and rabbitmq-server on this machine")
    demo_dir = tmp_path / "demo"
    amqp_port = devbroker.free_port()
    http_port = devbroker.free_port(exclude=[amqp_port])
    env = {k: v for k, v in os.environ.items() if k not in ("TOPO_URL", "TOPO_AMQP_URL", "MAKEFLAGS", "MAKELEVEL")}
    make = [
        "make",
        "--no-print-directory",
        "-C",
        str(ROOT),
        f"DEMO_DIR={demo_dir}",
        f"DEMO_AMQP_PORT={amqp_port}",
        f"DEMO_HTTP_PORT={http_port}",
        # this test's interpreter and its topo, whatever venv runs the tests (no venv is built)
        "INSTALLED=",
        f"PY={sys.executable}",
        f"TOPO_CLI={BIN / 'topo'}",
    ]
    before = _vhosts(mgmt)
    try:
        done = subprocess.run([*make, "demo"], env=env, capture_output=True, text=True, timeout=600, check=False)
        out = done.stdout
        assert done.returncode == 0, out + done.stderr
        # which broker, before the first write
        named = out.index(f"Demo broker: a private node, {redact(f'http://guest:guest@127.0.0.1:{http_port}')}")
        assert named < out.index("Apply complete")
        assert "No changes." in out[out.index("Apply complete") :]
        # the lines to paste: the only place a password is printed
        (line,) = [line for line in out.splitlines() if line.startswith("export ")]
        assert line == (
            f"export TOPO_URL=http://guest:guest@127.0.0.1:{http_port} "
            f"TOPO_AMQP_URL=amqp://guest:guest@127.0.0.1:{amqp_port}/"
        )
        assert out.count("guest:guest") == 2, out
        assert _vhosts(mgmt) == before  # the test broker, which no one named, was not written to
        # a shell that evaluates the printed lines reaches the demo node with plain topo commands
        topo = shlex.quote(str(BIN / "topo"))
        script = "\n".join(
            [
                "set -e",
                f"eval {shlex.quote(line)}",
                f"{topo} plan topologies/ --detailed-exitcode",
                f"{topo} publish topologies/ --vhost shop --exchange events --routing-key order.paid"
                """ --body '{"id": 7}'""",
                f"{topo} consume topologies/ --vhost shop --queue shipping --count 1 --timeout 30",
            ]
        )
        shell = subprocess.run(
            ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert shell.returncode == 0, shell.stdout + shell.stderr
        assert "No changes." in shell.stdout
        assert '"routing_key": "order.paid"' in shell.stdout and '"id": 7' in shell.stdout, shell.stdout
    finally:
        stopped = subprocess.run(
            [*make, "demo-stop"], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        node = devbroker.load(demo_dir)
        if node is not None:
            node.stop()
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not devbroker.management_answers(f"http://guest:guest@127.0.0.1:{http_port}")

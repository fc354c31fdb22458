"""The private test broker (devbroker) and the shared fixtures in conftest.py."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
import pytest

import devbroker
import devbroker.node
from topo.urls import parse_amqp

if TYPE_CHECKING:
    from conftest import Broker

ROOT = Path(__file__).resolve().parent.parent

# -- without a broker --------------------------------------------------------------------------------


def test_free_port_is_bindable_and_honours_exclude() -> None:
    first = devbroker.free_port()
    second = devbroker.free_port(exclude=[first])
    assert second != first
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", second))


def test_missing_rabbitmq_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(devbroker.node, "RABBITMQ_BIN_DIR", tmp_path / "nowhere")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("TOPO_RABBITMQ_BIN_DIR", raising=False)
    with pytest.raises(devbroker.DevBrokerError) as info:
        devbroker.start(tmp_path / "node")
    assert "rabbitmq-server is not installed" in info.value.message
    assert info.value.hint is not None and "ensure-rabbitmq.sh" in info.value.hint


def test_node_addresses_and_env(tmp_path: Path) -> None:
    node = devbroker.Node(name="n1@localhost", amqp_port=1, http_port=2, base_dir=tmp_path, dist_port=3)
    assert node.url == "http://guest:guest@127.0.0.1:2"
    assert node.amqp_url == "amqp://guest:guest@127.0.0.1:1/"
    env = node.env()
    assert env["HOME"] == str(tmp_path / "home")
    assert env["RABBITMQ_NODENAME"] == "n1@localhost"
    assert env["RABBITMQ_DIST_PORT"] == "3"
    assert env["ERL_EPMD_ADDRESS"] == "127.0.0.1"
    assert env["RABBITMQ_CONF_ENV_FILE"] == str(tmp_path / "rabbitmq-env.conf")


def test_state_file_round_trip(tmp_path: Path) -> None:
    node = devbroker.Node(name="n@localhost", amqp_port=1, http_port=2, base_dir=tmp_path, dist_port=3, pid=4)
    node.save()
    assert devbroker.load(tmp_path) == node
    assert devbroker.load(tmp_path / "missing") is None


# -- against the test broker -------------------------------------------------------------------------


def test_broker_answers(broker: Broker, mgmt: httpx.Client) -> None:
    response = mgmt.get("/api/overview")
    assert response.status_code == 200
    assert response.json()["rabbitmq_version"]
    assert devbroker.management_answers(broker.url)


def test_amqp_port_accepts_connections(broker: Broker) -> None:
    parts = parse_amqp(broker.amqp_url)
    with socket.create_connection((parts.host or "localhost", parts.port or 5672), timeout=5) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        assert sock.recv(1) == b"\x01"  # frame type METHOD: connection.start


def test_private_node_listens_on_loopback_only(broker: Broker) -> None:
    if broker.node is None:
        pytest.skip("external broker")
    node = broker.node
    assert node.base_dir.is_dir()
    assert node.log_file.is_file()
    conf = (node.base_dir / "rabbitmq.conf").read_text()
    assert f"listeners.tcp.default = 127.0.0.1:{node.amqp_port}" in conf
    assert "management.tcp.ip = 127.0.0.1" in conf


_seen_vhosts: list[str] = []


def test_vhost_fixture_gives_a_usable_vhost(vhost: str, mgmt: httpx.Client) -> None:
    assert re.fullmatch(r"t-vhost_fixture_gives_a_usable_v[a-z_]*-[0-9a-f]{8}", vhost), vhost
    path = quote(vhost, safe="")
    assert mgmt.get(f"/api/vhosts/{path}").status_code == 200
    response = mgmt.put(f"/api/queues/{path}/orders", json={"durable": True, "arguments": {}})
    assert response.status_code in (201, 204), response.text
    queue = mgmt.get(f"/api/queues/{path}/orders")
    assert queue.status_code == 200
    assert queue.json()["vhost"] == vhost
    _seen_vhosts.append(vhost)


def test_vhost_fixture_deleted_the_previous_vhost(mgmt: httpx.Client) -> None:
    if not _seen_vhosts:
        pytest.skip("runs after test_vhost_fixture_gives_a_usable_vhost")
    assert mgmt.get(f"/api/vhosts/{quote(_seen_vhosts[-1], safe='')}").status_code == 404


@pytest.mark.parametrize("case", ["a/b", "x y"])
def test_vhost_names_are_safe_for_urls(vhost: str, mgmt: httpx.Client, case: str) -> None:
    assert "/" not in vhost and " " not in vhost and "[" not in vhost
    assert mgmt.get(f"/api/vhosts/{quote(vhost, safe='')}").status_code == 200


def test_ensure_uses_a_broker_that_answers(broker: Broker, tmp_path: Path) -> None:
    assert devbroker.ensure(broker.url, tmp_path, amqp_port=1, http_port=2) is None
    assert not (tmp_path / "node.json").exists()


def test_ctl_runs_against_the_node(broker: Broker, vhost: str) -> None:
    if broker.node is None:
        pytest.skip("external broker: no rabbitmqctl access")
    assert vhost in broker.node.ctl("list_vhosts", "--quiet").split()


def test_stop_app_and_start_app(broker: Broker, mgmt: httpx.Client) -> None:
    if broker.node is None:
        pytest.skip("external broker: cannot stop it")
    node = broker.node
    node.stop_app()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", node.amqp_port), timeout=2):
        pass
    node.start_app()
    assert mgmt.get("/api/overview").status_code == 200
    with socket.create_connection(("127.0.0.1", node.amqp_port), timeout=2):
        pass


# -- the command line, on a node of its own ----------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devbroker", *args],
        cwd=ROOT,  # python -m devbroker: from the repository's root, as the Makefile runs it
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "TOPO_URL": ""},
    )


@pytest.mark.slow
def test_cli_ensure_start_status_stop(broker: Broker, tmp_path: Path) -> None:
    if broker.node is None:
        pytest.skip("needs rabbitmq-server on this machine")
    base = tmp_path / "dev"
    amqp_port = devbroker.free_port()
    http_port = devbroker.free_port(exclude=[amqp_port])
    ports = ("--amqp-port", str(amqp_port), "--http-port", str(http_port))
    try:
        done = _cli("ensure", "--dir", str(base), *ports)  # TOPO_URL="": no broker named, a private node
        assert done.returncode == 0, done.stderr
        assert "started in" in done.stdout
        assert "guest:guest" not in done.stdout + done.stderr
        url = (base / "url").read_text().strip()
        assert url == f"http://guest:guest@127.0.0.1:{http_port}"
        assert (base / "url").stat().st_mode & 0o077 == 0
        assert devbroker.management_answers(url)
        state = json.loads((base / "node.json").read_text())
        pid = state["pid"]

        again = _cli("start", "--dir", str(base), *ports)
        assert again.returncode == 0, again.stderr
        assert "Already running" in again.stdout
        assert _cli("ensure", "--dir", str(base), *ports).returncode == 0
        assert json.loads((base / "node.json").read_text())["pid"] == pid  # not started twice

        assert _cli("status", "--dir", str(base)).returncode == 0
        stopped = _cli("stop", "--dir", str(base))
        assert stopped.returncode == 0, stopped.stderr
        assert "Stopped" in stopped.stdout
        assert not devbroker.pid_alive(pid)
        assert not devbroker.management_answers(url)
        assert _cli("status", "--dir", str(base)).returncode == 1
        assert "not running" in _cli("stop", "--dir", str(base)).stdout
    finally:
        node = devbroker.load(base)
        if node is not None:
            node.stop()


@pytest.mark.slow
def test_watcher_stops_the_node_when_its_owner_dies(broker: Broker, tmp_path: Path) -> None:
    if broker.node is None:
        pytest.skip("needs rabbitmq-server on this machine")
    owner = subprocess.Popen(["sleep", "300"])
    node = devbroker.start(tmp_path / "owned", owner_pid=owner.pid)
    pid = node.read_pid()
    assert pid is not None
    try:
        assert node.is_running()
        owner.kill()
        owner.wait()
        watcher_log = node.base_dir / "log" / "watcher.log"
        deadline = time.monotonic() + 60
        while "stopped" not in watcher_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "stopped" in watcher_log.read_text()
        assert not devbroker.pid_alive(pid)
    finally:
        owner.kill()
        node.stop()


def test_start_refuses_a_port_in_use(tmp_path: Path) -> None:
    if not Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists():
        pytest.skip("rabbitmq-server not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(devbroker.DevBrokerError, match="already in use"):
            devbroker.start(tmp_path, amqp_port=sock.getsockname()[1])


@pytest.mark.slow
def test_a_node_that_cannot_boot_fails_fast_with_its_logs(broker: Broker, tmp_path: Path) -> None:
    if broker.node is None:
        pytest.skip("needs rabbitmq-server on this machine")
    started = time.monotonic()
    with pytest.raises(devbroker.DevBrokerError, match="exited while starting") as info:
        devbroker.start(tmp_path / "broken", timeout=60, extra_config="this is = not a valid = setting\n")
    assert time.monotonic() - started < 45
    assert "failed_to_parse_configuration_file" in info.value.message
    assert devbroker.node._vm_pids(tmp_path / "broken" / "home") == []


def test_stop_never_signals_a_process_that_is_not_the_nodes_vm(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "60"])  # stands for a pid reused since the state file was written
    try:
        node = devbroker.Node(
            name=f"topo-absent-{os.getpid()}@localhost",
            amqp_port=devbroker.free_port(),
            http_port=devbroker.free_port(),
            base_dir=tmp_path,
            dist_port=devbroker.free_port(),
            pid=stranger.pid,
        )
        node.stop(timeout=30)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
